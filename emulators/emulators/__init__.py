"""Local emulators of the Kaon Insights, Kahuna Logs and Kissmetrics tracking APIs."""
