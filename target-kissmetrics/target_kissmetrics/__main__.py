"""``python -m target_kissmetrics``: the same command line as ``target-kissmetrics``."""

from target_kissmetrics.target import TargetKissmetrics

TargetKissmetrics.cli()
