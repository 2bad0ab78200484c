"""Pushed one-time codes (POST /v1/credentials/totp): a user, an e-mail or SMS relay sends a code that a
run's verification_code action then types."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.db.models import TotpCode
from app.runs import ids
from app.runs.service import find_run
from app.schemas.credentials import TOTPCode, TOTPCodeCreate, normalize_totp_identifier

SHORT_CODE_LENGTH = 10
_CODE_IN_TEXT = re.compile(r"(?<!\d)\d{4,8}(?!\d)")


class CodeRejected(ValueError):
    """The pushed content holds no code, or names a task that is not the organization's (HTTP 400)."""


def extract_code(content: str) -> str | None:
    """Short content is the code itself; in longer content (an e-mail, an SMS) the first 4-8 digit run."""
    text = content.strip()
    if len(text) <= SHORT_CODE_LENGTH:
        return text or None
    match = _CODE_IN_TEXT.search(text)
    return match[0] if match else None


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def push_code(session: Session, organization_id: str, request: TOTPCodeCreate) -> TOTPCode:
    """Store the code for the runs waiting on its totp_identifier; the stored code as Skyvern shows it."""
    code = extract_code(request.content)
    if code is None:
        raise CodeRejected("No verification code found in content: send the code itself, or text containing "
                           "a 4 to 8 digit code.")
    if request.task_id and find_run(session, organization_id, request.task_id) is None:
        raise CodeRejected(f"Unknown task_id {request.task_id}")
    otp_type = request.type or "totp"
    row = TotpCode(id=ids.new_id(ids.TOTP_CODE), organization_id=organization_id,
                   totp_identifier=normalize_totp_identifier(request.totp_identifier), code=code,
                   content=request.content, task_id=request.task_id, workflow_run_id=request.workflow_run_id,
                   source=request.source, otp_type=otp_type,
                   expired_at=_naive_utc(request.expired_at))
    session.add(row)
    session.commit()
    return TOTPCode(totp_code_id=row.id, totp_identifier=row.totp_identifier, code=row.code,
                    content=row.content, organization_id=row.organization_id, task_id=row.task_id,
                    workflow_id=request.workflow_id, workflow_run_id=row.workflow_run_id, source=row.source,
                    expired_at=row.expired_at, type=otp_type, otp_type=otp_type,
                    created_at=row.created_at, modified_at=row.modified_at)
