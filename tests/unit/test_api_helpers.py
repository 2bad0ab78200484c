"""Pure helpers of the API: URL normalization, Range parsing, TOTP code extraction, webhook signing."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.api.artifacts import parse_range
from app.credentials.totp import extract_code
from app.platform.security import sign_hex as sign
from app.schemas.runs import normalize_http_url


@pytest.mark.parametrize(("raw", "expected"), [
    ("example.com", "https://example.com"),
    ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
    ("https://example.com/a b?q=" + "x" * 3000, "https://example.com/a b?q=" + "x" * 3000),  # kept as written
    (" HTTPS://a.test ", "HTTPS://a.test"),
])
def test_urls_are_normalized(raw: str, expected: str) -> None:
    assert normalize_http_url(raw) == expected


@pytest.mark.parametrize("raw", ["file:///etc/passwd", "javascript:alert(1)", "chrome://gpu", "ftp://a",
                                 "data:text/html,x", "https://", "", "not a url", "https://exa mple.com/",
                                 "http://127.0.0.1:99999/"])
def test_other_schemes_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_http_url(raw)


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-3", (0, 3)), ("bytes=4-", (4, 9)), ("bytes=-2", (8, 9)), ("bytes=5-100", (5, 9)),
    ("bytes=-20", (0, 9)), ("bytes=10-", None), ("bytes=4-2", None), ("bytes=-0", None), ("items=0-1", None),
    ("bytes=0-1,3-4", None),
])
def test_range_header(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 10) == expected


@pytest.mark.parametrize(("content", "code"), [
    ("123456", "123456"), (" AB-12 ", "AB-12"), ("Your code is 482913, valid 10 min", "482913"),
    ("Order 123456789 ready, code 5521", "5521"), ("no digits here at all, sorry", None),
])
def test_totp_code_extraction(content: str, code: str | None) -> None:
    assert extract_code(content) == code


def test_signature_is_hex_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"run_id":"tsk_1","status":"completed"}'
    assert sign("wf_key", body) == hmac.new(b"wf_key", body, hashlib.sha256).hexdigest()
