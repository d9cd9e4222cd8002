{#-
  replay_sequence: a number per mart row that only grows. On the first build the rows are numbered
  from 1 in `order_by` order; every later build numbers its new rows after the largest number already
  in the mart, so a replay bookmarked on it reads exactly the rows added since (plus the row at the
  bookmark: replication filters are inclusive).
-#}
{% macro next_replay_sequence(order_by) -%}
  cast(
    {%- if is_incremental() %} (select coalesce(max(replay_sequence), 0) from {{ this }}) + {% endif -%}
    row_number() over (order by {{ order_by }}) as {{ dbt.type_bigint() }})
{%- endmacro %}


{#- Rows of `relation` whose key is not in the mart yet (all rows on the first build). -#}
{% macro not_yet_in_mart(relation, key_columns) -%}
  select candidates.* from {{ relation }} as candidates
  {%- if is_incremental() %}
  where not exists (
      select 1 from {{ this }} as replayed
      where {% for column in key_columns %}replayed.{{ column }} = candidates.{{ column }}{{ " and " if not loop.last }}{% endfor %}
  )
  {%- endif %}
{%- endmacro %}


{#- Kissmetrics turns ',' and ':' of event names into spaces: do it here, so the mart holds the name it keeps. -#}
{% macro kissmetrics_name(expression) -%}
  replace(replace({{ expression }}, ',', ' '), ':', ' ')
{%- endmacro %}
