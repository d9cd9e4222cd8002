-- Kahuna user merges, one row per log (log_date, log_position): merged_user_id became surviving_user_id.
select
    {{ kahuna_log_key('user_merge') }},
    {{ nonblank('surviving_user_id') }} as surviving_user_id,
    {{ nonblank('merged_user_id') }} as merged_user_id,
    common_credentials,
    surviving_credentials,
    merged_credentials,
    extra
from {{ deduplicated('kahuna', 'user_merge_logs', ['log_date', 'log_position']) }} as logs
