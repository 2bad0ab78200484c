"""One secret key per deployment. Its fingerprint is kept in the database, so a process started with
another key refuses to start (instead of failing later on every secret it cannot open: webhook signing
keys, credentials, browser profiles); `rotate` is the deliberate way to change the key."""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from sqlalchemy import Column, Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.engine import session_scope
from app.db.models import Base, DeploymentState
from app.platform.security import decrypt, key_fingerprint, reencrypt

FINGERPRINT = "secret_key_fingerprint"
_ROTATE_HINT = "to change the key on purpose, use `wayfarer secret rotate` (docs/configuration.md)"


class SecretKeyRefused(Exception):
    """This process's secret key is not the deployment's; the message says what to do (never the key)."""


def encrypted_columns() -> list[tuple[Table, Column[str]]]:
    """Every column holding Fernet tokens made with the secret key: by convention, named `*_encrypted`."""
    return [(table, column) for table in Base.metadata.sorted_tables for column in table.columns
            if column.name.endswith("_encrypted")]


def check_secret_key(database_url: str, secret_key: str, source: str) -> None:
    """Refuse a key whose fingerprint differs from the one recorded; when none is recorded yet, record
    this key's, after checking that it opens what the database already holds."""
    for _ in range(3):  # processes starting together may race to record the first fingerprint
        try:
            with session_scope(database_url) as session:
                _check_or_record(session, secret_key, source)
            return
        except IntegrityError:
            continue
    raise SecretKeyRefused("could not record the secret key's fingerprint; try again")


def _check_or_record(session: Session, secret_key: str, source: str) -> None:
    fingerprint = key_fingerprint(secret_key)
    recorded = session.get(DeploymentState, FINGERPRINT)
    if recorded is not None and recorded.value != fingerprint:
        raise SecretKeyRefused(
            f"{source} is not this database's secret key (fingerprint {fingerprint}; the database's is "
            f"{recorded.value}): what it stores was encrypted with the other key. Start every API and worker "
            f"process of this deployment with the same WAYFARER_SECRET_KEY; {_ROTATE_HINT}.")
    if recorded is None:
        _require_opens_stored_secrets(session, secret_key, source)
        session.add(DeploymentState(name=FINGERPRINT, value=fingerprint))
        session.flush()


def _require_opens_stored_secrets(session: Session, secret_key: str, source: str) -> None:
    for table, column in encrypted_columns():
        token = session.scalar(select(column).where(column.is_not(None)).limit(1))
        if token is None:
            continue
        try:
            decrypt(secret_key, token)
        except InvalidToken:
            raise SecretKeyRefused(
                f"{source} cannot open the secrets this database holds ({table.name}.{column.name}): they "
                f"were encrypted with another key. Start with the key used so far; {_ROTATE_HINT}.") from None


def rotate(database_url: str, old_key: str, new_key: str, source: str) -> dict[str, int]:
    """Re-encrypt every stored secret from old_key to new_key and record new_key's fingerprint, in one
    transaction: on any failure nothing changes. Returns how many values each column held."""
    check_secret_key(database_url, old_key, source)
    counts: dict[str, int] = {}
    with session_scope(database_url) as session:
        for table, column in encrypted_columns():
            keys = list(table.primary_key.columns)
            rows = session.execute(select(*keys, column).where(column.is_not(None))).all()
            for row in rows:
                *ids, token = row
                try:
                    rotated = reencrypt(old_key, new_key, token)
                except InvalidToken:
                    raise SecretKeyRefused(f"{table.name}.{column.name} of {ids} cannot be opened with "
                                           f"{source}; nothing was changed.") from None
                match = [key == value for key, value in zip(keys, ids, strict=True)]
                session.execute(update(table).where(*match).values({column.name: rotated}))
            counts[f"{table.name}.{column.name}"] = len(rows)
        session.merge(DeploymentState(name=FINGERPRINT, value=key_fingerprint(new_key)))
    return counts
