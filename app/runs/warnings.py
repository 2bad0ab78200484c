"""Warnings a run carries in its `errors` from the moment it is created (Skyvern's error dicts), such as
a url whose https:// was assumed; a run that does not complete repeats them in its failure reason, where
the user looks first."""

from __future__ import annotations

from typing import Any

URL_SCHEME_ASSUMED = "URL_SCHEME_ASSUMED"
_REPEATED = frozenset({URL_SCHEME_ASSUMED})


def creation_warnings(assumed_scheme_note: str | None) -> list[dict[str, Any]]:
    if assumed_scheme_note is None:
        return []
    return [{"error_code": URL_SCHEME_ASSUMED, "reasoning": assumed_scheme_note, "error_type": "WARNING"}]


def with_warnings(failure_reason: str | None, errors: list[Any]) -> str | None:
    """The failure reason followed by the run's warnings that explain failures (None stays None)."""
    if failure_reason is None:
        return None
    notes = [str(e.get("reasoning")) for e in errors
             if isinstance(e, dict) and e.get("error_code") in _REPEATED and e.get("reasoning")]
    return " ".join([failure_reason, *(n for n in notes if n not in failure_reason)])
