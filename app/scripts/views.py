"""What clients see of scripts: Skyvern's Script and CreateScriptResponse, from the rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.db.models import Script, ScriptFile, ScriptRevision
from app.schemas import scripts as schemas
from app.scripts.service import revision_files, revisions


def script_response(script: Script, revision: ScriptRevision | None,
                    session: Session | None = None) -> schemas.Script:
    """The script at its newest revision; with `session`, its versions and that revision's files too."""
    assert revision is not None  # a script is stored with its first revision
    versions: list[schemas.ScriptVersion] | None = None
    files: list[schemas.ScriptFile] | None = None
    if session is not None:
        versions = [schemas.ScriptVersion(script_revision_id=row.id, version=row.version,
                                          run_id=row.run_id, created_at=row.created_at)
                    for row in revisions(session, script.id)]
        files = [schemas.ScriptFile(path=row.path, content=row.content, mime_type=row.mime_type,
                                    size=row.size, content_hash=row.checksum)
                 for row in revision_files(session, revision.id)]
    return schemas.Script(script_revision_id=revision.id, script_id=script.id,
                          organization_id=script.organization_id, run_id=revision.run_id,
                          version=revision.version, created_at=script.created_at,
                          modified_at=script.modified_at, deleted_at=script.deleted_at,
                          cache_key=script.cache_key, versions=versions, files=files)


def created_response(revision: ScriptRevision, files: Sequence[ScriptFile]) -> schemas.CreateScriptResponse:
    return schemas.CreateScriptResponse(
        script_id=revision.script_id, version=revision.version, run_id=revision.run_id, file_count=len(files),
        file_tree=_tree(files), created_at=revision.created_at)


def _tree(files: Sequence[ScriptFile]) -> dict[str, schemas.FileNode]:
    """Paths like src/main.py as nested directory nodes."""
    root: dict[str, schemas.FileNode] = {}
    for row in files:
        *folders, name = row.path.split("/")
        level = root
        for folder in folders:
            node = level.setdefault(folder, schemas.FileNode(type="directory", created_at=row.created_at,
                                                             children={}))
            assert node.children is not None
            level = node.children
        level[name] = schemas.FileNode(type="file", size=row.size, mime_type=row.mime_type,
                                       content_hash=row.checksum, created_at=row.created_at)
    return root
