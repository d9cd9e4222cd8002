"""Deterministic synthetic data of the Kaon Insights emulator.

Everything derives from (seed, knobs, now); nothing from ``hash()`` or unseeded randomness,
so tests regenerate exactly what the server serves:

``KaonDataset(seed=42, client="demo-client", now=<aware datetime>, first_week=417,
weeks_before_now=None, launch_week=None, devices_per_week=500, paths=30,
external_ids=5, clicks_per_id=2000, same_second_run=30)``

- ``.current_week``, ``.first_week``, ``.launch_week``, ``.full_weeks`` (first..current)
- ``.weekname(week)`` -> ``"Week of Nov 15, 2026"`` (``Week of %b %d, %Y``, the week's Sunday)
- ``.engagement(week)`` -> ``[{"bucket", "count"}]`` in bucket order
- ``.device_uids(week)`` -> ``["0x<16 hex>", ...]``, ``.uids_string(week)`` (the API's string)
- ``.countries(week)`` / ``.languages(week)`` -> ``{code: count}`` in API order
- ``.path_names`` (URL-encoded, as the API returns them), ``.hits_for_week(week)`` -> ``[{"path", "count"}]``,
  ``.path_history(path)`` -> ``[{"week", "count"}]``, ``.path_countries(path, week)`` -> ``{code: count}``
- ``.external_id_names``, ``.clickstream(external_id)`` -> visible records, ascending by timestamp
  (``{"timestamp", "path", ...extra}``; ``path`` here is the decoded form, e.g. ``"Café Menü/Größe"``),
  ``.clickstream_page(external_id, start, limit)`` (what ``extid`` answers)
- ``.at(now)`` (the same data at another instant), ``dataset_from_options(options, now)`` (what the
  server builds from its parsed CLI options)
- module functions ``week_start(week) -> date`` and ``week_of(instant) -> int``

The server makes one dataset at start-up and serves ``dataset.at(clock_now)``: to model a
clock advance in a test, use ``KaonDataset(..., now=start).at(later)``, not a new dataset.

The current week is still filling: its counts are the full counts times the elapsed
fraction of the week at ``now`` (rounded down), and its devices are a prefix of the full
list, so both grow as the clock advances. Clicks later than ``now`` are hidden.
"""

from __future__ import annotations

import bisect
import copy
import random
from datetime import date, datetime, timedelta, timezone
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import quote, unquote

EPOCH = date(2012, 1, 1)
SECONDS_PER_WEEK = 7 * 86400
BUCKETS = ["0-10s", "10-30s", "30-60s", "1-3m", "3-10m", "10-30m", "30m+"]
COUNTRIES = ["US", "GB", "DE", "FR", "JP", "BR", "IN", "CA", "AU", "ES", "IT", "NL", "SE", "KR", "MX"]
#: Kaon's language codes (not ISO) and names, from the vendor's document. The emulator keeps its own copy on
#: purpose (as of the buckets and the week epoch above): it serves the vendor's facts independently of the tap
#: (``tap_kaon_insights.vendor_tables``), so a tap that got them wrong would be caught by the tests.
LANGUAGES = {
    "en": "English",
    "gb": "English (UK)",
    "ar": "عربى (Arabic)",
    "cs": "Česky (Czech)",
    "da": "Dansk (Danish)",
    "de": "Deutsch (German)",
    "el": "Ελληνικά (Greek)",
    "es": "Español (Spanish)",
    "fi": "Suomi (Finnish)",
    "fr": "Français (French)",
    "ca": "Français (Canadian French)",
    "it": "Italiano (Italian)",
    "ja": "日本語 (Japanese)",
    "ko": "한국어 (Korean)",
    "nl": "Nederlands (Dutch)",
    "no": "Norsk (Norweigan)",
    "pl": "Polski (Polish)",
    "pt": "Português (Portuguese)",
    "bz": "Português (Brasilian Portuguese)",
    "ru": "Русский (Russian)",
    "sv": "Svenska (Swedish)",
    "th": "ไทย (Thai)",
    "tr": "Türkçe (Turkish)",
    "vi": "Tiếng Việt (Vietnamese)",
    "zh": "中文 (Chinese)",
    "zt": "繁體中文 (Traditional Chinese)",
}
#: Paths that exercise encoding: spaces, unicode, reserved characters.
HARD_CASE_PATHS = [
    "home",
    "tours/Main Lobby",
    "Café Menü/Größe",
    "日本語/ページ",
    "products/shoes & socks",
    "math/a+b=c",
    "sale/100% cotton",
]
HARD_CASE_EXTERNAL_IDS = ["user 42+test@example.com"]
EXTRA_DEVICES = [{"os": "ios", "model": "iPad"}, {"os": "android", "model": "Pixel 8"}, {"os": "web"}]


def week_start(week: int) -> date:
    """The Sunday (UTC) on which Kaon week ``week`` starts."""
    return EPOCH + timedelta(days=7 * week)


def week_of(instant: datetime) -> int:
    """The Kaon week containing ``instant``."""
    return (instant.astimezone(timezone.utc).date() - EPOCH).days // 7


def _unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _rng(seed: int, *parts: object) -> random.Random:
    # str seeds are hashed with SHA-512 by random.seed: stable across processes
    return random.Random(f"{seed}:" + ":".join(str(p) for p in parts))


class KaonDataset:
    """The emulator's data for one seed, set of knobs and instant."""

    def __init__(
        self,
        seed: int = 42,
        client: str = "demo-client",
        now: datetime | None = None,
        first_week: int = 417,
        weeks_before_now: int | None = None,
        launch_week: int | None = None,
        devices_per_week: int = 500,
        paths: int = 30,
        external_ids: int = 5,
        clicks_per_id: int = 2000,
        same_second_run: int = 30,
    ) -> None:
        self.seed = seed
        self.client = client
        self.now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        self.current_week = week_of(self.now)
        self.first_week = self.current_week - weeks_before_now if weeks_before_now is not None else first_week
        self.launch_week = launch_week if launch_week is not None else self.first_week - 20
        self.devices_per_week = devices_per_week
        self.path_count = max(paths, len(HARD_CASE_PATHS))
        self.external_id_count = external_ids
        self.clicks_per_id = clicks_per_id
        self.same_second_run = same_second_run
        # clicks span up to the end of next week, so advancing the clock reveals new ones
        self.click_span = (_unix(week_start(self.first_week)), _unix(week_start(self.current_week + 2)))
        self.created_at = self.now  # what the clickstreams are anchored to; ``at()`` keeps it
        self._clickstreams: dict[str, tuple[list[int], list[int], list[int]]] = {}

    def at(self, now: datetime) -> KaonDataset:
        """The same data seen at another instant: what the server serves after its clock moved.

        The week window, the clickstreams and every count stay anchored at the instant the
        dataset was made; only the current week and what is visible move.
        """
        other = copy.copy(self)
        other.now = now.astimezone(timezone.utc)
        other.current_week = week_of(other.now)
        return other

    # --- weeks -----------------------------------------------------------------
    @property
    def full_weeks(self) -> list[int]:
        """Weeks with full data, oldest first (the current one included)."""
        return list(range(self.first_week, self.current_week + 1))

    @property
    def fill_fraction(self) -> float:
        """How much of the current week has elapsed at ``now``, in [0, 1)."""
        start = datetime.combine(week_start(self.current_week), datetime.min.time(), tzinfo=timezone.utc)
        return (self.now - start).total_seconds() / SECONDS_PER_WEEK

    def weekname(self, week: int) -> str:
        """The API's display name of a week."""
        return f"Week of {week_start(week).strftime('%b %d, %Y')}"

    def _filled(self, week: int, full_count: int) -> int:
        return int(full_count * self.fill_fraction) if week == self.current_week else full_count

    # --- weekly tables ------------------------------------------------------------
    def engagement(self, week: int) -> list[dict[str, Any]]:
        """The engagement histogram of a week, in bucket order."""
        rng = _rng(self.seed, "engagement", week)
        return [
            {"bucket": bucket, "count": self._filled(week, rng.randint(50, 4000) // (order + 1))}
            for order, bucket in enumerate(BUCKETS)
        ]

    def device_count(self, week: int) -> int:
        """How many devices the week has (so far)."""
        return self._filled(week, self.devices_per_week)

    def uids_string(self, week: int) -> str:
        """The ``uids`` string the API returns: ``0x<16 hex>`` per device."""
        return _full_uids_string(self.seed, week, self.devices_per_week)[: 18 * self.device_count(week)]

    def device_uids(self, week: int) -> list[str]:
        """The device uids of a week, in API order."""
        text = self.uids_string(week)
        return [text[i : i + 18] for i in range(0, len(text), 18)]

    def _code_counts(self, kind: str, codes: list[str], week: int) -> dict[str, int]:
        rng = _rng(self.seed, kind, week)
        chosen = [code for code in codes if rng.random() < 0.6] or codes[:1]
        return {code: self._filled(week, rng.randint(1, 3000)) for code in chosen}

    def countries(self, week: int) -> dict[str, int]:
        """Engagements per country code."""
        return self._code_counts("countries", COUNTRIES, week)

    def languages(self, week: int) -> dict[str, int]:
        """Engagements per Kaon language code."""
        return self._code_counts("languages", list(LANGUAGES), week)

    # --- hits -------------------------------------------------------------------
    @cached_property
    def path_names(self) -> list[str]:
        """Every path, URL-encoded as the API returns it."""
        raw = HARD_CASE_PATHS + [
            f"section-{i % 5}/item {i}" for i in range(len(HARD_CASE_PATHS), self.path_count)
        ]  # fmt: skip
        return [quote(path, safe="/") for path in raw]

    def _path_first_week(self, path: str) -> int:
        if path in self.path_names[: len(HARD_CASE_PATHS)]:
            return self.launch_week
        # anchored at creation: a path's history must not change when the clock moves on
        return _rng(self.seed, "path-start", path).randint(self.launch_week, week_of(self.created_at))

    def _path_week_count(self, path: str, week: int) -> int:
        if week < self._path_first_week(path) or week > self.current_week:
            return 0
        rng = _rng(self.seed, "hits", path, week)
        full = 0 if rng.random() < 0.15 else rng.randint(1, 900)
        return self._filled(week, full)

    def hits_for_week(self, week: int) -> list[dict[str, Any]]:
        """Every path with hits in ``week``."""
        counts = ((path, self._path_week_count(path, week)) for path in self.path_names)
        return [{"path": path, "count": count} for path, count in counts if count > 0]

    def path_history(self, path: str) -> list[dict[str, Any]]:
        """Every week with hits on ``path``, from the app's launch to the current week."""
        counts = ((week, self._path_week_count(path, week)) for week in range(self.launch_week, self.current_week + 1))
        return [{"week": week, "count": count} for week, count in counts if count > 0]

    def path_countries(self, path: str, week: int) -> dict[str, int]:
        """The approximate per-country split of a path's hits in a week."""
        count = self._path_week_count(path, week)
        rng = _rng(self.seed, "path-countries", path, week)
        chosen = rng.sample(COUNTRIES, 3)
        shares = [rng.random() for _ in chosen]
        total = sum(shares)
        return {
            code: int(count * share / total * rng.uniform(0.9, 1.1)) for code, share in zip(chosen, shares, strict=True)
        }

    # --- external-ID clickstreams ------------------------------------------------
    @cached_property
    def external_id_names(self) -> list[str]:
        """Every external ID with a clickstream."""
        names = [f"EXT-{i:04d}" for i in range(max(self.external_id_count - len(HARD_CASE_EXTERNAL_IDS), 0))]
        return (names + HARD_CASE_EXTERNAL_IDS)[: max(self.external_id_count, 1)]

    def _columns(self, external_id: str) -> tuple[list[int], list[int], list[int]]:
        """(timestamps, path indexes, extra kinds) of the full stream, visible or not."""
        if external_id not in self._clickstreams:
            self._clickstreams[external_id] = self._generate_clicks(external_id)
        return self._clickstreams[external_id]

    def _generate_clicks(self, external_id: str) -> tuple[list[int], list[int], list[int]]:
        rng = _rng(self.seed, "clicks", external_id)
        start, end = self.click_span
        count = self.clicks_per_id
        # a moment holds ~1.375 records on average (15% runs of 2-5) besides the one long run
        moments = max((count - self.same_second_run) / 1.375, 0) + 1
        mean_gap = max(int((end - start) / moments), 1)
        # the long run sits halfway into what is visible at creation, so a client meets it now
        visible_share = min(max((self.created_at.timestamp() - start) / (end - start), 0.0), 1.0)
        long_run_at = int(count * visible_share / 2)
        timestamps: list[int] = []
        moment = start
        while len(timestamps) < count:
            moment += rng.randint(1, 2 * mean_gap)
            if len(timestamps) <= long_run_at < len(timestamps) + self.same_second_run:
                run = self.same_second_run
            else:
                run = rng.randint(2, 5) if rng.random() < 0.15 else 1
            timestamps.extend([moment] * min(run, count - len(timestamps)))
        path_indexes = [rng.randrange(self.path_count) for _ in timestamps]
        extra_kinds = [rng.choice((0, 0, 0, 1, 2)) for _ in timestamps]
        return timestamps, path_indexes, extra_kinds

    def _visible_count(self, external_id: str) -> int:
        timestamps = self._columns(external_id)[0]
        return bisect.bisect_right(timestamps, int(self.now.timestamp()))

    def _click(self, external_id: str, index: int) -> dict[str, Any]:
        timestamps, path_indexes, extra_kinds = self._columns(external_id)
        record: dict[str, Any] = {"timestamp": timestamps[index], "path": unquote(self.path_names[path_indexes[index]])}
        if extra_kinds[index] == 1:
            record["session"] = f"s-{index // 40:05d}"
        elif extra_kinds[index] == 2:
            record["device"] = EXTRA_DEVICES[index % len(EXTRA_DEVICES)]
        return record

    def clickstream(self, external_id: str) -> list[dict[str, Any]]:
        """The visible clickstream of ``external_id``, ascending by timestamp."""
        if external_id not in self.external_id_names:
            return []
        return [self._click(external_id, i) for i in range(self._visible_count(external_id))]

    def clickstream_page(self, external_id: str, start: int | None, limit: int) -> list[dict[str, Any]]:
        """At most ``limit`` visible records with ``timestamp >= start`` (the API's paging)."""
        if external_id not in self.external_id_names:
            return []
        timestamps = self._columns(external_id)[0]
        first = 0 if start is None else bisect.bisect_left(timestamps, start)
        last = min(first + limit, self._visible_count(external_id))
        return [self._click(external_id, i) for i in range(first, last)]


@lru_cache(maxsize=4)
def _full_uids_string(seed: int, week: int, devices: int) -> str:
    # bytes.hex with a one-character separator every 8 bytes, then "x" -> "0x": fast for millions
    raw = _rng(seed, "uids", week).randbytes(8 * devices)
    if not raw:
        return ""
    return "0x" + raw.hex("x", 8).replace("x", "0x")


def dataset_from_options(options: Any, now: datetime) -> KaonDataset:
    """The dataset the emulator serves for its parsed command-line options."""
    return KaonDataset(
        seed=options.seed,
        client=options.client,
        now=now,
        first_week=options.first_week,
        weeks_before_now=options.weeks_before_now,
        launch_week=options.launch_week,
        devices_per_week=options.devices_per_week,
        paths=options.paths,
        external_ids=options.external_ids,
        clicks_per_id=options.clicks_per_id,
        same_second_run=options.same_second_run,
    )
