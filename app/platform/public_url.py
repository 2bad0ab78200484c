"""The one base of every absolute link Wayfarer hands out (artifact links, `browser_address`, `app_url`):
the address clients reach this server at.

WAYFARER_PUBLIC_BASE_URL when set; else, inside a request, the address the client used (the request's
base URL: the Host header, and the scheme a proxy forwards in X-Forwarded-Proto only when it connects
from an address in WAYFARER_FORWARDED_ALLOW_IPS, which uvicorn enforces); else, for links made outside a
request (webhooks), the embedded server's own `serve` host and port. Celery workers make links without a
request and without knowing the API's address: with WAYFARER_REDIS_URL, the setting is required.
"""

from __future__ import annotations

import ipaddress
import os

from starlette.requests import HTTPConnection

from app.platform.settings import InvalidSettings, Settings

# Not a setting: `wayfarer serve` tells its processes (uvicorn's workers included) where it listens.
SERVE_URL_VARIABLE = "WAYFARER_SERVE_URL"
_ANY_ADDRESS = {"", "0.0.0.0", "::"}


def public_base_url(settings: Settings, request: HTTPConnection | None = None) -> str:
    """The base (no trailing slash) of links for this request, or of links made outside one."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    if request is not None:
        return str(request.base_url).rstrip("/")
    if served := os.environ.get(SERVE_URL_VARIABLE):
        return served
    raise InvalidSettings("WAYFARER_PUBLIC_BASE_URL is unset and this process serves no requests: set it "
                          "to the address clients reach the API at.")


def serve_url(host: str, port: int) -> str:
    """The embedded server's own address for links made outside a request: a wildcard listen address is
    reached on loopback."""
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{port}"


def announce_serve_url(host: str, port: int) -> None:
    os.environ[SERVE_URL_VARIABLE] = serve_url(host, port)


def require_public_base_url(settings: Settings) -> None:
    """With Redis, runs and their webhooks are made by workers that have no request to take the
    address from: the API's public address must be configured, the same for every process."""
    if settings.redis_url and not settings.public_base_url:
        raise InvalidSettings(
            "WAYFARER_PUBLIC_BASE_URL must be set when WAYFARER_REDIS_URL is: workers build the links in "
            "webhooks (artifacts, app_url) without a request to take the address from. Set it to the "
            "address clients reach the API at (e.g. https://wayfarer.example.com), the same on the API "
            "and every worker.")


def describe_links(settings: Settings) -> str:
    """For the start-up log: where links point."""
    if settings.public_base_url:
        return f"links are built on WAYFARER_PUBLIC_BASE_URL={settings.public_base_url}"
    served = os.environ.get(SERVE_URL_VARIABLE)
    outside = f"; outside a request (webhooks) on {served}" if served else ""
    return (f"WAYFARER_PUBLIC_BASE_URL is unset: links are built on the address each client used "
            f"(forwarded headers trusted from {settings.forwarded_allow_ips}){outside}")
