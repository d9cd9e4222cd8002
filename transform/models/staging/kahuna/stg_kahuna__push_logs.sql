-- Kahuna push logs, one row per log (log_date, log_position), typed. Most fields can be missing.
select
    {{ kahuna_log_key('push') }},
    {{ nonblank('user_id') }} as user_id,
    {{ nonblank('dev_id') }} as dev_id,
    {{ nonblank('campaign') }} as campaign,
    {{ nonblank('campaign_id') }} as campaign_id,
    {{ nonblank('action') }} as action,
    {{ nonblank('action_category') }} as action_category,
    {{ nonblank('action_detail') }} as action_detail,
    {{ nonblank('push_token') }} as push_token,
    message,
    {{ nonblank('os') }} as os,
    ghost,
    credentials,
    extra
from {{ deduplicated('kahuna', 'push_logs', ['log_date', 'log_position']) }} as logs
