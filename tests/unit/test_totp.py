"""TOTP codes against RFC 6238's test vectors and the 16-character secrets most sites hand out."""

from __future__ import annotations

import base64

import pyotp
import pytest

from app.credentials.authenticator import InvalidTotpSecret, current_code, parse_totp_secret

# RFC 6238, appendix B: the seeds are ASCII digits, 20/32/64 bytes long; codes have 8 digits.
RFC_SEEDS = {"SHA1": b"12345678901234567890", "SHA256": b"12345678901234567890123456789012",
             "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234"}
RFC_VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
# The secret of countless examples and sites (80 bits); codes computed once with HMAC-SHA1 by hand.
COMMON = "JBSWY3DPEHPK3PXP"
COMMON_CODES = {59: "996554", 1111111109: "071271", 1700000000: "324550"}


@pytest.mark.parametrize(("moment", "sha1", "sha256", "sha512"), RFC_VECTORS)
def test_rfc6238_vectors(moment: int, sha1: str, sha256: str, sha512: str) -> None:
    for algorithm, expected in (("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)):
        secret = base64.b32encode(RFC_SEEDS[algorithm]).decode().rstrip("=")
        uri = f"otpauth://totp/Example:ada?secret={secret}&algorithm={algorithm}&digits=8&period=30"
        assert parse_totp_secret(uri).code_at(moment) == expected, algorithm
    plain = base64.b32encode(RFC_SEEDS["SHA1"]).decode()
    assert parse_totp_secret(plain).code_at(moment) == sha1[-6:]  # default: SHA1, 6 digits, 30 s


@pytest.mark.parametrize("written", [COMMON, COMMON.lower(), "jbsw y3dp ehpk 3pxp", " JBSWY3DPEHPK3PXP== \n"])
def test_the_common_16_character_secret_as_authenticator_apps_accept_it(written: str) -> None:
    for moment, code in COMMON_CODES.items():
        assert parse_totp_secret(written).code_at(moment) == code
    assert current_code(f"otpauth://totp/Site:ada?secret={written.strip().replace(' ', '')}&issuer=Site",
                        now=31) == COMMON_CODES[59]


def test_codes_match_pyotp_for_its_own_secrets_and_uris() -> None:
    secret = pyotp.random_base32()  # 32 characters, which every pyotp accepts
    generator = pyotp.TOTP(secret)
    uri = generator.provisioning_uri(name="ada@example.com", issuer_name="Example")
    for moment in (0, 1_700_000_010, 2_000_000_000):
        assert parse_totp_secret(secret).code_at(moment) == generator.at(moment)
        assert parse_totp_secret(uri).code_at(moment) == generator.at(moment)


def test_a_code_about_to_expire_gives_way_to_the_next() -> None:
    assert current_code(COMMON, now=1111111109 - 1111111109 % 30 + 1) == COMMON_CODES[1111111109]
    assert current_code(COMMON, now=56) == parse_totp_secret(COMMON).code_at(60)  # 4 s left of 0-29


@pytest.mark.parametrize(("secret", "reason"), [
    ("JBSWY3DPEHPK", "56 bits"),  # 12 characters: too short
    ("JBSWY3DPEHPK3PX1", "base32"),  # 1 is not a base32 digit
    ("JBSWY3DPEHPK3PXPA", "cannot be decoded"),  # 17 characters: not a whole number of bytes
    ("", "base32"),
    ("otpauth://hotp/Site:ada?secret=JBSWY3DPEHPK3PXP&counter=1", "time-based"),
    ("otpauth://totp/Site:ada?secret=JBSWY3DPEHPK3PXP&algorithm=MD5", "MD5"),
    ("otpauth://totp/Site:ada?secret=JBSWY3DPEHPK3PXP&digits=4", "digits"),
    ("otpauth://totp/Site:ada?issuer=Site", "base32"),
])
def test_unusable_secrets_are_refused_saying_why(secret: str, reason: str) -> None:
    with pytest.raises(InvalidTotpSecret, match=reason):
        parse_totp_secret(secret)
