"""Singer tap for the Kaon Insights API: weekly tables, per-path hit history and external-ID clickstreams."""
