"""The credential vault: credentials stored encrypted with the secret key, revealed only to the worker.

The planner never sees a secret: it writes placeholders such as `{{credential.password}}` and the
executor swaps in the real value while typing (`CredentialValues.reveal`). Everything recorded about a
run passes through `CredentialValues.redact`, which puts the placeholders back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.credentials.authenticator import InvalidTotpSecret, parse_totp_secret
from app.db.models import Credential, utcnow
from app.platform.security import decrypt, encrypt
from app.platform.settings import Settings
from app.runs import ids
from app.schemas.credentials import (
    CreateCredentialRequest,
    CredentialResponse,
    CreditCardCredential,
    PasswordCredential,
    SecretCredential,
)

PLACEHOLDER = re.compile(r"\{\{\s*credential\.(\w+)\s*\}\}")
# What the planner may type, per credential type (the TOTP secret never: codes come via verification_code).
TYPABLE_FIELDS = {
    "password": ("username", "password"),
    "credit_card": ("card_number", "card_cvv", "card_exp_month", "card_exp_year", "card_brand",
                    "card_holder_name"),
    "secret": ("secret_value",),
}
_NOT_SECRET = frozenset({"username", "card_brand", "card_holder_name", "card_exp_month", "card_exp_year"})


class InvalidCredential(ValueError):
    """The credential cannot be stored as given; the message names the field."""


class UnknownPlaceholder(ValueError):
    """A placeholder names a field the run's credential does not have."""


def placeholder(field: str) -> str:
    return "{{credential." + field + "}}"


def credential_id_of(run_request: dict[str, Any] | None) -> str | None:
    """The stored credential a run uses (login runs keep it in their workflow parameters)."""
    parameters = (run_request or {}).get("parameters") or {}
    value = parameters.get("credential_id") if isinstance(parameters, dict) else None
    return str(value) if value else None


def _check_totp(secret: str) -> None:
    try:
        parse_totp_secret(secret)
    except InvalidTotpSecret as exc:
        raise InvalidCredential("credential.totp must be a base32 authenticator secret or an "
                                f"otpauth://totp/ URI: {exc}.") from None


def _public_part(credential: PasswordCredential | CreditCardCredential | SecretCredential) -> dict[str, Any]:
    if isinstance(credential, PasswordCredential):
        totp_type = credential.totp_type or ("authenticator" if credential.totp else "none")
        return {"username": credential.username, "totp_type": totp_type,
                "totp_identifier": credential.totp_identifier}
    if isinstance(credential, CreditCardCredential):
        return {"last_four": credential.card_number.strip()[-4:], "brand": credential.card_brand}
    return {"secret_label": credential.secret_label}


def _fill(row: Credential, settings: Settings, request: CreateCredentialRequest) -> None:
    credential = request.parsed_credential()
    if isinstance(credential, PasswordCredential) and credential.totp:
        _check_totp(credential.totp)
    row.name = request.name
    row.credential_type = request.credential_type
    row.public = _public_part(credential) | ({"tested_url": request.tested_url} if request.tested_url else {})
    row.secret_encrypted = encrypt(settings.resolved_secret_key(),
                                   json.dumps(credential.model_dump(exclude_none=True)))


def create_credential(session: Session, settings: Settings, organization_id: str,
                      request: CreateCredentialRequest) -> Credential:
    now = utcnow()
    row = Credential(id=ids.new_id(ids.CREDENTIAL), organization_id=organization_id, created_at=now,
                     modified_at=now)
    _fill(row, settings, request)
    session.add(row)
    session.commit()
    return row


def update_credential(session: Session, settings: Settings, row: Credential,
                      request: CreateCredentialRequest) -> Credential:
    _fill(row, settings, request)
    row.modified_at = utcnow()
    session.commit()
    return row


def find_credential(session: Session, organization_id: str, credential_id: str) -> Credential | None:
    query = select(Credential).where(Credential.id == credential_id,
                                     Credential.organization_id == organization_id)
    return session.scalars(query).first()


class UnknownCredential(LookupError):
    """The organization has no such credential (HTTP 404)."""

    def __init__(self, credential_id: str) -> None:
        super().__init__(f"Credential not found {credential_id}")


def require_credential(session: Session, organization_id: str, credential_id: str) -> Credential:
    row = find_credential(session, organization_id, credential_id)
    if row is None:
        raise UnknownCredential(credential_id)
    return row


def delete_credential(session: Session, organization_id: str, credential_id: str) -> None:
    session.delete(require_credential(session, organization_id, credential_id))
    session.commit()


def list_credentials(session: Session, organization_id: str, page: int, page_size: int,
                     credential_type: str | None = None, search: str | None = None) -> Sequence[Credential]:
    query = select(Credential).where(Credential.organization_id == organization_id)
    if credential_type:
        query = query.where(Credential.credential_type == credential_type)
    if search:
        query = query.where(Credential.name.ilike(f"%{search}%"))
    query = query.order_by(Credential.created_at.desc(), Credential.id.desc())
    return session.scalars(query.offset((page - 1) * page_size).limit(page_size)).all()


def credential_response(row: Credential) -> CredentialResponse:
    public = dict(row.public)
    tested_url = public.pop("tested_url", None)
    return CredentialResponse(credential_id=row.id, name=row.name, credential_type=row.credential_type,
                              credential=public, tested_url=tested_url, created_at=row.created_at,
                              modified_at=row.modified_at)


@dataclass(frozen=True)
class CredentialValues:
    """A credential's decrypted fields, held by the worker for the length of one run."""

    credential_type: str
    fields: dict[str, str]

    @property
    def totp_secret(self) -> str | None:
        return self.fields.get("totp") or None

    def reveal(self, text: str) -> str:
        """`text` with every placeholder replaced by its value (UnknownPlaceholder if one is unknown)."""
        def value(match: re.Match[str]) -> str:
            name = match[1]
            if name not in TYPABLE_FIELDS[self.credential_type] or name not in self.fields:
                known = ", ".join(placeholder(f) for f in TYPABLE_FIELDS[self.credential_type])
                raise UnknownPlaceholder(f"{match[0]} is not a field of this run's credential; use {known}.")
            return self.fields[name]
        return PLACEHOLDER.sub(value, text)

    def redact(self, text: str) -> str:
        """`text` with every secret value, as is or JSON-escaped, replaced by its placeholder."""
        forms = [(form, placeholder(name)) for name, value in self.fields.items()
                 if name not in _NOT_SECRET and len(value) >= 3
                 for form in {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]}]
        for form, replacement in sorted(forms, key=lambda item: -len(item[0])):
            text = text.replace(form, replacement)
        return text


def load_run_credential(session: Session, settings: Settings, organization_id: str,
                        run_request: dict[str, Any] | None) -> CredentialValues | None:
    """The decrypted credential a run uses, None if it uses none; ValueError if it was deleted."""
    credential_id = credential_id_of(run_request)
    if credential_id is None:
        return None
    row = find_credential(session, organization_id, credential_id)
    if row is None:
        raise ValueError(f"the credential {credential_id} was deleted after the run was created")
    return reveal_credential(settings, row)


def reveal_credential(settings: Settings, row: Credential) -> CredentialValues:
    fields = json.loads(decrypt(settings.resolved_secret_key(), row.secret_encrypted))
    return CredentialValues(row.credential_type, {k: str(v) for k, v in fields.items()
                                                  if isinstance(v, str | int)})
