-- The modelled views the Kissmetrics replay reads (tap-postgres -> target-kissmetrics--warehouse).
-- Beacon-shaped: `person`, `event` and `timestamp` feed _p, _n and _t; every other column is a property.
-- Sources: the Kahuna log tables that the kahuna-to-postgres job loads into schema `kahuna`.
-- Applied by `meltano invoke warehouse-sql:apply` (the first task of the warehouse-to-kissmetrics job).

CREATE SCHEMA IF NOT EXISTS kissmetrics;

-- One event per in-app, push and email log of a known user.
CREATE OR REPLACE VIEW kissmetrics.events AS
SELECT user_id AS person, 'Kahuna in-app ' || action AS event, "timestamp",
       campaign, campaign_id, action_detail, NULL::text AS os
FROM kahuna.inapp_logs
WHERE user_id <> '' AND action <> ''
UNION ALL
SELECT user_id, 'Kahuna push ' || action, "timestamp", campaign, campaign_id, NULL, os
FROM kahuna.push_logs
WHERE user_id <> '' AND action <> ''
UNION ALL
SELECT user_id, 'Kahuna email ' || action, "timestamp", campaign, campaign_id, NULL, NULL
FROM kahuna.email_logs
WHERE user_id <> '' AND action <> '';

-- Each user's latest known platform, as a person property at the time it was seen.
CREATE OR REPLACE VIEW kissmetrics.people AS
SELECT DISTINCT ON (user_id) user_id AS person, "timestamp", os AS platform
FROM kahuna.push_logs
WHERE user_id <> '' AND os <> ''
ORDER BY user_id, "timestamp" DESC, log_date DESC, log_position DESC;

-- Merged Kahuna users become Kissmetrics aliases (aliasing cannot be undone: only real merges).
CREATE OR REPLACE VIEW kissmetrics.aliases AS
SELECT DISTINCT surviving_user_id AS person, merged_user_id AS alias
FROM kahuna.user_merge_logs
WHERE surviving_user_id <> '' AND merged_user_id <> '' AND surviving_user_id <> merged_user_id;
