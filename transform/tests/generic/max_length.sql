{#- No value is longer than `length` characters (Kissmetrics: identities and names 255, values 512). -#}
{% test max_length(model, column_name, length) %}
select {{ column_name }} from {{ model }} where {{ dbt.length(column_name) }} > {{ length }}
{% endtest %}
