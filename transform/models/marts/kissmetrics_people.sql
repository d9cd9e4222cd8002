-- Kissmetrics person properties, beacon-shaped: person (_p), timestamp (_t) and the properties to set
-- (platform, email; NULLs are not sent). One row where a Kahuna user's platform (the os of their in-app
-- and push logs) or e-mail credential changes, at the time it was seen: Kissmetrics keeps a value per
-- time, so the history replays as it happened. Append-only, one row per (person, timestamp).
{{ config(unique_key=['person', 'timestamp']) }}

with platform_seen as (
    select user_id as person, logged_at as timestamp, os as value, 1 as category_order, log_date, log_position,
           0 as credential_position
    from {{ ref('stg_kahuna__inapp_logs') }}
    where user_id is not null and os is not null
    union all
    select user_id, logged_at, os, 2, log_date, log_position, 0
    from {{ ref('stg_kahuna__push_logs') }}
    where user_id is not null and os is not null
),

email_seen as (
    select user_id as person, logged_at as timestamp, credential_value as value,
           case category when 'inapp' then 1 when 'push' then 2 else 3 end as category_order,
           log_date, log_position, credential_position
    from {{ ref('stg_kahuna__credentials') }}
    where user_id is not null and credential_type = 'email' and credential_list = 'credentials'
),
{%- for property in ['platform', 'email'] %}

-- {{ property }}: at each instant the value of the last log seen (in-app before push before e-mail, then
-- log order; the first e-mail of a log), kept where it differs from the person's value before.
{{ property }}_changes as (
    select person, timestamp, value as {{ property }} from (
        select person, timestamp, value,
               lag(value) over (partition by person order by timestamp) as previous_value
        from (
            select person, timestamp, value,
                   row_number() over (
                       partition by person, timestamp
                       order by category_order desc, log_date desc, log_position desc, credential_position
                   ) as seen_rank
            from {{ property }}_seen
        ) as ranked
        where seen_rank = 1
    ) as sequenced
    where previous_value is null or previous_value <> value
),
{%- endfor %}

changes as (
    select
        coalesce(platform_changes.person, email_changes.person) as person,
        coalesce(platform_changes.timestamp, email_changes.timestamp) as timestamp,
        platform_changes.platform,
        email_changes.email
    from platform_changes
    full outer join email_changes
      on email_changes.person = platform_changes.person and email_changes.timestamp = platform_changes.timestamp
),

new_changes as (
    {{ not_yet_in_mart('changes', ['person', 'timestamp']) }}
)

select
    person,
    timestamp,
    {{ next_replay_sequence('timestamp, person') }} as replay_sequence,
    platform,
    email
from new_changes
