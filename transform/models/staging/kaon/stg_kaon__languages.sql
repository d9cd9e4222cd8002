-- Kaon sessions per language (Kaon's codes, not ISO), one row per (client, week, language_code).
select
    client,
    cast(week as {{ dbt.type_bigint() }}) as week,
    cast(week_start as date) as week_start,
    code as language_code,
    language_name,
    cast(count as {{ dbt.type_bigint() }}) as count
from {{ deduplicated('kaon', 'languages', ['client', 'week', 'code']) }} as languages
