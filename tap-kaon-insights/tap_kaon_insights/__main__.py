"""``python -m tap_kaon_insights``: the same command line as ``tap-kaon-insights``."""

from tap_kaon_insights.tap import TapKaonInsights

TapKaonInsights.cli()
