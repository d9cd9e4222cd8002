"""Singer tap for the Kahuna Logs API: in-app, push, email and user-merge logs, day by day."""

__version__ = "0.2.0"
