"""A run's cache key: the runs that share one replay the same script.

A task's `cache_key` (an extension on tasks, as in Skyvern's workflows) is used as given; otherwise the key
is a hash of what decides what the run does: the normalised start URL, the prompt, the extraction schema
and the engine.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

RUN_WITH = ("agent", "code")


def normalised_url(url: str | None) -> str:
    """Scheme and host lower-cased, default port, trailing slash and fragment dropped."""
    if not url:
        return ""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if parts.port in (None, default) else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/") or "/", parts.query, ""))


def cache_key(run_request: dict[str, Any], prompt: str, url: str | None) -> str:
    given = run_request.get("cache_key")
    if given:
        return str(given)
    material = json.dumps({
        "url": normalised_url(url), "prompt": " ".join(prompt.split()),
        "schema": run_request.get("data_extraction_schema"), "engine": run_request.get("engine"),
    }, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()
