"""Secrets never leave: after a full run (webhook included), the API keys, the server's secret key, the
webhook signing key and a stored credential's password appear in no database row, no stored byte,
no API response, no webhook, no log line and no LLM request."""

from __future__ import annotations

import json

import psycopg

from tests.fakes.fake_llm import FakeLLM
from tests.security.conftest import CREDENTIAL_PASSWORD, Tenants


def _database_text(database_url: str) -> dict[str, str]:
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {f"table {table}": "\n".join(row[0] for row in conn.execute(
            f'SELECT row_to_json(t)::text FROM "{table}" t')) for table in tables}


def test_no_secret_appears_in_anything_a_run_produced(tenants: Tenants, fake_llm: FakeLLM) -> None:
    secrets = {"organization A's API key (also its webhook signing key)": tenants.stack.api_key,
               "organization B's API key": tenants.other_key,
               "WAYFARER_SECRET_KEY": tenants.stack.env["WAYFARER_SECRET_KEY"],
               "a stored credential's password": CREDENTIAL_PASSWORD}
    assert tenants.webhooks and tenants.webhooks[0].headers["x-skyvern-signature"]
    produced = _database_text(tenants.database_url)
    files = [path for path in tenants.data_dir.rglob("*") if path.is_file()]
    assert any("screenshot" in path.name for path in files) and any(p.suffix == ".webm" for p in files)
    produced.update({f"stored file {path.relative_to(tenants.data_dir)}": path.read_bytes().decode(
        "latin-1") for path in files})
    produced.update({f"API response {n}": text for n, text in enumerate(tenants.responses)})
    produced.update({f"webhook {n}": json.dumps(hook.headers) + hook.body.decode()
                     for n, hook in enumerate(tenants.webhooks)})
    produced.update({f"log {path.name}": path.read_text(errors="replace")
                     for path in tenants.stack.log_dir.glob("*.log")})
    produced["LLM requests"] = json.dumps(fake_llm.requests)
    hits = [f"{what} in {where}" for where, text in produced.items()
            for what, secret in secrets.items() if secret in text]
    print(f"secrets: {len(secrets)} secrets x {len(produced)} places ({len(files)} stored files), "
          f"{len(hits)} hits")
    assert len(produced) > 20
    assert not hits, hits
