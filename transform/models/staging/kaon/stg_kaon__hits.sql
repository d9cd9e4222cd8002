-- Kaon hits per path, one row per (client, week, path); path as the API encodes it, path_decoded readable.
select
    client,
    cast(week as {{ dbt.type_bigint() }}) as week,
    cast(week_start as date) as week_start,
    path,
    path_decoded,
    cast(count as {{ dbt.type_bigint() }}) as count
from {{ deduplicated('kaon', 'hits', ['client', 'week', 'path']) }} as hits
