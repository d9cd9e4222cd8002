-- Kahuna e-mail logs, one row per log (log_date, log_position), typed.
select
    {{ kahuna_log_key('email') }},
    {{ nonblank('user_id') }} as user_id,
    {{ nonblank('campaign') }} as campaign,
    {{ nonblank('campaign_id') }} as campaign_id,
    {{ nonblank('action') }} as action,
    {{ nonblank('action_detail') }} as action_detail,
    message,
    credentials,
    extra
from {{ deduplicated('kahuna', 'email_logs', ['log_date', 'log_position']) }} as logs
