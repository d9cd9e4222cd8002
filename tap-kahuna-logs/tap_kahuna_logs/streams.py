"""The four Kahuna log streams, one per category. Keys and bookmarks are explained in ``daily_stream.py``."""

from __future__ import annotations

from singer_sdk import typing as th

from tap_kahuna_logs.daily_stream import DailyLogStream


def _credentials(name: str, description: str) -> list[th.Property]:
    return [
        th.Property(name, th.ArrayType(th.StringType), description=f"{description}, as the API sends them."),
        th.Property(
            f"{name}_by_type",
            th.ObjectType(additional_properties=th.ArrayType(th.StringType)),
            description=f"{description} of the form type:value, as type -> values (split on the first ':').",
        ),
    ]


def _schema(*fields: th.Property) -> dict:
    return th.PropertiesList(
        th.Property("log_date", th.DateType, required=True, description="UTC day the record belongs to (key)."),
        th.Property(
            "log_position",
            th.IntegerType,
            required=True,
            description="0-based position of the record among its category's records of that day (key).",
        ),
        th.Property("timestamp", th.DateTimeType, description="When Kahuna wrote the record (UTC, microseconds)."),
        *fields,
        th.Property(
            "extra",
            th.ObjectType(additional_properties=True),
            description="Fields the API sent that this tap does not know, as sent.",
        ),
    ).to_dict()


_USER = th.Property("user_id", th.StringType, description="Kahuna user ID of the target user.")
_CAMPAIGN = [
    th.Property("campaign", th.StringType, description="Campaign name."),
    th.Property("campaign_id", th.StringType, description="Kahuna campaign ID."),
]
_ACTION = [
    th.Property("action", th.StringType, description="What happened, e.g. ia_delivered."),
    th.Property("action_detail", th.StringType, description="More about the action, e.g. a goal ID."),
]
_MESSAGE = th.Property("message", th.StringType, description="The message text.")
_OS = th.Property("os", th.StringType, description="Platform of the device: android or ios.")


class InappLogsStream(DailyLogStream):
    """In-app message logs (category ``inapp``)."""

    name = "inapp_logs"
    category = "inapp"
    schema = _schema(_USER, *_credentials("credentials", "User credentials"), *_CAMPAIGN, *_ACTION, _MESSAGE, _OS)


class PushLogsStream(DailyLogStream):
    """Push notification logs (category ``push``)."""

    name = "push_logs"
    category = "push"
    schema = _schema(
        th.Property("dev_id", th.StringType, description="Device ID."),
        _USER,
        *_credentials("credentials", "User credentials"),
        *_CAMPAIGN,
        *_ACTION,
        th.Property("action_category", th.StringType, description="Category of the push action."),
        th.Property("push_token", th.StringType, description="Push token of the device."),
        _MESSAGE,
        _OS,
        th.Property("ghost", th.BooleanType, description="Whether the push went to a ghost (uninstalled) device."),
    )


class EmailLogsStream(DailyLogStream):
    """Email logs (category ``email``)."""

    name = "email_logs"
    category = "email"
    schema = _schema(_USER, *_credentials("credentials", "User credentials"), *_CAMPAIGN, *_ACTION, _MESSAGE)


class UserMergeLogsStream(DailyLogStream):
    """User merge logs (category ``user_merge``, always requested on its own)."""

    name = "user_merge_logs"
    category = "user_merge"
    schema = _schema(
        th.Property("surviving_user_id", th.StringType, description="Kahuna user ID that remains."),
        th.Property("merged_user_id", th.StringType, description="Kahuna user ID merged into the surviving one."),
        *_credentials("common_credentials", "Credentials both users had"),
        *_credentials("surviving_credentials", "Credentials of the surviving user"),
        *_credentials("merged_credentials", "Credentials of the merged user"),
    )


STREAM_TYPES: dict[str, type[DailyLogStream]] = {
    stream.category: stream for stream in (InappLogsStream, PushLogsStream, EmailLogsStream, UserMergeLogsStream)
}
