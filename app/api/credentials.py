"""POST /v1/credentials/totp: a user pushes a verification code the agent's verification_code action reads."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException

from app.api.deps import CallerDep, SessionDep
from app.db.models import TotpCode
from app.runs import ids, service
from app.schemas.credentials import TOTPCode, TOTPCodeCreate, normalize_totp_identifier

router = APIRouter(tags=["Credentials"])

SHORT_CODE_LENGTH = 10
_CODE_IN_TEXT = re.compile(r"(?<!\d)\d{4,8}(?!\d)")


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


@router.post("/v1/credentials/totp", response_model=TOTPCode)
def send_totp_code(request: TOTPCodeCreate, session: SessionDep, caller: CallerDep) -> TOTPCode:
    code = extract_code(request.content)
    if code is None:
        raise HTTPException(status_code=400, detail="No verification code found in content: send the code "
                                                    "itself, or text containing a 4 to 8 digit code.")
    if request.task_id and service.find_run(session, caller.organization_id, request.task_id) is None:
        raise HTTPException(status_code=400, detail=f"Unknown task_id {request.task_id}")
    otp_type = request.type or "totp"
    row = TotpCode(id=ids.new_id(ids.TOTP_CODE), organization_id=caller.organization_id,
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
