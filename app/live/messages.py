"""What travels on a live topic: frames (a small JSON header, then the JPEG) and a holder's input
events, validated here both where they enter (the API) and where they are applied (the worker).

A frame message is the bytes a viewer's socket receives, unchanged from the worker: two bytes (big-endian)
giving the header's length, the header (JSON: width, height of the page's viewport in CSS pixels, the
tab's url and title, its index and the number of tabs, and how many input events the worker has applied
so far, so a holder can tell their typing has landed), then the JPEG.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

MAX_TEXT_CHARS = 1000
MAX_WHEEL_DELTA = 5000
NAMED_KEYS = frozenset({
    "Enter", "Tab", "Backspace", "Delete", "Escape", "Space", "Insert", "Home", "End", "PageUp", "PageDown",
    "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Shift", "Control", "Alt", "Meta", "CapsLock",
    *(f"F{n}" for n in range(1, 13)),
})
Modifier = Literal["Alt", "Control", "Meta", "Shift"]


def encode_frame(jpeg: bytes, *, width: int, height: int, url: str, title: str, tab: int, tabs: int,
                 inputs: int = 0) -> bytes:
    header = json.dumps({"width": width, "height": height, "url": url, "title": title, "tab": tab,
                         "tabs": tabs, "inputs": inputs}, separators=(",", ":")).encode()
    return len(header).to_bytes(2, "big") + header + jpeg


def frame_header(message: bytes) -> dict[str, object]:
    size = int.from_bytes(message[:2], "big")
    header: dict[str, object] = json.loads(message[2:2 + size])
    return header


class _Point(BaseModel):
    x: float = Field(ge=0)
    y: float = Field(ge=0)


class MouseInput(_Point):
    type: Literal["mouse"]
    action: Literal["move", "down", "up", "click"]
    button: Literal["left", "middle", "right"] = "left"
    click_count: int = Field(default=1, ge=1, le=3)


class WheelInput(_Point):
    type: Literal["wheel"]
    dx: float = Field(default=0, ge=-MAX_WHEEL_DELTA, le=MAX_WHEEL_DELTA)
    dy: float = Field(default=0, ge=-MAX_WHEEL_DELTA, le=MAX_WHEEL_DELTA)


class KeyInput(BaseModel):
    type: Literal["key"]
    action: Literal["press", "down", "up"] = "press"
    key: str = Field(max_length=12)
    modifiers: list[Modifier] = Field(default_factory=list, max_length=4)


class TextInput(BaseModel):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


InputEvent = Annotated[MouseInput | WheelInput | KeyInput | TextInput, Field(discriminator="type")]
_INPUT: TypeAdapter[MouseInput | WheelInput | KeyInput | TextInput] = TypeAdapter(InputEvent)


class InputRefused(ValueError):
    """An input event that is malformed, unknown, too large, or outside the page's viewport."""


def parse_input(raw: str | bytes, width: int, height: int) -> MouseInput | WheelInput | KeyInput | TextInput:
    try:
        event = _INPUT.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise InputRefused(f"{where}: {first['msg']}") from None
    if isinstance(event, MouseInput | WheelInput) and (event.x > width or event.y > height):
        raise InputRefused(f"({event.x:g}, {event.y:g}) is outside the {width}x{height} viewport")
    if isinstance(event, KeyInput) and event.key not in NAMED_KEYS and not (
            len(event.key) == 1 and event.key.isprintable()):
        raise InputRefused(f"key {event.key!r} is not a known key")
    return event
