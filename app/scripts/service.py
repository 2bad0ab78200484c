"""Scripts in the database: what a `run_with: "code"` run looks up and stores, and what the scripts API
reads and deploys. A revision's files are `script.json` (what replay reads, `app.scripts.document`) and
`main.py` (the standalone export); a deploy replaces the files it names and keeps the others."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db.models import Run, Script, ScriptFile, ScriptRevision, utcnow
from app.runs import ids
from app.scripts.document import ScriptDoc, ScriptFormatError
from app.scripts.export import export_python

SCRIPT_JSON = "script.json"
MAIN_PY = "main.py"
_MIME = {SCRIPT_JSON: "application/json", MAIN_PY: "text/x-python"}


class UnknownScript(LookupError):
    """The organization has no such script (HTTP 404)."""

    def __init__(self, script_id: str) -> None:
        super().__init__(f"Script not found {script_id}")


class ScriptRejected(ValueError):
    """A deploy whose files cannot be used (HTTP 400); the message names the file and the problem."""


@dataclass(frozen=True)
class StoredScript:
    """A script's newest revision as replay needs it."""

    script_id: str
    revision_id: str
    version: int
    document: ScriptDoc


@dataclass(frozen=True)
class NewFile:
    path: str
    content: str
    mime_type: str | None = None


def find_for_key(session: Session, organization_id: str, cache_key: str) -> StoredScript | None:
    """The newest revision of the organization's live script for `cache_key`; None when there is none or
    its script.json is not replayable (the run records afresh then)."""
    script = session.scalars(select(Script).where(
        Script.organization_id == organization_id, Script.cache_key == cache_key, Script.deleted_at.is_(None))
        .order_by(Script.created_at.desc())).first()
    if script is None:
        return None
    revision = latest_revision(session, script.id)
    files = {row.path: row.content for row in revision_files(session, revision.id)} if revision else {}
    if revision is None or SCRIPT_JSON not in files:
        return None
    try:
        document = ScriptDoc.from_json(json.loads(files[SCRIPT_JSON]))
    except (ValueError, ScriptFormatError):
        return None
    return StoredScript(script.id, revision.id, revision.version, document)


def save_recording(session: Session, organization_id: str, cache_key: str, run_id: str, document: ScriptDoc,
                   title: str, script_id: str | None = None) -> ScriptRevision:
    """A new revision from a run's recording: of `script_id` (a healed run rewrites its script) or of a
    new script for `cache_key`."""
    if script_id is None:
        now = utcnow()
        script = Script(id=ids.new_id(ids.SCRIPT), organization_id=organization_id, cache_key=cache_key,
                        created_at=now, modified_at=now)
        session.add(script)
        session.flush()
        script_id = script.id
    files = [NewFile(SCRIPT_JSON, json.dumps(document.to_json(), indent=1, ensure_ascii=False)),
             NewFile(MAIN_PY, export_python(document, title))]
    return _add_revision(session, script_id, run_id, files)


def record_script_run(session: Session, run_id: str, script_run: dict[str, Any]) -> None:
    session.execute(update(Run).where(Run.id == run_id).values(script_run=script_run))


def list_scripts(session: Session, organization_id: str, page: int,
                 page_size: int) -> list[tuple[Script, ScriptRevision]]:
    """The organization's live scripts, newest first, each with its newest revision."""
    scripts = session.scalars(select(Script).where(Script.organization_id == organization_id,
                                                   Script.deleted_at.is_(None))
                              .order_by(Script.created_at.desc(), Script.id.desc())
                              .offset((page - 1) * page_size).limit(page_size)).all()
    listed = []
    for script in scripts:
        revision = latest_revision(session, script.id)
        if revision is not None:
            listed.append((script, revision))
    return listed


def require_script(session: Session, organization_id: str, script_id: str) -> Script:
    script = session.scalars(select(Script).where(Script.id == script_id,
                                                  Script.organization_id == organization_id,
                                                  Script.deleted_at.is_(None))).first()
    if script is None:
        raise UnknownScript(script_id)
    return script


def revisions(session: Session, script_id: str) -> list[ScriptRevision]:
    return list(session.scalars(select(ScriptRevision).where(ScriptRevision.script_id == script_id)
                                .order_by(ScriptRevision.version)).all())


def latest_revision(session: Session, script_id: str) -> ScriptRevision | None:
    return session.scalars(select(ScriptRevision).where(ScriptRevision.script_id == script_id)
                           .order_by(ScriptRevision.version.desc())).first()


def revision_files(session: Session, revision_id: str) -> list[ScriptFile]:
    return list(session.scalars(select(ScriptFile).where(ScriptFile.revision_id == revision_id)
                                .order_by(ScriptFile.path)).all())


def deploy(session: Session, organization_id: str, script_id: str, files: list[NewFile]) -> ScriptRevision:
    """A new revision with `files` over the newest revision's; a script.json must be replayable."""
    require_script(session, organization_id, script_id)
    if not files:
        raise ScriptRejected("files: give at least one file to deploy.")
    current = latest_revision(session, script_id)
    kept = {row.path: NewFile(row.path, row.content, row.mime_type)
            for row in (revision_files(session, current.id) if current else [])}
    for file in files:
        if file.path == SCRIPT_JSON:
            try:
                ScriptDoc.from_json(json.loads(file.content))
            except ValueError as exc:
                raise ScriptRejected(f"files: {SCRIPT_JSON} cannot be replayed: {exc}") from None
        kept[file.path] = file
    revision = _add_revision(session, script_id, None, list(kept.values()))
    session.commit()
    return revision


def decode_content(path: str, content: str, encoding: str) -> str:
    """A deployed file's text (base64 or utf-8, as ScriptFileCreate says); ScriptRejected otherwise."""
    if encoding == "utf-8":
        return content
    try:
        return base64.b64decode(content, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text given as base64
        raise ScriptRejected(f"files: {path} is not base64 of UTF-8 text; send it so, or with "
                             "encoding \"utf-8\".") from None


def delete_script(session: Session, organization_id: str, script_id: str) -> None:
    """Clears the script's cache key: the next run with that key records a new script."""
    script = require_script(session, organization_id, script_id)
    script.deleted_at = utcnow()
    session.commit()


def file_of(session: Session, organization_id: str, script_id: str, path: str,
            version: int | None = None) -> tuple[ScriptRevision, ScriptFile]:
    """One file of the newest (or the given) version of the script; UnknownScript when absent."""
    require_script(session, organization_id, script_id)
    query = select(ScriptRevision).where(ScriptRevision.script_id == script_id)
    query = query.where(ScriptRevision.version == version) if version is not None else \
        query.order_by(ScriptRevision.version.desc())
    revision = session.scalars(query).first()
    found = next((row for row in revision_files(session, revision.id) if row.path == path), None) \
        if revision else None
    if revision is None or found is None:
        raise UnknownScript(f"{script_id} (version {version or 'newest'}, file {path})")
    return revision, found


def _add_revision(session: Session, script_id: str, run_id: str | None,
                  files: list[NewFile]) -> ScriptRevision:
    version = (session.scalar(select(func.max(ScriptRevision.version))
                              .where(ScriptRevision.script_id == script_id)) or 0) + 1
    now = utcnow()
    revision = ScriptRevision(id=ids.new_id(ids.SCRIPT_REVISION), script_id=script_id, version=version,
                              run_id=run_id, created_at=now, modified_at=now)
    session.add(revision)
    session.flush()  # no relationship tells the unit of work the revision goes first
    for file in files:
        data = file.content.encode()
        session.add(ScriptFile(id=ids.new_id(ids.SCRIPT_FILE), revision_id=revision.id, path=file.path,
                               content=file.content, size=len(data),
                               checksum=hashlib.sha256(data).hexdigest(),
                               mime_type=file.mime_type or _MIME.get(file.path, "text/plain"),
                               created_at=now, modified_at=now))
    session.execute(update(Script).where(Script.id == script_id).values(modified_at=now))
    session.flush()
    return revision
