-- Kaon weeks, one row per (client, week).
select
    client,
    cast(week as {{ dbt.type_bigint() }}) as week,
    cast(week_start as date) as week_start,
    weekname,
    is_current
from {{ deduplicated('kaon', 'weeks', ['client', 'week']) }} as weeks
