"""Scripts (run_with "code", issue 16): `document` (the recorded script format, shared with the worker's
replay), `keys` (a run's cache key), `export` (the standalone Playwright file), `service` (storing scripts
and revisions, the lookups a run makes, deploy). Only `service` touches the database."""
