-- Kaon sessions per country, one row per (client, week, country_code).
select
    client,
    cast(week as {{ dbt.type_bigint() }}) as week,
    cast(week_start as date) as week_start,
    code as country_code,
    cast(count as {{ dbt.type_bigint() }}) as count
from {{ deduplicated('kaon', 'countries', ['client', 'week', 'code']) }} as countries
