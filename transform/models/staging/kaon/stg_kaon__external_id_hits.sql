-- Kaon clickstreams: one row per click (client, external_id, timestamp_unix, sequence_in_second);
-- sequence_in_second orders the clicks of one second.
select
    client,
    external_id,
    {{ utc_timestamp('timestamp') }} as clicked_at,
    cast(timestamp_unix as {{ dbt.type_bigint() }}) as timestamp_unix,
    cast(sequence_in_second as {{ dbt.type_bigint() }}) as sequence_in_second,
    {{ nonblank('path') }} as path,
    extra
from {{ deduplicated('kaon', 'external_id_hits', ['client', 'external_id', 'timestamp_unix', 'sequence_in_second']) }} as clicks
