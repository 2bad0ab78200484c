"""A deployed file's content: base64 of UTF-8 text, or UTF-8 text as is; anything else is the client's
mistake, answered 400 naming the file (schemathesis found non-ASCII 'base64' answered 500)."""

from __future__ import annotations

import base64

import pytest

from app.scripts.service import ScriptRejected, decode_content


def test_base64_and_utf8_content_are_read() -> None:
    encoded = base64.b64encode("print('é')".encode()).decode()
    assert decode_content("main.py", encoded, "base64") == "print('é')"
    assert decode_content("main.py", "print('é')", "utf-8") == "print('é')"


@pytest.mark.parametrize("content", ["é", "not base64!", base64.b64encode(b"\xff\xfe").decode()])
def test_content_that_is_not_base64_of_text_is_refused_naming_the_file(content: str) -> None:
    with pytest.raises(ScriptRejected, match=r"files: main\.py is not base64"):
        decode_content("main.py", content, "base64")
