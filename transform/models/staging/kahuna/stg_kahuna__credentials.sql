-- Every credential of every Kahuna log, unpacked: one row per item of each credential list, split into
-- its type and value ("email:a:b@x.com" -> email, a:b@x.com; an untyped "12345" has no type).
-- user_id is the user the list belongs to (a merge's common credentials belong to the surviving user).
{%- set lists = [
    ('inapp', 'stg_kahuna__inapp_logs', 'user_id', 'credentials'),
    ('push', 'stg_kahuna__push_logs', 'user_id', 'credentials'),
    ('email', 'stg_kahuna__email_logs', 'user_id', 'credentials'),
    ('user_merge', 'stg_kahuna__user_merge_logs', 'surviving_user_id', 'surviving_credentials'),
    ('user_merge', 'stg_kahuna__user_merge_logs', 'merged_user_id', 'merged_credentials'),
    ('user_merge', 'stg_kahuna__user_merge_logs', 'surviving_user_id', 'common_credentials'),
] %}

with items as (
{%- for category, model, owner, list_column in lists %}
    select
        '{{ category }}' as category,
        '{{ list_column }}' as credential_list,
        log_id,
        log_date,
        log_position,
        logged_at,
        {{ owner }} as user_id,
        credential_position,
        {{ nonblank('credential') }} as credential
    from ({{ unnest_credentials(ref(model), ['log_id', 'log_date', 'log_position', 'logged_at', owner], list_column) }}) as unnested
    {{ 'union all' if not loop.last }}
{%- endfor %}
)

select
    {{ dbt.concat(["log_id", "':'", "credential_list", "':'",
                   "cast(credential_position as " ~ dbt.type_string() ~ ")"]) }} as credential_id,
    log_id,
    category,
    log_date,
    log_position,
    credential_list,
    cast(credential_position as {{ dbt.type_bigint() }}) as credential_position,
    user_id,
    logged_at,
    credential,
    {{ credential_type('credential') }} as credential_type,
    {{ credential_value('credential') }} as credential_value
from items
where credential is not null
