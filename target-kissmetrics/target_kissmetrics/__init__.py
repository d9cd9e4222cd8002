"""Singer target that replays rows into Kissmetrics event, set and alias beacons."""
