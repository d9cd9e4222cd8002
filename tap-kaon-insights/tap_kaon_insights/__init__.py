"""Singer tap for the Kaon Insights API: weekly tables, per-path hit history and external-ID clickstreams."""

__version__ = "0.2.0"
