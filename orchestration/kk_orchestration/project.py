"""The Meltano project this code location runs: where it is, and the settings that shape the partitions.

Settings are read the way Meltano resolves them (``meltano config print``: meltano.yml, the active
environment, ``.env`` and ``TAP_..._...`` environment variables), so the partitions follow the same
``start_date`` and lists a plain ``meltano run`` would use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

# The taps' own rules, from their one home (every package of the project is installed in one venv, the Makefile's;
# they are not declared as dependencies: their names are not published).
from tap_kahuna_logs.settings import CATEGORIES as KAHUNA_CATEGORIES
from tap_kaon_insights.week_numbers import FIRST_FULL_DATA_WEEK as KAON_FIRST_FULL_DATA_WEEK, week_of

# An editable install (make venv) sits in the project; an image sets KK_MELTANO_PROJECT_DIR.
PROJECT_DIR = Path(os.environ.get("KK_MELTANO_PROJECT_DIR") or Path(__file__).resolve().parents[2])
LAUNCHER = PROJECT_DIR / "scripts" / "isolated_meltano.py"
CONFIG_TIMEOUT_SECONDS = 120

DEFAULT_REPLAY_SHARDS = 4
SETTINGS_VARIABLE = "KK_PARTITION_SETTINGS"


class ProjectSettingsError(RuntimeError):
    """A setting the partitions need is missing or wrong; the message names it."""


def environment() -> str:
    """The Meltano environment: ``MELTANO_ENVIRONMENT``, else meltano.yml's ``default_environment``."""
    return os.environ.get("MELTANO_ENVIRONMENT") or str(meltano_yml().get("default_environment") or "dev")


def meltano_yml() -> dict[str, Any]:
    """The project file, parsed (jobs and schedules are plain data there)."""
    with (PROJECT_DIR / "meltano.yml").open(encoding="utf-8") as project_file:
        return yaml.safe_load(project_file)


def meltano_command(*arguments: str) -> list[str]:
    """A meltano command line through the project's launcher (a private system directory per run)."""
    return [sys.executable, str(LAUNCHER), *arguments]


def plugin_configs(*plugins: str) -> dict[str, dict[str, Any]]:
    """Plugins' resolved configurations in the active environment (secrets masked by Meltano), in one process.

    ``meltano config print`` of each plugin, run by ``kk_orchestration.meltano_config`` in one Python
    process (one Meltano start-up for all of them) through the launcher, like every other meltano command.
    """
    result = subprocess.run(
        meltano_command("--module", "kk_orchestration.meltano_config", "--environment", environment(), *plugins),
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=CONFIG_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise ProjectSettingsError(
            f"`meltano config print {' '.join(plugins)}` failed in {PROJECT_DIR}: {meltano_error(result.stderr)}"
            " (check MELTANO_DATABASE_URI, MELTANO_ENVIRONMENT and the installation: `make venv meltano-install`)"
        )
    configs: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return configs


def meltano_error(stderr: str) -> str:
    """The reason in a failed meltano command's log: its last error line, else its last plain line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not set(line.strip()) & set("│╭╰")]
    errors = [line.split(" meltano ", 1)[-1].strip() for line in lines if "[error" in line]
    plain = [line for line in lines if "Need help fixing this problem" not in line]
    return (errors or plain or ["no output"])[-1]


@dataclass(frozen=True)
class PartitionSettings:
    """What the partition definitions are built from."""

    kahuna_start_date: date
    kahuna_categories: tuple[str, ...]
    kaon_start_week: int
    replay_shards: int
    #: tap-kaon-insights' ``external_ids`` and ``paths``: one partition each (static: the UI shows them at once).
    kaon_external_ids: tuple[str, ...] = ()
    kaon_paths: tuple[str, ...] = ()


def kahuna_partition_settings(config: dict[str, Any]) -> tuple[date, tuple[str, ...]]:
    """The first daily partition and the categories, from tap-kahuna-logs' configuration."""
    start = config.get("start_date")
    if not start:
        raise ProjectSettingsError(
            "tap-kahuna-logs start_date is not set (the first daily partition): set it in meltano.yml"
            " or TAP_KAHUNA_LOGS_START_DATE"
        )
    try:
        start_date = date.fromisoformat(str(start)[:10])
    except ValueError:
        raise ProjectSettingsError(f"tap-kahuna-logs start_date {start!r} is not a date (YYYY-MM-DD)") from None
    categories = tuple(config.get("categories") or KAHUNA_CATEGORIES)
    unknown = sorted(set(categories) - set(KAHUNA_CATEGORIES))
    if unknown:
        raise ProjectSettingsError(f"tap-kahuna-logs categories: unknown {unknown}; use {list(KAHUNA_CATEGORIES)}")
    return start_date, categories


def kaon_start_week(config: dict[str, Any]) -> int:
    """The first weekly partition: ``start_date``'s week, else ``start_week``, else the tap's default."""
    if config.get("start_date"):
        try:
            return week_of(date.fromisoformat(str(config["start_date"])[:10]))
        except ValueError:
            raise ProjectSettingsError(
                f"tap-kaon-insights start_date {config['start_date']!r} is not a date (YYYY-MM-DD)"
            ) from None
    return int(config.get("start_week", KAON_FIRST_FULL_DATA_WEEK))


def replay_shard_count() -> int:
    """Shards of the Kissmetrics replay: ``KK_REPLAY_SHARDS`` (default 4)."""
    text = os.environ.get("KK_REPLAY_SHARDS", str(DEFAULT_REPLAY_SHARDS))
    if not text.isdigit() or int(text) < 1:
        raise ProjectSettingsError(f"KK_REPLAY_SHARDS must be a whole number of shards, 1 or more (got {text!r})")
    return int(text)


@lru_cache(maxsize=1)
def partition_settings() -> PartitionSettings:
    """The partition settings, read once per process tree (one Meltano start-up, ~1.1 s).

    The first load passes them on in ``KK_PARTITION_SETTINGS`` to the processes it starts (a run's
    forkserver and steps, a code server's runs): they build the very partitions their parent planned
    with, without asking Meltano again.
    """
    inherited = os.environ.get(SETTINGS_VARIABLE)
    if inherited:
        fields = json.loads(inherited)
        return PartitionSettings(
            kahuna_start_date=date.fromisoformat(fields["kahuna_start_date"]),
            kahuna_categories=tuple(fields["kahuna_categories"]),
            kaon_start_week=int(fields["kaon_start_week"]),
            replay_shards=int(fields["replay_shards"]),
            kaon_external_ids=tuple(fields.get("kaon_external_ids") or ()),
            kaon_paths=tuple(fields.get("kaon_paths") or ()),
        )
    configs = plugin_configs("tap-kahuna-logs", "tap-kaon-insights")
    kahuna, kaon = configs["tap-kahuna-logs"], configs["tap-kaon-insights"]
    start_date, categories = kahuna_partition_settings(kahuna)
    settings = PartitionSettings(
        kahuna_start_date=start_date,
        kahuna_categories=categories,
        kaon_start_week=kaon_start_week(kaon),
        replay_shards=replay_shard_count(),
        kaon_external_ids=tuple(str(item) for item in kaon.get("external_ids") or ()),
        kaon_paths=tuple(str(item) for item in kaon.get("paths") or ()),
    )
    os.environ[SETTINGS_VARIABLE] = json.dumps({**asdict(settings), "kahuna_start_date": start_date.isoformat()})
    return settings
