"""Singer target that replays rows into Kissmetrics event, set and alias beacons."""

__version__ = "0.2.0"
