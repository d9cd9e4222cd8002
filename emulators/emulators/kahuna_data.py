"""The Kahuna Logs emulator's synthetic, deterministic log records.

Dataset API (the emulator serves exactly this; tests regenerate it to know what to expect)::

    from emulators.kahuna_data import KahunaDataset

    data = KahunaDataset(seed=42, now=datetime(2026, 11, 18, 15, 30, tzinfo=timezone.utc),
                         days=30, logs_per_day=300, env="p",
                         # the shape knobs, all optional (these are their defaults):
                         size_jitter=0.4, same_timestamp_run=15,
                         burst_minute=None, burst_records=0, burst_day=None)
    data.days                      # list[date]: the ``days`` UTC days ending with now's day, oldest first
    data.records("inapp", day)     # list[dict]: that category's records of that UTC day, exactly as the API
                                   # returns them, in API order, only those with timestamp <= now
                                   # ([] for a day outside ``data.days``)
    data.full_day("inapp", day)    # the whole day, ignoring now (what becomes visible as the clock advances)
    data.at(other_now)             # the same data seen at another instant (shares the generated days)
    dataset_from_options(options, now, env="p")   # built from the emulator's parsed CLI options

Rules the records follow:

- A (category, day) is generated from ``(seed, env, category, day)`` alone, so a day's records never
  change when ``now`` or ``days`` change: as the clock advances, today's list only grows at its end.
- ``env="s"`` (sandbox) uses another seed and a third of ``logs_per_day``.
- Per day, ``inapp``, ``push`` and ``email`` hold about ``logs_per_day`` records (``1 - size_jitter`` to
  ``1 + size_jitter`` times it, default 0.6x to 1.4x, varying by day and category) and ``user_merge`` about
  a quarter of that, plus one (the genuine repeat below). ``size_jitter=0``: exactly ``logs_per_day + 1``
  (a quarter + 1 for ``user_merge``).
- A burst (``burst_records > 0``): ``burst_records`` more records per category in the minute
  ``burst_minute`` (``"HH:MM"``, UTC), at random instants of that minute, on every day or only on
  ``burst_day``; merged into the day by timestamp (the base records first among equal ones). The sandbox
  gets the same burst. With ``burst_records`` above ``number_of_records`` that minute holds more
  records than one capped cursor chain can deliver.
- Timestamps are ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC, non-decreasing within a day. Hard cases on every
  day big enough: the first record at ``00:00:00.000000``, the last at ``23:59:59.999999``, a run of
  ``same_timestamp_run`` (default :data:`LONG_RUN`) records sharing one exact timestamp (longer than
  small pages; days smaller than the run plus 5 have none), a few shorter runs,
  one genuine repeat (two records identical in every field, next to each other), unknown extra fields
  (``"experiment": "b"``), unicode and quotes in messages and campaign names, credentials whose value
  contains ``:`` (``"email:a:b@x.com"``) and credentials without a type (``"12345"``).
- ``push`` records omit optional fields at random; ``inapp`` follows the seed document (``action_detail``
  only for ``ia_goal``/``precomplete``, ``message`` only for ``ia_available``/``ia_delivered``).
"""

from __future__ import annotations

import argparse
import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from heapq import merge
from typing import Any

#: The Logs API's categories. The emulator keeps its own copy of the vendor's facts on purpose (it stands for the
#: service, independently of the tap's ``tap_kahuna_logs.settings.CATEGORIES``); the tests hold the two equal.
CATEGORIES = ("inapp", "push", "email", "user_merge")
COMBINABLE_CATEGORIES = ("inapp", "push", "email")
SANDBOX = "s"
PRODUCTION = "p"
SANDBOX_SEED_OFFSET = 7919
SANDBOX_SIZE_DIVISOR = 3
USER_MERGE_SHARE = 0.25
LONG_RUN = 15
MICROSECONDS_PER_DAY = 86_400_000_000
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

CAMPAIGNS = (
    (85440012, "startios Trigger In-App"),
    (7610011, "Individual Reachout"),
    (91230001, "Café Promo ☕"),
    (91230002, "Rückkehr-Kampagne"),
    (91230003, "夏のセール"),
    (91230004, 'Winback "lapsed" users'),
    (91230005, "Onboarding day 1"),
)
MESSAGES = (
    'test{{birth_year|default:"gh"}}',
    'test{{last_name|default:"fsdf"}}',
    "Welcome back, {{first_name}}! 🎉",
    "Ünïcødé naïve café ☕ — 20 % off",
    "日本語のメッセージ",
    "line one\nline two",
    'a "quoted" word and a back\\slash',
)
INAPP_ACTIONS = ("ia_available", "ia_delivered", "ia_goal", "precomplete")
PUSH_ACTIONS = ("push_sent", "push_delivered", "push_opened", "push_failed")
PUSH_FAILURES = ("InvalidRegistration", "NotRegistered", "MismatchSenderId")
EMAIL_ACTIONS = ("email_sent", "email_delivered", "email_opened", "email_clicked", "email_bounced")
GOALS = ("purchase", "signup_complete", "level_5", "añadir_al_carrito")
OS_NAMES = ("android", "ios")
# Push fields a record may lack (a public sample shows most fields can be missing).
PUSH_OPTIONAL_FIELDS = (
    "dev_id",
    "user_id",
    "campaign",
    "campaign_id",
    "action_category",
    "action_detail",
    "push_token",
    "credentials",
    "message",
    "os",
    "ghost",
)
PUSH_FIELD_OMIT_RATE = 0.15
EXTRA_FIELD_RATE = 0.03


def format_timestamp(moment: datetime) -> str:
    """A UTC instant in the API's record format ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return moment.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


@dataclass(frozen=True)
class DayShape:
    """The knobs that shape every generated day (see the module docstring)."""

    size_jitter: float = 0.4
    same_timestamp_run: int = LONG_RUN
    burst_minute: str | None = None
    burst_records: int = 0
    burst_day: date | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.size_jitter < 1:
            raise ValueError(f"size_jitter must be from 0 to below 1, got {self.size_jitter}")
        if self.same_timestamp_run < 2:
            raise ValueError(f"same_timestamp_run must be at least 2, got {self.same_timestamp_run}")
        if self.burst_records < 0:
            raise ValueError(f"burst_records must be 0 or more, got {self.burst_records}")
        if self.burst_records and self.burst_minute is None:
            raise ValueError("burst_records needs burst_minute (HH:MM, UTC)")
        if self.burst_minute is not None:
            parse_minute(self.burst_minute)

    def burst_on(self, day: date) -> bool:
        """Whether ``day`` gets the burst."""
        return self.burst_records > 0 and self.burst_day in (None, day)


def parse_minute(text: str) -> timedelta:
    """``"HH:MM"`` (00:00 .. 23:59) as the time since midnight; ``ValueError`` otherwise."""
    hours, separator, minutes = text.partition(":")
    if not (separator and hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and len(hours) <= 2):
        raise ValueError(f"a minute must look like HH:MM, got {text!r}")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"a minute must be from 00:00 to 23:59, got {text!r}")
    return timedelta(hours=int(hours), minutes=int(minutes))


@dataclass
class _Generator:
    """Builds whole days of records; shared by every :class:`KahunaDataset` view of one seed and size."""

    seed: int
    env: str
    logs_per_day: int
    shape: DayShape
    _users: dict[int, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.full_day = lru_cache(maxsize=1024)(self._build_day)

    def _rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(str(part) for part in (self.seed, self.env, *parts)))

    def _size(self, category: str, day: date) -> int:
        share = USER_MERGE_SHARE if category == "user_merge" else 1.0
        jitter = self.shape.size_jitter
        factor = self._rng("size", category, day.isoformat()).uniform(1 - jitter, 1 + jitter)
        return max(1, round(self.logs_per_day * share * factor))

    def _build_day(self, category: str, day: date) -> tuple[dict[str, Any], ...]:
        rng = self._rng("day", category, day.isoformat())
        size = self._size(category, day)
        offsets = _day_offsets(rng, size, self.shape.same_timestamp_run)
        midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        build = getattr(self, f"_{category}_record")
        records = []
        for offset in offsets:
            record = build(rng, format_timestamp(midnight + timedelta(microseconds=offset)))
            if rng.random() < EXTRA_FIELD_RATE:
                record["experiment"] = rng.choice(("a", "b"))
            records.append(record)
        if len(records) >= 3:
            repeated = rng.randrange(1, len(records) - 1)
            records.insert(repeated + 1, dict(records[repeated]))
        if self.shape.burst_on(day):
            burst = self._burst(category, day, midnight)
            return tuple(merge(records, burst, key=lambda record: record["timestamp"]))
        return tuple(records)

    def _burst(self, category: str, day: date, midnight: datetime) -> list[dict[str, Any]]:
        """The burst's records: random instants of the burst minute, sorted, from their own dice."""
        assert self.shape.burst_minute is not None
        rng = self._rng("burst", category, day.isoformat())
        minute = midnight + parse_minute(self.shape.burst_minute)
        offsets = sorted(rng.randrange(60_000_000) for _ in range(self.shape.burst_records))
        build = getattr(self, f"_{category}_record")
        return [build(rng, format_timestamp(minute + timedelta(microseconds=offset))) for offset in offsets]

    # --- users and credentials --------------------------------------------------------
    def _user(self, rng: random.Random) -> tuple[int, list[str]]:
        user_id = 160_000_000 + rng.randrange(max(20, self.logs_per_day))
        if user_id not in self._users:
            self._users[user_id] = _credentials(self._rng("user", user_id), user_id)
        return user_id, list(self._users[user_id])

    # --- one record per category --------------------------------------------------------
    def _inapp_record(self, rng: random.Random, timestamp: str) -> dict[str, Any]:
        user_id, credentials = self._user(rng)
        campaign_id, campaign = rng.choice(CAMPAIGNS)
        action = rng.choice(INAPP_ACTIONS)
        record: dict[str, Any] = {
            "user_id": user_id,
            "campaign": campaign,
            "timestamp": timestamp,
            "campaign_id": campaign_id,
            "action": action,
        }
        if action in ("ia_goal", "precomplete"):
            record["action_detail"] = rng.choice(GOALS)
        else:
            record["message"] = rng.choice(MESSAGES)
        record["credentials"] = credentials
        record["os"] = rng.choice(OS_NAMES)
        return record

    def _push_record(self, rng: random.Random, timestamp: str) -> dict[str, Any]:
        user_id, credentials = self._user(rng)
        campaign_id, campaign = rng.choice(CAMPAIGNS)
        action = rng.choice(PUSH_ACTIONS)
        failed = action == "push_failed"
        record: dict[str, Any] = {
            "dev_id": f"{rng.getrandbits(64):016x}",
            "user_id": user_id,
            "campaign": campaign,
            "campaign_id": campaign_id,
            "timestamp": timestamp,
            "action": action,
            "action_category": "push_failure" if failed else "push",
            "action_detail": rng.choice(PUSH_FAILURES) if failed else "",
            "push_token": f"{rng.getrandbits(128):032x}",
            "credentials": credentials,
            "message": rng.choice(MESSAGES),
            "os": rng.choice(OS_NAMES),
            "ghost": rng.random() < 0.1,
        }
        for name in PUSH_OPTIONAL_FIELDS:
            if rng.random() < PUSH_FIELD_OMIT_RATE:
                del record[name]
        return record

    def _email_record(self, rng: random.Random, timestamp: str) -> dict[str, Any]:
        user_id, credentials = self._user(rng)
        campaign_id, campaign = rng.choice(CAMPAIGNS)
        action = rng.choice(EMAIL_ACTIONS)
        record: dict[str, Any] = {
            "user_id": user_id,
            "credentials": credentials,
            "campaign": campaign,
            "campaign_id": campaign_id,
            "timestamp": timestamp,
            "action": action,
        }
        if action == "email_clicked":
            record["action_detail"] = f"https://example.com/offer?id={rng.randrange(1000)}&lang=fr"
        elif action == "email_bounced":
            record["action_detail"] = rng.choice(("hard_bounce", "soft_bounce: mailbox full"))
        record["message"] = rng.choice(MESSAGES)
        return record

    def _user_merge_record(self, rng: random.Random, timestamp: str) -> dict[str, Any]:
        surviving_id, surviving = self._user(rng)
        merged_id, merged = self._user(rng)
        common = [credential for credential in surviving if credential in merged] or surviving[:1]
        return {
            "timestamp": timestamp,
            "surviving_user_id": surviving_id,
            "merged_user_id": merged_id,
            "common_credentials": common,
            "surviving_credentials": surviving,
            "merged_credentials": merged,
        }


def _day_offsets(rng: random.Random, size: int, long_run: int) -> list[int]:
    """Sorted microsecond offsets in one day, with the first/last instants and runs of equal values."""
    offsets = sorted(rng.randrange(MICROSECONDS_PER_DAY) for _ in range(size))
    offsets[0] = 0
    if size >= 2:
        offsets[-1] = MICROSECONDS_PER_DAY - 1
    for _ in range(size // 40):
        _make_run(offsets, rng.randrange(1, size - 5), rng.randint(2, 4))
    # Last, so no shorter run cuts into it.
    if size >= long_run + 5:
        _make_run(offsets, rng.randrange(1, size - long_run - 1), long_run)
    return offsets


def _make_run(offsets: list[int], start: int, length: int) -> None:
    """Give ``length`` consecutive records the timestamp of the first; order stays non-decreasing."""
    for index in range(start + 1, min(start + length, len(offsets) - 1)):
        offsets[index] = offsets[start]


def _credentials(rng: random.Random, user_id: int) -> list[str]:
    """A user's credentials as ``type:value`` strings, sometimes with ':' in the value or no type."""
    credentials = [f"user_id:{user_id}"]
    if rng.random() < 0.7:
        local = rng.choice(("ann", "bo", "chloé", "a:b"))
        credentials.append(f"email:{local}{user_id % 1000}@example.com")
    if rng.random() < 0.3:
        credentials.append(f"fbid:{rng.getrandbits(48)}")
    if rng.random() < 0.2:
        credentials.append(f"username:{rng.choice(('zoë', 'max', 'li'))}_{user_id % 97}")
    if rng.random() < 0.1:
        credentials.append(str(rng.randrange(10_000, 99_999)))
    return credentials


class KahunaDataset:
    """The log records of one environment, as seen at one instant (see the module docstring)."""

    def __init__(
        self,
        seed: int = 42,
        now: datetime | None = None,
        days: int = 30,
        logs_per_day: int = 300,
        env: str = PRODUCTION,
        *,
        size_jitter: float = 0.4,
        same_timestamp_run: int = LONG_RUN,
        burst_minute: str | None = None,
        burst_records: int = 0,
        burst_day: date | None = None,
        _generator: _Generator | None = None,
    ) -> None:
        if env not in (PRODUCTION, SANDBOX):
            raise ValueError(f"env must be {PRODUCTION!r} or {SANDBOX!r}, got {env!r}")
        if days < 1 or logs_per_day < 1:
            raise ValueError("days and logs_per_day must be at least 1")
        self.seed = seed
        self.now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        self.day_count = days
        self.logs_per_day = logs_per_day
        self.env = env
        self._generator = _generator or _Generator(
            seed=seed + SANDBOX_SEED_OFFSET if env == SANDBOX else seed,
            env=env,
            logs_per_day=max(1, logs_per_day // SANDBOX_SIZE_DIVISOR) if env == SANDBOX else logs_per_day,
            shape=DayShape(size_jitter, same_timestamp_run, burst_minute, burst_records, burst_day),
        )
        self.now_text = format_timestamp(self.now)

    def at(self, now: datetime) -> KahunaDataset:
        """The same data seen at ``now`` (cheap: generated days are shared)."""
        return KahunaDataset(self.seed, now, self.day_count, self.logs_per_day, self.env, _generator=self._generator)

    @property
    def days(self) -> list[date]:
        """The UTC days served, oldest first; the last is now's day (a partial day)."""
        today = self.now.date()
        return [today - timedelta(days=back) for back in range(self.day_count - 1, -1, -1)]

    def has_day(self, day: date) -> bool:
        """Whether ``day`` is one of :attr:`days`."""
        today = self.now.date()
        return today - timedelta(days=self.day_count - 1) <= day <= today

    def full_day(self, category: str, day: date) -> tuple[dict[str, Any], ...]:
        """Every record of ``category`` on ``day``, ignoring now (shared objects: do not modify)."""
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
        return self._generator.full_day(category, day)

    def records(self, category: str, day: date) -> list[dict[str, Any]]:
        """The records of ``category`` on ``day`` that the API returns at now, in API order."""
        if not self.has_day(day):
            return []
        full = self.full_day(category, day)
        return list(full[: visible_count([record["timestamp"] for record in full], self.now_text)])


def visible_count(timestamps: list[str], now_text: str) -> int:
    """How many of the (sorted) record timestamps are at or before now."""
    return bisect_right(timestamps, now_text)


def first_index_from(timestamps: list[str], start_text: str) -> int:
    """The index of the first (sorted) record timestamp at or after ``start_text``."""
    return bisect_left(timestamps, start_text)


def dataset_from_options(options: argparse.Namespace, now: datetime, env: str = PRODUCTION) -> KahunaDataset:
    """The dataset the emulator started with ``options`` serves for ``env`` at ``now``."""
    return KahunaDataset(
        seed=options.seed,
        now=now,
        days=options.days,
        logs_per_day=options.logs_per_day,
        env=env,
        size_jitter=options.day_size_jitter,
        same_timestamp_run=options.same_timestamp_run,
        burst_minute=options.burst_minute,
        burst_records=options.burst_records,
        burst_day=options.burst_day,
    )
