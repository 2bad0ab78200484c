"""The workflow engine: a stored workflow's blocks run in order inside one run (workers/runner.py)."""
