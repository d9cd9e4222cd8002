"""``python tests/orchestration/reexecute_from_failure.py <run id>``: what the UI's "Re-execute > From failure" does.

A new run of ``load_shards`` in the instance of ``DAGSTER_HOME`` that runs only the parent run's failed
(and not yet run) steps, reusing the outputs of the steps that succeeded (the shard plan).
"""

from __future__ import annotations

import sys

import dagster as dg


def load_shards() -> dg.JobDefinition:
    """The job, resolved with its resources, as the code location serves it."""
    from kk_orchestration.definitions import defs

    return defs.get_job_def("load_shards")


if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        options = dg.ReexecutionOptions.from_failure(sys.argv[1], instance)
        with dg.execute_job(dg.reconstructable(load_shards), instance, reexecution_options=options) as result:
            print(f"re-execution {result.run_id}: {'success' if result.success else 'failure'}")
            sys.exit(0 if result.success else 1)
