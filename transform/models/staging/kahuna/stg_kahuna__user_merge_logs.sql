-- Kahuna user merges, one row per log (log_date, log_position): merged_user_id became surviving_user_id.
select
    {{ kahuna_log_id('user_merge') }} as log_id,
    cast(log_date as date) as log_date,
    cast(log_position as {{ dbt.type_bigint() }}) as log_position,
    {{ utc_timestamp('timestamp') }} as logged_at,
    {{ nonblank('surviving_user_id') }} as surviving_user_id,
    {{ nonblank('merged_user_id') }} as merged_user_id,
    common_credentials,
    surviving_credentials,
    merged_credentials,
    extra
from {{ deduplicated('kahuna', 'user_merge_logs', ['log_date', 'log_position']) }} as logs
