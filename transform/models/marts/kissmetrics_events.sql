-- Kissmetrics events, beacon-shaped: person (_p), event (_n), timestamp (_t) and the properties
-- (every other column but event_id, replay_sequence and source; NULLs are not sent).
--   Kahuna in-app, push and e-mail logs of a known user and action: "Kahuna <category> <action>".
--   Kaon clickstreams: each click a page view "Viewed <path>" by its external ID; sequence_in_second
--   keeps two views of one path in one second two events.
-- The same names and properties as the direct tap -> target-kissmetrics mappings in meltano.yml, so
-- either path sends the same beacons. Append-only: replay_sequence numbers each build's new events.
{{ config(unique_key='event_id') }}

{%- set kahuna = [('inapp', 'in-app', 'action_detail', 'null'), ('push', 'push', 'null', 'os'), ('email', 'email', 'null', 'null')] %}

with kahuna_events as (
{%- for category, label, action_detail, os in kahuna %}
    select
        log_id as event_id,
        'kahuna_{{ category }}' as source,
        user_id as person,
        {{ kissmetrics_name("'Kahuna " ~ label ~ " ' || action") }} as event,
        logged_at as timestamp,
        campaign,
        campaign_id,
        cast({{ action_detail }} as {{ dbt.type_string() }}) as action_detail,
        cast({{ os }} as {{ dbt.type_string() }}) as os,
        cast(null as {{ dbt.type_bigint() }}) as sequence_in_second
    from {{ ref('stg_kahuna__' ~ category ~ '_logs') }}
    where user_id is not null and action is not null
    {{ 'union all' if not loop.last }}
{%- endfor %}
),

kaon_page_views as (
    select
        {{ dbt.concat(["'click:'", "client", "':'", "external_id", "':'",
                       "cast(timestamp_unix as " ~ dbt.type_string() ~ ")", "':'",
                       "cast(sequence_in_second as " ~ dbt.type_string() ~ ")"]) }} as event_id,
        'kaon_click' as source,
        external_id as person,
        {{ kissmetrics_name("'Viewed ' || path") }} as event,
        clicked_at as timestamp,
        cast(null as {{ dbt.type_string() }}) as campaign,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        cast(null as {{ dbt.type_string() }}) as action_detail,
        cast(null as {{ dbt.type_string() }}) as os,
        sequence_in_second
    from {{ ref('stg_kaon__external_id_hits') }}
    where external_id is not null and path is not null
),

events as (
    select * from kahuna_events
    union all
    select * from kaon_page_views
),

new_events as (
    {{ not_yet_in_mart('events', ['event_id']) }}
)

select
    event_id,
    {{ next_replay_sequence('timestamp, event_id') }} as replay_sequence,
    source,
    person,
    event,
    timestamp,
    campaign,
    campaign_id,
    action_detail,
    os,
    sequence_in_second
from new_events
