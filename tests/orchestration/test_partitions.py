"""Partition keys -> shards: the settings each shard runs with, its state ID suffix, the launcher's rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from kk_orchestration.jobs import mapping_key, shards_run_config
from kk_orchestration.meltano_logs import record_counts
from kk_orchestration.partitions import (
    kahuna_categories_shard,
    kahuna_shard,
    kaon_clickstream_shard,
    kaon_week_shard,
    replay_shard,
    sharded_assets,
)
from kk_orchestration.project import (
    KAHUNA_CATEGORIES,
    KAON_FIRST_FULL_DATA_WEEK,
    SETTINGS_VARIABLE,
    PartitionSettings,
    ProjectSettingsError,
    kahuna_partition_settings,
    kaon_start_week,
    meltano_error,
    partition_settings,
)
from kk_orchestration.sensors import replay_request_after
from kk_orchestration.shards import CONCURRENT_DDL_ERRORS, failure_reason, records_by_stream, state_id_suffix
from scripts import isolated_meltano
from tap_kaon_insights.week_numbers import week_of, week_start


def test_a_kahuna_partition_reads_one_category_of_one_day_under_its_own_state_id() -> None:
    shard = kahuna_shard("user_merge", date(2026, 11, 16))
    assert (shard.extractor, shard.loader) == ("tap-kahuna-logs", "target-postgres")
    assert dict(shard.settings) == {
        "TAP_KAHUNA_LOGS_CATEGORIES": '["user_merge"]',
        "TAP_KAHUNA_LOGS_START_DATE": "2026-11-16",
        "TAP_KAHUNA_LOGS_END_DATE": "2026-11-16",
    }
    assert shard.state_id("prod") == "prod:tap-kahuna-logs-to-target-postgres:user_merge-2026-11-16"


def test_a_kaon_week_partition_bounds_the_weekly_streams_to_that_week_even_with_start_date_set() -> None:
    shard = kaon_week_shard(776)
    assert dict(shard.settings) == {
        "TAP_KAON_INSIGHTS_START_DATE": "2026-11-15",  # start_date wins over start_week in the tap: both agree
        "TAP_KAON_INSIGHTS_START_WEEK": "776",
        "TAP_KAON_INSIGHTS_END_WEEK": "776",
    }
    assert shard.state_id("dev") == "dev:tap-kaon-insights--weekly-to-target-postgres:week-776"
    assert week_start(417) == date(2019, 12, 29)
    assert week_of(date(2026, 11, 21)) == 776


SETTINGS = PartitionSettings(
    kahuna_start_date=date(2026, 11, 1), kahuna_categories=KAHUNA_CATEGORIES, kaon_start_week=770, replay_shards=2
)


def test_a_backfill_shard_reads_consecutive_days_of_one_category_and_names_them() -> None:
    kahuna = sharded_assets(SETTINGS)["kahuna_logs"]
    days = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-05", "2026-11-06"]
    keys = [f"push|{day}" for day in days] + ["inapp|2026-11-01", "inapp|2026-11-02"]
    spans = kahuna.spans(keys, periods_per_shard=2)
    assert spans == [
        ["inapp|2026-11-01", "inapp|2026-11-02"],
        ["push|2026-11-01", "push|2026-11-02"],
        ["push|2026-11-03"],  # the 4th is missing: a span never jumps a gap
        ["push|2026-11-05", "push|2026-11-06"],
    ]
    shard = kahuna.shard_of(spans[1])
    assert shard.state_id_suffix == "push-2026-11-01--2026-11-02"
    assert dict(shard.settings) == {
        "TAP_KAHUNA_LOGS_CATEGORIES": '["push"]',
        "TAP_KAHUNA_LOGS_START_DATE": "2026-11-01",
        "TAP_KAHUNA_LOGS_END_DATE": "2026-11-02",
    }
    assert kahuna.spans(keys, periods_per_shard=1) == [[key] for key in keys]
    weeks = sharded_assets(SETTINGS)["kaon_weekly_tables"]
    (span,) = weeks.spans(["2026-11-01", "2026-11-08", "2026-11-15"], periods_per_shard=4)
    assert weeks.shard_of(span).state_id_suffix == "week-774--776"
    assert weeks.shard_of(span).settings["TAP_KAON_INSIGHTS_END_WEEK"] == "776"
    clicks = sharded_assets(SETTINGS)["kaon_clickstreams"]
    assert clicks.spans(["EXT-0001", "EXT-0000"], periods_per_shard=8) == [["EXT-0001"], ["EXT-0000"]]


EVERY_CATEGORY = "email.inapp.push.user_merge"


def test_a_backfill_across_categories_gives_even_shards_of_consecutive_days_with_every_category() -> None:
    kahuna = sharded_assets(SETTINGS)["kahuna_logs"]
    days = [date(2026, 11, day).isoformat() for day in range(1, 9)]
    keys = [f"{category}|{day}" for category in KAHUNA_CATEGORIES for day in days]
    spans = kahuna.spans(keys, periods_per_shard=2, across_series=True)
    assert spans == [
        [f"{category}|{day}" for day in pair for category in sorted(KAHUNA_CATEGORIES)]
        for pair in (days[0:2], days[2:4], days[4:6], days[6:8])
    ]
    shards = [kahuna.shard_of(span) for span in spans]
    assert [shard.state_id_suffix for shard in shards] == [
        f"{EVERY_CATEGORY}-{first}--{last}" for first, last in (days[0:2], days[2:4], days[4:6], days[6:8])
    ]
    assert dict(shards[1].settings) == {
        "TAP_KAHUNA_LOGS_CATEGORIES": '["email", "inapp", "push", "user_merge"]',
        "TAP_KAHUNA_LOGS_START_DATE": "2026-11-03",
        "TAP_KAHUNA_LOGS_END_DATE": "2026-11-04",
    }
    assert (
        shards[0].state_id("dev") == f"dev:tap-kahuna-logs-to-target-postgres:{EVERY_CATEGORY}-2026-11-01--2026-11-02"
    )
    # The keys' order does not matter; every key is in exactly one shard; step mapping keys stay unique.
    assert kahuna.spans(list(reversed(keys)), periods_per_shard=2, across_series=True) == spans
    assert sorted(key for span in spans for key in span) == sorted(keys)
    assert len({mapping_key("kahuna_logs", span[0], len(span)) for span in spans}) == 4
    # One period per shard: a day per shard, every category; the default still splits by category.
    assert len(kahuna.spans(keys, periods_per_shard=1, across_series=True)) == 8
    assert len(kahuna.spans(keys, periods_per_shard=2)) == 16


def test_a_day_missing_a_category_splits_a_range_across_categories() -> None:
    kahuna = sharded_assets(SETTINGS)["kahuna_logs"]
    days = [date(2026, 11, day).isoformat() for day in range(1, 7)]
    keys = [
        f"{category}|{day}" for category in KAHUNA_CATEGORIES for day in days if (category, day) != ("push", days[2])
    ]
    keys += [f"inapp|{date(2026, 11, 9).isoformat()}"]  # after a gap: a shard of its own
    spans = kahuna.spans(keys, periods_per_shard=4, across_series=True)
    assert [kahuna.shard_of(span).state_id_suffix for span in spans] == [
        f"{EVERY_CATEGORY}-2026-11-01--2026-11-02",
        "email.inapp.user_merge-2026-11-03",  # push is missing that day
        f"{EVERY_CATEGORY}-2026-11-04--2026-11-06",
        "inapp-2026-11-09",  # one category: the per-category shard's own state ID
    ]
    assert kahuna.shard_of(spans[1]).settings["TAP_KAHUNA_LOGS_CATEGORIES"] == '["email", "inapp", "user_merge"]'
    assert kahuna.shard_of(spans[3]) == kahuna_shard("inapp", date(2026, 11, 9))
    assert kahuna_categories_shard(["push", "email"], date(2026, 11, 1)).state_id_suffix == "email.push-2026-11-01"
    with pytest.raises(ValueError, match="not every day of a range"):
        kahuna.shard_of(["inapp|2026-11-01", "push|2026-11-02"])
    weeks = sharded_assets(SETTINGS)["kaon_weekly_tables"]
    (span,) = weeks.spans(["2026-11-01", "2026-11-08"], periods_per_shard=4, across_series=True)
    assert weeks.shard_of(span).state_id_suffix == "week-774--775"
    clicks = sharded_assets(SETTINGS)["kaon_clickstreams"]
    assert clicks.spans(["EXT-0001", "EXT-0000"], periods_per_shard=8, across_series=True) == [
        ["EXT-0001"],
        ["EXT-0000"],
    ]


def test_a_shards_run_asks_for_shards_across_categories_only_when_told() -> None:
    plan = shards_run_config({"kahuna_logs": ["inapp|2026-11-16"]}, periods_per_shard=8, across_series=True)
    assert plan["ops"]["plan_shards"]["config"] == {
        "partitions": {"kahuna_logs": ["inapp|2026-11-16"]},
        "periods_per_shard": 8,
        "across_series": True,
    }
    assert "across_series" not in shards_run_config({"kahuna_logs": []})["ops"]["plan_shards"]["config"]


def test_state_id_suffixes_are_file_safe_stable_and_keep_different_keys_apart() -> None:
    assert state_id_suffix("EXT-0001") == "EXT-0001"
    odd = state_id_suffix("user 42+test@example.com")
    assert odd.startswith("user_42_test_example.com-")
    assert odd == state_id_suffix("user 42+test@example.com")
    assert state_id_suffix("a b") != state_id_suffix("a_b") != state_id_suffix("a+b")
    assert set(state_id_suffix("Caf%C3%A9/Gr%C3%B6%C3%9Fe")) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
    )
    assert kaon_clickstream_shard("user 42+test@example.com").settings == {
        "TAP_KAON_INSIGHTS_EXTERNAL_IDS": '["user 42+test@example.com"]'
    }


def test_replay_shards_name_their_share_of_the_people() -> None:
    shard = replay_shard(1, 4)
    assert shard.state_id("dev") == "dev:tap-postgres-to-target-kissmetrics--warehouse:shard-1-of-4"
    assert json.loads(shard.settings["TAP_POSTGRES_STREAM_MAP_CONFIG"]) == {"shard_count": 4, "shard_index": 1}


def test_the_partitions_follow_the_taps_own_defaults() -> None:
    from tap_kahuna_logs.tap import TapKahunaLogs
    from tap_kaon_insights.tap import TapKaonInsights

    assert list(KAHUNA_CATEGORIES) == TapKahunaLogs.config_jsonschema["properties"]["categories"]["default"]
    assert TapKaonInsights.config_jsonschema["properties"]["start_week"]["default"] == KAON_FIRST_FULL_DATA_WEEK
    assert kahuna_partition_settings({"start_date": "2026-11-01"}) == (date(2026, 11, 1), KAHUNA_CATEGORIES)
    assert kaon_start_week({}) == KAON_FIRST_FULL_DATA_WEEK
    assert kaon_start_week({"start_week": 700}) == 700
    assert kaon_start_week({"start_week": 700, "start_date": "2026-11-18"}) == 776


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "tap-kahuna-logs start_date is not set"),
        ({"start_date": "18/11/2026"}, "is not a date (YYYY-MM-DD)"),
        ({"start_date": "2026-11-01", "categories": ["inapp", "sms"]}, "unknown ['sms']"),
    ],
)
def test_bad_kahuna_partition_settings_name_what_to_fix(config: dict[str, object], message: str) -> None:
    with pytest.raises(ProjectSettingsError, match=re.escape(message)):
        kahuna_partition_settings(config)


def test_step_mapping_keys_are_valid_and_unique() -> None:
    keys = [mapping_key("kaon_clickstreams", key) for key in ("a b", "a_b", "user 42+test@example.com")]
    assert len(set(keys)) == len(keys)
    assert all(key.replace("_", "").isalnum() for key in keys)


def test_a_shards_run_forks_its_steps_from_one_import_of_the_code_location_and_the_instance_storage() -> None:
    execution = shards_run_config({"kahuna_logs": ["inapp|2026-11-16"]}, max_concurrent=8)["execution"]["config"]
    assert execution == {
        "max_concurrent": 8,
        "start_method": {
            "forkserver": {"preload_modules": ["kk_orchestration.definitions", "kk_orchestration.step_preload"]}
        },
    }


def test_the_replay_follows_only_runs_that_loaded_what_the_marts_read() -> None:
    keys = ["shard-0-of-2", "shard-1-of-2"]
    for run_id, loaded in (("run-1", {"kahuna_logs": ["inapp|2026-11-16"]}), ("run-2", {"kaon_clickstreams": ["X"]})):
        request = replay_request_after(run_id, shards_run_config(loaded, build_marts=True), keys)
        assert isinstance(request, dg.RunRequest)
        assert request.run_key == f"after-{run_id}"
        assert request.run_config["ops"] == {"plan_shards": {"config": {"partitions": {"kissmetrics_replay": keys}}}}
    weekly = {"kaon_weekly_tables": ["2026-11-15"], "kaon_path_hits": ["home"]}
    skipped = replay_request_after("run-3", shards_run_config(weekly), keys)
    assert isinstance(skipped, dg.SkipReason)
    assert "kahuna_logs, kaon_clickstreams" in (skipped.skip_message or "")


def test_a_load_shards_run_ends_with_the_dbt_build_only_when_asked() -> None:
    assert "build_marts" not in shards_run_config({"kahuna_logs": ["inapp|2026-11-16"]})["ops"]["plan_shards"]["config"]
    asked = shards_run_config({"kahuna_logs": ["inapp|2026-11-16"]}, build_marts=True)["ops"]
    planned = {"partitions": {"kahuna_logs": ["inapp|2026-11-16"]}, "build_marts": True}
    assert asked == {"plan_shards": {"config": planned}}


def test_a_concurrent_table_creation_is_told_from_other_failures() -> None:
    race = (
        "2026-12-01T10:43:00.519573Z [info     ] target-postgres (psycopg.errors.UniqueViolation) duplicate key value"
        ' violates unique constraint "pg_type_typname_nsp_index"'
    )
    assert CONCURRENT_DDL_ERRORS.search(race)
    assert not CONCURRENT_DDL_ERRORS.search('duplicate key value violates unique constraint "push_logs_pkey"')


def test_a_failed_run_is_explained_by_the_failed_plugin_or_the_signal() -> None:
    log = [
        "2026-12-01T10:52:17.694830Z [info     ] tap-kaon-insights--clicks An unhandled error occurred while syncing\n",
        "2026-12-01T10:52:17.694888Z [info     ] tap-kaon-insights--clicks Kaon Insights kept failing: HTTP 500\n",
        "2026-12-01T10:52:17.701000Z [info     ] target-postgres Target sink for 'external_id_hits' closed\n",
        "2026-12-01T10:52:17.710420Z [error    ] meltano      Extractor failed\n",
        "2026-12-01T10:52:17.710719Z [error    ] meltano      Block run completed\n",
    ]
    assert failure_reason(log, 1) == "Kaon Insights kept failing: HTTP 500"
    assert failure_reason(log, -9) == "killed by SIGKILL"
    metric = (
        "2026-12-01T10:20:56.9Z [info     ] target-postgres METRIC:"
        ' {"metric":"record_count","value":7,"tags":{"stream":"s"}}\n'
    )
    assert records_by_stream([metric, metric], "target-postgres") == {"s": 14}
    assert records_by_stream([metric], "tap-kahuna-logs") == {}
    # the demo counts what every tap read, not what the targets loaded
    tap_metric = metric.replace("target-postgres", "tap-kaon-insights--clicks").replace("7", "5")
    assert record_counts([metric, tap_metric, tap_metric], lambda name: name.startswith("tap-")) == {"s": 10}


def test_the_launcher_finds_the_subcommand_behind_global_options() -> None:
    assert isolated_meltano.meltano_subcommand(["--environment", "prod", "schedule", "run", "x"]) == "schedule"
    assert isolated_meltano.meltano_subcommand(["--log-level=debug", "run", "job"]) == "run"
    assert isolated_meltano.meltano_subcommand(["-e", "dev", "install"]) == "install"


def test_the_private_system_directory_links_the_installation_but_not_the_run_files(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    for entry in ("extractors", "loaders", "run"):
        (shared / entry).mkdir(parents=True)
    (shared / "meltano.db").write_text("")
    private = isolated_meltano.make_private_sys_dir(shared)
    try:
        assert sorted(path.name for path in private.iterdir()) == ["extractors", "loaders"]
        assert (private / "extractors").resolve() == (shared / "extractors").resolve()
        environment = isolated_meltano.isolated_environment({}, shared, private)
        assert environment["MELTANO_SYS_DIR_ROOT"] == str(private)
        assert environment["MELTANO_DATABASE_URI"] == f"sqlite:///{shared / 'meltano.db'}"
    finally:
        shutil.rmtree(private)


def test_processes_a_run_starts_build_the_partitions_their_run_planned_with(monkeypatch: pytest.MonkeyPatch) -> None:
    inherited = (
        '{"kahuna_start_date": "2026-10-01", "kahuna_categories": ["push"], "kaon_start_week": 700, "replay_shards": 3}'
    )
    monkeypatch.setenv(SETTINGS_VARIABLE, inherited)
    monkeypatch.setenv("PATH", "")  # no meltano to ask: the inherited settings must do
    assert partition_settings.__wrapped__() == PartitionSettings(
        kahuna_start_date=date(2026, 10, 1), kahuna_categories=("push",), kaon_start_week=700, replay_shards=3
    )


def test_a_failed_meltano_command_is_explained_by_its_error_line() -> None:
    stderr = (
        "2026-12-01T12:49:50.205187Z [info     ] meltano      Environment 'dev' is active\n"
        "2026-12-01T12:49:50.211095Z [error    ] meltano      Could not parse SQLAlchemy URL from given URL string\n"
        "╭───── Traceback (most recent call last) ─────╮\n"
        "ArgumentError: Could not parse SQLAlchemy URL from given URL string\n"
        "2026-12-01T12:49:50.375018Z [info     ] meltano      Need help fixing this problem? Visit https://melta.no/\n"
    )
    assert meltano_error(stderr) == "Could not parse SQLAlchemy URL from given URL string"
    assert meltano_error("one line\n") == "one line"


def test_the_forkserver_preload_imports_the_instance_storage_without_opening_it(tmp_path: Path) -> None:
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    script = "import json, kk_orchestration.step_preload as p; print(json.dumps([m.__name__ for m in p.PRELOADED]))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    preloaded = json.loads(result.stdout)
    # The step's DagsterInstance.from_ref needs these; a step forked after the preload imports none of them.
    assert "dagster._core.storage.sqlite_storage" in preloaded
    assert "dagster._core.storage.runs" in preloaded
    assert "dagster._core.storage.event_log" in preloaded
    assert "dagster._core.storage.local_compute_log_manager" in preloaded
    assert sorted(path.name for path in home.iterdir()) == ["dagster.yaml"]  # no storage created, nothing opened
