"""``python -m tap_kahuna_logs``: the same command line as ``tap-kahuna-logs``."""

from tap_kahuna_logs.tap import TapKahunaLogs

TapKahunaLogs.cli()
