"""Prefixed, time-sortable ids in Skyvern's form: `<prefix>_<decimal 64-bit int>`."""

from __future__ import annotations

import os
import threading
import time

_EPOCH_MS = 1_577_836_800_000  # 2020-01-01, keeps ids well inside 63 bits for a century
_lock = threading.Lock()
_last_ms = 0
_sequence = 0
_node = int.from_bytes(os.urandom(2), "big") & 0x3FF  # 10 bits: separates processes


def _next_int() -> int:
    global _last_ms, _sequence
    with _lock:
        now = int(time.time() * 1000) - _EPOCH_MS
        if now <= _last_ms:
            _sequence = (_sequence + 1) & 0xFFF
            if _sequence == 0:
                _last_ms += 1  # 4096 ids in one ms: borrow the next ms
            now = _last_ms
        else:
            _sequence = 0
            _last_ms = now
        return (now << 22) | (_node << 12) | _sequence


def new_id(prefix: str) -> str:
    return f"{prefix}_{_next_int()}"


TASK = "tsk"
WORKFLOW_RUN = "wr"
ORGANIZATION = "o"
API_KEY = "key"
STEP = "stp"
ACTION = "act"
ARTIFACT = "a"
WEBHOOK_ATTEMPT = "wha"
WEBHOOK_DELIVERY = "whd"
TOTP_CODE = "totp"
BROWSER_SESSION = "pbs"
BROWSER_PROFILE = "bp"
CREDENTIAL = "cred"
FILE = "file"
RUN_EVENT = "rev"
WORKFLOW = "w"  # one version of a workflow
WORKFLOW_PERMANENT = "wpid"  # every version of it
WORKFLOW_RUN_BLOCK = "wrb"
FOLDER = "fld"
SCRIPT = "s"
SCRIPT_REVISION = "sr"
SCRIPT_FILE = "sf"
WORKFLOW_SCHEDULE = "wfs"
SCHEDULE_FIRING = "wfsf"
