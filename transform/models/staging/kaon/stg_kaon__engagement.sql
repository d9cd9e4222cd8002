-- Kaon sessions per duration bucket, one row per (client, week, bucket).
select
    client,
    cast(week as {{ dbt.type_bigint() }}) as week,
    cast(week_start as date) as week_start,
    bucket,
    cast(bucket_order as {{ dbt.type_bigint() }}) as bucket_order,
    cast(count as {{ dbt.type_bigint() }}) as count
from {{ deduplicated('kaon', 'engagement', ['client', 'week', 'bucket']) }} as engagement
