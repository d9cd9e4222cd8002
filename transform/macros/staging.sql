{#-
  One row per key of a raw table: the latest load of each key wins when the loader records its
  load time (_sdc_batched_at: target-postgres, target-snowflake); target-duckdb upserts by key.
-#}
{% macro deduplicated(source_name, table_name, key_columns) -%}
  {%- set latest_first = "_sdc_batched_at desc" if raw_has_column(source_name, table_name, "_sdc_batched_at") else "1" -%}
  (select * from (
      select raw.*, row_number() over (partition by {{ key_columns | join(", ") }} order by {{ latest_first }}) as load_rank
      from {{ raw_source(source_name, table_name) }} as raw
  ) as ranked where load_rank = 1)
{%- endmacro %}


{#- A naive UTC timestamp (as every loader writes the taps' ISO 8601 UTC times) as a timestamp with time zone. -#}
{% macro utc_timestamp(column) -%}
  {{ return(adapter.dispatch("utc_timestamp")(column)) }}
{%- endmacro %}

{% macro default__utc_timestamp(column) -%}
  ({{ column }} at time zone 'UTC')
{%- endmacro %}

{% macro snowflake__utc_timestamp(column) -%}
  timestamp_tz_from_parts(year({{ column }}), month({{ column }}), day({{ column }}), hour({{ column }}),
    minute({{ column }}), second({{ column }}), nanosecond({{ column }}), 'UTC')
{%- endmacro %}


{#- The type of a timestamp with time zone. -#}
{% macro type_timestamp_tz() -%}
  {{ return(adapter.dispatch("type_timestamp_tz")()) }}
{%- endmacro %}

{% macro default__type_timestamp_tz() -%}timestamp with time zone{%- endmacro %}

{% macro snowflake__type_timestamp_tz() -%}timestamp_tz{%- endmacro %}


{#- Text with surrounding blanks removed, and NULL when nothing is left. -#}
{% macro nonblank(column) -%}
  nullif(trim({{ column }}), '')
{%- endmacro %}


{#- The key of a Kahuna log as one text: "<category>:<log_date>:<log_position>" ("inapp:2026-11-17:0"). -#}
{% macro kahuna_log_id(category) -%}
  {{ dbt.concat([
      "'" ~ category ~ ":'",
      "cast(cast(log_date as date) as " ~ dbt.type_string() ~ ")",
      "':'",
      "cast(cast(log_position as " ~ dbt.type_bigint() ~ ") as " ~ dbt.type_string() ~ ")",
  ]) }}
{%- endmacro %}


{#- The key and time every Kahuna staging model starts with: log_id, log_date, log_position, logged_at. -#}
{% macro kahuna_log_key(category) -%}
    {{ kahuna_log_id(category) }} as log_id,
    cast(log_date as date) as log_date,
    cast(log_position as {{ dbt.type_bigint() }}) as log_position,
    {{ utc_timestamp('timestamp') }} as logged_at
{%- endmacro %}
