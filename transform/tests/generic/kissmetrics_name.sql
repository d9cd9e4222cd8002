{#- A name Kissmetrics keeps as sent: not empty, no ',' or ':' (it would turn them into spaces). -#}
{% test kissmetrics_name(model, column_name) %}
select {{ column_name }} from {{ model }}
where {{ column_name }} = '' or {{ column_name }} like '%,%' or {{ column_name }} like '%:%'
{% endtest %}
