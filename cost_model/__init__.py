"""Cost model of the serverless stream-quality monitor and its monolith: `python -m cost_model --help`."""
