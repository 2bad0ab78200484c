"""The one file-name sanitiser: every name that becomes part of a storage key or a local path (uploads,
files a run downloads or fetches for an upload) passes through `safe_filename`."""

from __future__ import annotations

import re

MAX_FILENAME_CHARS = 200
_UNSAFE = re.compile(r"[^\w .()+,=@-]")


def safe_filename(name: str | None, fallback: str) -> str:
    """`name` without folders, control or shell-special characters (each becomes `_`), leading or trailing
    dots and spaces, at most MAX_FILENAME_CHARS long; `fallback` when nothing is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", base).strip(". ")[:MAX_FILENAME_CHARS] or fallback
