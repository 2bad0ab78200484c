"""GET /metrics: Prometheus text format, no API key (keep it on the private network)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import SettingsDep
from app.platform.observability import render_metrics

router = APIRouter(tags=["System"])


@router.get("/metrics", include_in_schema=False)
async def metrics(settings: SettingsDep) -> Response:
    body = await asyncio.to_thread(render_metrics, settings)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
