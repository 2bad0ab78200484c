"""Time-based one-time passwords (RFC 6238) from the secrets sites hand out for authenticator apps.

Codes come from `cryptography`'s TOTP. The secret's length is our rule, not a library's: most sites give
16 base32 characters (80 bits), which pyotp 2.12 refuses (it wants 112 bits).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.twofactor.totp import TOTP

MIN_SECRET_BITS = 80
MIN_REMAINING_SECONDS = 5  # a code about to expire is not worth typing: use the next one
_ALGORITHMS: dict[str, type[hashes.SHA1 | hashes.SHA256 | hashes.SHA512]] = {
    "SHA1": hashes.SHA1, "SHA256": hashes.SHA256, "SHA512": hashes.SHA512}
_BASE32 = re.compile(r"[A-Z2-7]+")


class InvalidTotpSecret(ValueError):
    """The text is neither a usable base32 secret nor an otpauth://totp/ URI; the message says why."""


@dataclass(frozen=True)
class TotpSecret:
    key: bytes
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"

    def code_at(self, moment: float) -> str:
        generator = TOTP(self.key, self.digits, _ALGORITHMS[self.algorithm](), self.period,
                         enforce_key_length=False)
        return generator.generate(int(moment)).decode()


def decode_base32_secret(text: str) -> bytes:
    """The key behind a base32 secret as authenticator apps accept it: spaces, lower case and missing
    `=` padding are tolerated; it must hold at least 80 bits."""
    cleaned = "".join(text.split()).upper().rstrip("=")
    if not _BASE32.fullmatch(cleaned):
        raise InvalidTotpSecret("it must be base32 (the letters A-Z and the digits 2-7)")
    try:
        key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except binascii.Error:
        raise InvalidTotpSecret(f"{len(cleaned)} base32 characters cannot be decoded: a character is "
                                "missing or extra") from None
    if len(key) * 8 < MIN_SECRET_BITS:
        raise InvalidTotpSecret(f"it holds {len(key) * 8} bits; at least {MIN_SECRET_BITS} (16 base32 "
                                "characters) are needed")
    return key


def parse_totp_secret(text: str) -> TotpSecret:
    """A base32 secret, or a whole otpauth://totp/ URI as authenticator apps export it."""
    cleaned = text.strip()
    if not cleaned.lower().startswith("otpauth://"):
        return TotpSecret(decode_base32_secret(cleaned))
    uri = urlsplit(cleaned)
    if uri.netloc.lower() != "totp":
        raise InvalidTotpSecret("only time-based (otpauth://totp/) URIs are supported")
    query = {name: values[-1] for name, values in parse_qs(uri.query).items()}
    algorithm = query.get("algorithm", "SHA1").upper()
    if algorithm not in _ALGORITHMS:
        raise InvalidTotpSecret(f"algorithm={algorithm} is not one of {', '.join(_ALGORITHMS)}")
    try:
        digits, period = int(query.get("digits", 6)), int(query.get("period", 30))
    except ValueError:
        raise InvalidTotpSecret("digits and period must be whole numbers") from None
    if digits not in (6, 7, 8) or period < 1:
        raise InvalidTotpSecret("digits must be 6, 7 or 8 and period at least 1")
    return TotpSecret(decode_base32_secret(query.get("secret", "")), digits, period, algorithm)


def current_code(secret: str, now: float | None = None) -> str:
    """The code to type now: the current one, or the next when the current expires within 5 seconds."""
    parsed = parse_totp_secret(secret)
    moment = time.time() if now is None else now
    if parsed.period - moment % parsed.period < MIN_REMAINING_SECONDS:
        moment += parsed.period
    return parsed.code_at(moment)
