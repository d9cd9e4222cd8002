-- The weekly hit history of the configured paths, one row per (client, path, week).
select
    client,
    path,
    cast(week as {{ dbt.type_bigint() }}) as week,
    cast(week_start as date) as week_start,
    path_decoded,
    cast(count as {{ dbt.type_bigint() }}) as count,
    countries
from {{ deduplicated('kaon', 'path_hits', ['client', 'path', 'week']) }} as path_hits
