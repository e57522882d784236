"""asynctrack: the MLflow Tracking API, on a background writer into MLflow's own SQLite file."""
