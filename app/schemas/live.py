"""The live view's token (a Wayfarer extension): how a program or an extension opens a live socket."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LiveTokenResponse(BaseModel):
    token: str = Field(description="Put it in the socket URL as ?token=…; valid for one target only.")
    expires_at: int = Field(description="Unix seconds; the socket must be opened before then.")
    live_url: str = Field(description="WebSocket of the frames (binary: 2-byte header length, JSON header, "
                                      "JPEG) and status messages (JSON text).")
    input_url: str | None = Field(default=None, description="WebSocket for input while you hold control "
                                                            "(runs only).")
