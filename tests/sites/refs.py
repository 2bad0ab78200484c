"""Find an element's ref in an AI aria snapshot by role and accessible name (for tests)."""

from __future__ import annotations

import re


def ref_for(snapshot: str, role: str, name: str) -> str:
    """The ref of the first `- role "name" ... [ref=eN]` line; the name must match exactly."""
    pattern = re.compile(rf'^\s*- {re.escape(role)} "{re.escape(name)}"(?: \[[^\]]*\])*? \[ref=([^\]]+)\]',
                         re.MULTILINE)
    match = pattern.search(snapshot)
    if match is None:
        raise LookupError(f'no {role} "{name}" with a ref in the snapshot:\n{snapshot}')
    return match.group(1)
