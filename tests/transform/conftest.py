"""One real load (both taps into a DuckDB file through Meltano) shared by the dbt tests."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from emulators.kahuna_data import KahunaDataset
from emulators.kaon_data import KaonDataset
from emulators.testing import EmulatorProcess
from tests.end_to_end.meltano_helpers import PROJECT_ROOT, MeltanoProject
from tests.support.datasets import FIXED_NOW
from tests.transform.transform_helpers import RawWarehouse

KAHUNA_DAYS = 3
KAHUNA_LOGS_PER_DAY = 60
KAON = {"weeks_before_now": 2, "paths": 8, "external_ids": 2, "clicks_per_id": 120}


@pytest.fixture(scope="session")
def raw_warehouse(tmp_path_factory: pytest.TempPathFactory) -> RawWarehouse:
    """Kahuna and Kaon loaded once with ``meltano run <tap> target-duckdb`` (no dbt yet)."""
    if not (PROJECT_ROOT / ".meltano" / ".installed").exists():
        pytest.fail("the Meltano plugins are not installed: run `make meltano-install` (make test does it)")
    kaon_args = [f"--{name.replace('_', '-')}={value}" for name, value in KAON.items()]
    now = ["--now", FIXED_NOW.isoformat()]
    kahuna_args = ["--days", str(KAHUNA_DAYS), "--logs-per-day", str(KAHUNA_LOGS_PER_DAY)]
    with EmulatorProcess("kaon", *now, *kaon_args) as kaon, EmulatorProcess("kahuna", *now, *kahuna_args) as kahuna:
        kaon_data = KaonDataset(seed=42, client="demo-client", now=FIXED_NOW, **KAON)
        project = MeltanoProject(tmp_path_factory.mktemp("raw-load"))
        project.settings.update(
            {
                "TAP_KAON_INSIGHTS_API_URL": f"{kaon.url}/api",
                "TAP_KAON_INSIGHTS_EXTERNAL_IDS": json.dumps(kaon_data.external_id_names),
                "TAP_KAON_INSIGHTS_PATHS": json.dumps(kaon_data.path_names[:2]),
                "TAP_KAHUNA_LOGS_API_URL": f"{kahuna.url}/api/kahunalogs",
                "TAP_KAHUNA_LOGS_START_DATE": (FIXED_NOW.date() - timedelta(days=KAHUNA_DAYS - 1)).isoformat(),
                "TAP_KAHUNA_LOGS_END_DATE": FIXED_NOW.date().isoformat(),
            }
        )
        project.run("run", "tap-kaon-insights", "target-duckdb")
        project.run("run", "tap-kahuna-logs", "target-duckdb")
    kahuna_data = KahunaDataset(seed=42, now=FIXED_NOW, days=KAHUNA_DAYS, logs_per_day=KAHUNA_LOGS_PER_DAY, env="p")
    return RawWarehouse(project.duckdb_path, kahuna_data, kaon_data)
