"""Folders through the API (SQLite and PostgreSQL) and the official SDK's client: create, list with paging
and search, get, update, delete (keeping or deleting the workflows in it), a workflow's move, 4xx answers."""

from __future__ import annotations

import uuid
from typing import Any

from skyvern.client import Skyvern

from tests.integration.api.conftest import Api
from tests.integration.api.test_workflows import create, definition
from tests.support.spec import assert_matches_spec


def new_folder(api: Api, title: str, description: str | None = None) -> dict[str, Any]:
    response = api.client.post("/v1/folders", json={"title": title, "description": description},
                               headers=api.headers())
    assert response.status_code == 200, response.text
    folder: dict[str, Any] = response.json()
    assert_matches_spec("Folder", folder)
    return folder


def move(api: Api, wpid: str, folder_id: str | None) -> Any:
    return api.client.put(f"/v1/agents/{wpid}/folder", json={"folder_id": folder_id}, headers=api.headers())


def test_folder_crud_counts_its_workflows(api: Api) -> None:
    folder = new_folder(api, "Invoices", "monthly")
    assert folder["folder_id"].startswith("fld_") and folder["workflow_count"] == 0
    assert folder["organization_id"] == api.organization_id
    folder_id = folder["folder_id"]
    wpids = [create(api, {"json_definition": definition(f"in folder {n}")})["workflow_permanent_id"]
             for n in range(2)]
    for wpid in wpids:
        moved = move(api, wpid, folder_id)
        assert moved.status_code == 200, moved.text
        assert_matches_spec("Workflow", moved.json())
        assert moved.json()["folder_id"] == folder_id
    updated = api.client.post(f"/v1/agents/{wpids[0]}", json={"json_definition": definition("in folder v2")},
                              headers=api.headers())
    assert updated.json()["version"] == 2 and updated.json()["folder_id"] == folder_id  # carried over

    got = api.client.get(f"/v1/folders/{folder_id}", headers=api.headers()).json()
    assert_matches_spec("Folder", got)
    assert got["workflow_count"] == 2
    listed = api.client.get("/v1/agents", params={"folder_id": folder_id}, headers=api.headers()).json()
    assert sorted(w["workflow_permanent_id"] for w in listed) == sorted(wpids)
    old = api.client.get(f"/v1/agents/{wpids[0]}", params={"version": 1}, headers=api.headers()).json()
    assert old["folder_id"] == folder_id

    out = move(api, wpids[1], None)
    assert out.status_code == 200 and out.json()["folder_id"] is None
    assert api.client.get(f"/v1/folders/{folder_id}", headers=api.headers()).json()["workflow_count"] == 1

    renamed = api.client.put(f"/v1/folders/{folder_id}", json={"title": "Bills"}, headers=api.headers())
    assert renamed.status_code == 200
    assert (renamed.json()["title"], renamed.json()["description"]) == ("Bills", "monthly")
    cleared = api.client.put(f"/v1/folders/{folder_id}", json={"description": None}, headers=api.headers())
    assert (cleared.json()["title"], cleared.json()["description"]) == ("Bills", None)


def test_list_pages_and_searches_title_and_description(api: Api) -> None:
    marker = uuid.uuid4().hex[:8]
    for n in range(3):
        new_folder(api, f"Folder {marker} {n}")
    new_folder(api, "Described", f"holds {marker.upper()} things")
    first = api.client.get("/v1/folders", params={"search": marker, "page_size": 3}, headers=api.headers())
    assert first.status_code == 200
    assert_matches_spec("Folder", first.json())
    assert [f["title"] for f in first.json()] == ["Described", f"Folder {marker} 2", f"Folder {marker} 1"]
    second = api.client.get("/v1/folders", params={"search": marker, "page_size": 3, "page": 2},
                            headers=api.headers()).json()
    assert [f["title"] for f in second] == [f"Folder {marker} 0"]
    too_big = api.client.get("/v1/folders", params={"page_size": 501}, headers=api.headers())
    assert too_big.status_code == 422 and "page_size" in too_big.text


def test_delete_keeps_or_deletes_the_workflows_in_it(api: Api) -> None:
    keep = new_folder(api, "keep its workflows")["folder_id"]
    kept = create(api, {"json_definition": definition("kept")})["workflow_permanent_id"]
    move(api, kept, keep)
    deleted = api.client.delete(f"/v1/folders/{keep}", headers=api.headers())
    assert deleted.status_code == 200
    assert deleted.json() == {"status": "deleted", "folder_id": keep, "workflows_deleted": False}
    assert api.client.get(f"/v1/folders/{keep}", headers=api.headers()).status_code == 404
    workflow = api.client.get(f"/v1/agents/{kept}", headers=api.headers())
    assert workflow.status_code == 200 and workflow.json()["folder_id"] is None

    drop = new_folder(api, "delete its workflows")["folder_id"]
    dropped = create(api, {"json_definition": definition("dropped")})["workflow_permanent_id"]
    move(api, dropped, drop)
    response = api.client.delete(f"/v1/folders/{drop}", params={"delete_workflows": "true"},
                                 headers=api.headers())
    assert response.status_code == 200 and response.json()["workflows_deleted"] is True
    assert api.client.get(f"/v1/agents/{dropped}", headers=api.headers()).status_code == 404


def test_clear_4xx_and_organization_scope(api: Api) -> None:
    wpid = create(api, {"json_definition": definition("movable")})["workflow_permanent_id"]
    unknown = move(api, wpid, "fld_404")
    assert unknown.status_code == 400 and unknown.json()["detail"] == "folder_id: Folder not found fld_404"
    missing_workflow = move(api, "wpid_404", None)
    assert missing_workflow.status_code == 404 and "wpid_404" in missing_workflow.json()["detail"]
    for method, path in (("GET", "/v1/folders/fld_404"), ("PUT", "/v1/folders/fld_404"),
                         ("DELETE", "/v1/folders/fld_404")):
        response = api.client.request(method, path, json={} if method == "PUT" else None,
                                      headers=api.headers())
        assert (response.status_code, response.json()) == (404, {"detail": "Folder not found fld_404"})
    empty_title = api.client.post("/v1/folders", json={"title": ""}, headers=api.headers())
    assert empty_title.status_code == 422 and "title" in empty_title.text

    mine = new_folder(api, "mine")["folder_id"]
    other = api.new_key(f"other-{uuid.uuid4().hex[:6]}")
    assert api.client.get(f"/v1/folders/{mine}", headers=api.headers(other)).status_code == 404
    assert mine not in [f["folder_id"] for f in
                        api.client.get("/v1/folders", headers=api.headers(other)).json()]
    theirs = api.client.put(f"/v1/agents/{wpid}/folder", json={"folder_id": mine}, headers=api.headers(other))
    assert theirs.status_code == 404
    foreign_folder = api.client.post("/v1/folders", json={"title": "theirs"}, headers=api.headers(other))
    assert move(api, wpid, foreign_folder.json()["folder_id"]).status_code == 400


def test_the_official_sdk_client_drives_folders(api: Api) -> None:
    client = Skyvern(base_url=str(api.client.base_url), api_key=api.api_key, httpx_client=api.client)
    marker = uuid.uuid4().hex[:8]
    folder = client.create_folder(title=f"sdk {marker}", description="made by the SDK")
    wpid = client.create_workflow(json_definition=definition("sdk filed")).workflow_permanent_id  # type: ignore[arg-type]
    assert client.update_workflow_folder(wpid, folder_id=folder.folder_id).folder_id == folder.folder_id
    assert client.get_folder(folder.folder_id).workflow_count == 1
    assert [f.title for f in client.get_folders(search=marker)] == [f"sdk {marker}"]
    renamed = client.update_folder(folder.folder_id, title=f"sdk {marker} renamed")
    assert renamed.title == f"sdk {marker} renamed"
    assert client.update_workflow_folder(wpid, folder_id=None).folder_id is None
    assert client.delete_folder(folder.folder_id)["status"] == "deleted"
    assert client.get_folders(search=marker) == []
