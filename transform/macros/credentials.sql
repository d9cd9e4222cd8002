{#-
  One row per item of a raw credential list ("type:value" strings, as the tap loads them), with its
  1-based position: `select <key_columns>, credential_position, credential from <relation>`.
  target-duckdb stores the list as JSON text, target-postgres as text[], target-snowflake as VARIANT.
-#}
{% macro unnest_credentials(relation, key_columns, list_column) -%}
  {{ return(adapter.dispatch("unnest_credentials")(relation, key_columns, list_column)) }}
{%- endmacro %}

{% macro duckdb__unnest_credentials(relation, key_columns, list_column) -%}
  select {{ key_columns | join(", ") }},
         generate_subscripts(credential_list, 1) as credential_position,
         unnest(credential_list) as credential
  from (
      select {{ key_columns | join(", ") }},
             cast(from_json(cast({{ list_column }} as json), '["VARCHAR"]') as varchar[]) as credential_list
      from {{ relation }}
  ) as lists
{%- endmacro %}

{% macro postgres__unnest_credentials(relation, key_columns, list_column) -%}
  select {% for column in key_columns %}lists.{{ column }}, {% endfor %}
         items.credential_position, items.credential
  from {{ relation }} as lists
  cross join lateral unnest(lists.{{ list_column }}) with ordinality as items(credential, credential_position)
{%- endmacro %}

{% macro snowflake__unnest_credentials(relation, key_columns, list_column) -%}
  select {% for column in key_columns %}lists.{{ column }}, {% endfor %}
         items.index + 1 as credential_position, items.value::string as credential
  from {{ relation }} as lists,
       lateral flatten(input => lists.{{ list_column }}) as items
{%- endmacro %}


{#- The type of a credential ("email" of "email:a:b@x.com"), NULL for an untyped one ("12345"). -#}
{% macro credential_type(column) -%}
  case when {{ dbt.position("':'", column) }} > 1
       then substr({{ column }}, 1, {{ dbt.position("':'", column) }} - 1) end
{%- endmacro %}

{#- The value of a credential: everything after the first ':' ("a:b@x.com"), or all of an untyped one. -#}
{% macro credential_value(column) -%}
  case when {{ dbt.position("':'", column) }} > 1
       then substr({{ column }}, {{ dbt.position("':'", column) }} + 1) else {{ column }} end
{%- endmacro %}
