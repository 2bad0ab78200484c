"""Browser profiles (`bp_`): create (blank, or from a session or workflow run), list, read, update, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import CallerDep, SessionDep, SettingsDep
from app.profiles import service as profiles
from app.schemas.browser_profiles import BrowserProfile as BrowserProfileResponse
from app.schemas.browser_profiles import CreateBrowserProfileRequest, UpdateBrowserProfileRequest

router = APIRouter(tags=["Browser Profiles"])


@router.post("/v1/browser_profiles", response_model=BrowserProfileResponse)
def create_browser_profile(request: CreateBrowserProfileRequest, session: SessionDep, settings: SettingsDep,
                           caller: CallerDep) -> BrowserProfileResponse:
    row = profiles.create_profile(settings, session, caller.organization_id, request)
    return profiles.profile_response(row)


@router.get("/v1/browser_profiles", response_model=list[BrowserProfileResponse])
def list_browser_profiles(
    session: SessionDep, caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    include_deleted: bool = False,
    search_key: Annotated[str | None, Query(max_length=200)] = None,
    managed: bool | None = None,
) -> list[BrowserProfileResponse]:
    if managed:  # every profile here is user-created; none is auto-managed
        return []
    rows = profiles.list_profiles(session, caller.organization_id, page, page_size, include_deleted,
                                  search_key)
    return [profiles.profile_response(row) for row in rows]


@router.get("/v1/browser_profiles/{profile_id}", response_model=BrowserProfileResponse)
def get_browser_profile(profile_id: str, session: SessionDep, caller: CallerDep) -> BrowserProfileResponse:
    return profiles.profile_response(profiles.require_profile(session, caller.organization_id, profile_id))


@router.patch("/v1/browser_profiles/{profile_id}", response_model=BrowserProfileResponse)
def update_browser_profile(profile_id: str, request: UpdateBrowserProfileRequest, session: SessionDep,
                           caller: CallerDep) -> BrowserProfileResponse:
    row = profiles.require_profile(session, caller.organization_id, profile_id)
    profiles.update_profile(session, row, request)
    return profiles.profile_response(row)


@router.delete("/v1/browser_profiles/{profile_id}", status_code=204)
def delete_browser_profile(profile_id: str, session: SessionDep, caller: CallerDep) -> Response:
    profiles.delete_profile(session, profiles.require_profile(session, caller.organization_id, profile_id))
    return Response(status_code=204)
