-- Kaon devices seen, one row per (client, week, device_uid).
select
    client,
    cast(week as {{ dbt.type_bigint() }}) as week,
    cast(week_start as date) as week_start,
    device_uid
from {{ deduplicated('kaon', 'devices', ['client', 'week', 'device_uid']) }} as devices
