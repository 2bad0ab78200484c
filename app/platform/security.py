"""Key hashing, secret encryption at rest and signed, expiring links — all keyed by the secret key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from cryptography.fernet import Fernet, MultiFernet


def new_api_key() -> str:
    return "wf_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def normalize_api_key(raw: str) -> str:
    """Skyvern strips whitespace, a `Bearer ` prefix and outer quotes from x-api-key."""
    key = raw.strip()
    if key.lower().startswith("bearer "):
        key = key[7:].strip()
    return key.strip("\"'")


def _fernet(secret_key: str, purpose: str) -> Fernet:
    digest = hashlib.sha256(f"wayfarer-{purpose}:".encode() + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(secret_key: str, plaintext: str, purpose: str = "encrypt") -> str:
    """Fernet (encrypted and authenticated, timestamped) under a key derived for `purpose`, so a token
    made for one use (a viewer's session cookie) is never accepted for another (a stored secret)."""
    return _fernet(secret_key, purpose).encrypt(plaintext.encode()).decode()


def decrypt(secret_key: str, token: str, purpose: str = "encrypt", ttl_seconds: int | None = None) -> str:
    """Raises cryptography.fernet.InvalidToken for a forged, foreign or (with ttl_seconds) expired token."""
    return _fernet(secret_key, purpose).decrypt(token.encode(), ttl=ttl_seconds).decode()


def reencrypt(old_key: str, new_key: str, token: str, purpose: str = "encrypt") -> str:
    """The token's plaintext encrypted with new_key (InvalidToken if neither key opens it)."""
    keys = [_fernet(new_key, purpose), _fernet(old_key, purpose)]
    return MultiFernet(keys).rotate(token.encode()).decode()


def key_fingerprint(secret_key: str) -> str:
    """Tells keys apart without revealing them (stored in the database, shown in messages)."""
    return hashlib.sha256(b"wayfarer-key-fingerprint:" + secret_key.encode()).hexdigest()[:16]


def sign_hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _link_mac(secret_key: str, artifact_id: str, expires: int) -> str:
    return sign_hex("wayfarer-link:" + secret_key, f"{artifact_id}:{expires}".encode())


def sign_artifact_link(secret_key: str, artifact_id: str, ttl_seconds: int) -> tuple[int, str]:
    expires = int(time.time()) + ttl_seconds
    return expires, _link_mac(secret_key, artifact_id, expires)


def verify_artifact_link(secret_key: str, artifact_id: str, expires: int, signature: str) -> bool:
    if expires < time.time():
        return False
    return hmac.compare_digest(_link_mac(secret_key, artifact_id, expires).encode(), signature.encode())
