{#-
  A raw table as the taps load it, or an empty select of its declared columns when it is not
  there (yet): a warehouse that has only Kahuna data still builds every model.
  Columns and their loader-neutral types come from models/sources.yml.
-#}
{% macro raw_source(source_name, table_name) -%}
  {%- set relation = source(source_name, table_name) -%}
  {%- if execute and adapter.get_relation(relation.database, relation.schema, relation.identifier) is none -%}
    {%- do log("raw table " ~ relation.schema ~ "." ~ relation.identifier ~ " is not loaded yet: read as empty", info=true) -%}
    (select
    {%- for column in raw_columns(source_name, table_name) %}
      cast(null as {{ raw_type(column.data_type) }}) as {{ column.name }}{{ "," if not loop.last }}
    {%- endfor %}
    where 1 = 0)
  {%- else -%}
    {{ relation }}
  {%- endif -%}
{%- endmacro %}


{#- The columns models/sources.yml declares for a raw table. -#}
{% macro raw_columns(source_name, table_name) -%}
  {%- set node = graph.sources["source." ~ project_name ~ "." ~ source_name ~ "." ~ table_name] -%}
  {{- return(node.columns.values() | list) -}}
{%- endmacro %}


{#- Whether the loaded raw table has a column (loaders add different metadata columns). -#}
{% macro raw_has_column(source_name, table_name, column_name) -%}
  {%- set relation = source(source_name, table_name) -%}
  {%- if not execute -%}{{ return(false) }}{%- endif -%}
  {%- set loaded = adapter.get_relation(relation.database, relation.schema, relation.identifier) -%}
  {%- if loaded is none -%}{{ return(false) }}{%- endif -%}
  {%- set names = adapter.get_columns_in_relation(loaded) | map(attribute="name") | map("lower") | list -%}
  {{- return(column_name | lower in names) -}}
{%- endmacro %}


{#-
  The warehouse type of a loader-neutral raw type: how each loader stores it.
  target-duckdb keeps lists and objects as JSON; target-postgres as text[] and jsonb;
  target-snowflake as VARIANT.
-#}
{% macro raw_type(neutral_type) -%}
  {{ return(adapter.dispatch("raw_type")(neutral_type)) }}
{%- endmacro %}

{% macro default__raw_type(neutral_type) -%}
  {%- set types = {
      "string": dbt.type_string(),
      "bigint": dbt.type_bigint(),
      "boolean": dbt.type_boolean(),
      "date": "date",
      "timestamp": dbt.type_timestamp(),
  } -%}
  {%- if neutral_type not in types -%}
    {{ exceptions.raise_compiler_error("unknown raw type " ~ neutral_type ~ " in models/sources.yml") }}
  {%- endif -%}
  {{- types[neutral_type] -}}
{%- endmacro %}

{% macro duckdb__raw_type(neutral_type) -%}
  {{- "json" if neutral_type in ("json", "string_list") else default__raw_type(neutral_type) -}}
{%- endmacro %}

{% macro postgres__raw_type(neutral_type) -%}
  {%- if neutral_type == "json" -%}jsonb
  {%- elif neutral_type == "string_list" -%}text[]
  {%- else -%}{{ default__raw_type(neutral_type) }}{%- endif -%}
{%- endmacro %}

{% macro snowflake__raw_type(neutral_type) -%}
  {{- "variant" if neutral_type in ("json", "string_list") else default__raw_type(neutral_type) -}}
{%- endmacro %}
