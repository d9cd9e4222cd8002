{#- Models name their schema (staging, marts) as is, in every warehouse: the replays read `marts`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {{- (custom_schema_name or target.schema) | trim -}}
{%- endmacro %}
