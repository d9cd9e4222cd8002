-- Kissmetrics aliases, beacon-shaped: person (_p) and alias (_n), two identities of one user.
--   Kahuna user merges: the merged user ID is an alias of the surviving one (never a user with itself).
--   Kahuna credentials: a user's credentials of the types in var('alias_credential_types') (e-mail by
--   default) are aliases of the user ID. Aliasing cannot be undone in Kissmetrics: add types with care.
-- first_seen_at says when the pair first appeared. Append-only, one row per (person, alias).
{{ config(unique_key=['person', 'alias']) }}

with merges as (
    select surviving_user_id as person, merged_user_id as alias, 'kahuna_merge' as source, logged_at
    from {{ ref('stg_kahuna__user_merge_logs') }}
    where surviving_user_id is not null and merged_user_id is not null and surviving_user_id <> merged_user_id
),

credentials as (
    select user_id as person, credential_value as alias, 'kahuna_credential' as source, logged_at
    from {{ ref('stg_kahuna__credentials') }}
    where user_id is not null
      and credential_type in ({% for kind in var('alias_credential_types') %}'{{ kind }}'{{ ", " if not loop.last }}{% endfor %})
      and credential_value <> user_id
),

pairs as (
    select person, alias, min(source) as source, min(logged_at) as first_seen_at
    from (select * from merges union all select * from credentials) as found
    group by person, alias
),

new_pairs as (
    {{ not_yet_in_mart('pairs', ['person', 'alias']) }}
)

select
    person,
    alias,
    {{ next_replay_sequence('first_seen_at, person, alias') }} as replay_sequence,
    source,
    first_seen_at
from new_pairs
