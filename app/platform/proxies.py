"""Proxy locations: Skyvern's `proxy_location` mapped to the proxies an operator runs.

`WAYFARER_PROXY_LOCATIONS` maps location names to proxy servers, as JSON:

    {"RESIDENTIAL_GB": "http://user:pass@gb.proxy.internal:3128",
     "US-CA": {"server": "socks5://10.0.0.7:1080", "locale": "en-US", "timezone_id": "America/Los_Angeles"}}

A name is one of Skyvern's ProxyLocation values (`RESIDENTIAL`, `RESIDENTIAL_GB`, `US-CA`, ...) or a
GeoTarget's place: a country (`GB`), country-subdivision (`US-CA`) or country-subdivision-city
(`US-NY-New York`); a GeoTarget uses the most specific one mapped, else its country's residential
location (`{"country": "GB"}` -> `RESIDENTIAL_GB`, `US` -> `RESIDENTIAL`). A run's browser goes through that
proxy with the place's locale and time zone (Skyvern's, for its locations and countries; an entry may
set its own and must for other places). `proxy_location` null, absent or `"NONE"` (what the official
SDKs send when the caller sets nothing is null or no key) means a direct connection; any other value
that is not mapped is refused (`ProxyLocationRejected`, HTTP 400), never silently ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, SecretStr, field_validator, model_validator

SETTING = "WAYFARER_PROXY_LOCATIONS"
DIRECT = "NONE"
PROXY_SCHEMES = ("http", "https", "socks5")

# (locale, time zone) of each of Skyvern's proxy locations (time zones as Skyvern's
# get_tzinfo_from_proxy gives them) and of each country it geo-targets.
_COUNTRIES: dict[str, tuple[str, str]] = {
    "US": ("en-US", "America/New_York"), "ES": ("es-ES", "Europe/Madrid"),
    "IE": ("en-IE", "Europe/Dublin"), "GB": ("en-GB", "Europe/London"), "IN": ("en-IN", "Asia/Kolkata"),
    "JP": ("ja-JP", "Asia/Tokyo"), "FR": ("fr-FR", "Europe/Paris"), "DE": ("de-DE", "Europe/Berlin"),
    "NZ": ("en-NZ", "Pacific/Auckland"), "ZA": ("en-ZA", "Africa/Johannesburg"),
    "AR": ("es-AR", "America/Argentina/Buenos_Aires"), "AU": ("en-AU", "Australia/Sydney"),
    "BR": ("pt-BR", "America/Sao_Paulo"), "TR": ("tr-TR", "Europe/Istanbul"),
    "CA": ("en-CA", "America/Toronto"), "MX": ("es-MX", "America/Mexico_City"),
    "IT": ("it-IT", "Europe/Rome"), "NL": ("nl-NL", "Europe/Amsterdam"),
    "PH": ("en-PH", "Asia/Manila"), "KR": ("ko-KR", "Asia/Seoul"), "SA": ("ar-SA", "Asia/Riyadh"),
}
PLACES: dict[str, tuple[str, str]] = {
    **_COUNTRIES,
    **{f"RESIDENTIAL_{country}": place for country, place in _COUNTRIES.items() if country != "US"},
    "RESIDENTIAL": _COUNTRIES["US"], "RESIDENTIAL_ISP": _COUNTRIES["US"],
    "US-CA": ("en-US", "America/Los_Angeles"), "US-NY": ("en-US", "America/New_York"),
    "US-TX": ("en-US", "America/Chicago"), "US-FL": ("en-US", "America/New_York"),
    "US-WA": ("en-US", "America/Los_Angeles"),
}
_PLACE_NAME = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,10}(-\S.*)?)?")


class ProxyEntry(BaseModel):
    """One mapped location in WAYFARER_PROXY_LOCATIONS; a bare string is the server URL, credentials
    included (`http://user:pass@host:port`)."""

    server: str
    username: str | None = None
    password: SecretStr | None = None
    bypass: str | None = None  # hosts reached directly, Chromium's list syntax (".internal, 10.0.0.0/8")
    locale: str | None = None
    timezone_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, value: Any) -> Any:
        return {"server": value} if isinstance(value, str) else value

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
            raise ValueError("server must be a proxy URL: http://, https:// or socks5://host:port")
        return value.strip()

    @model_validator(mode="after")
    def _credentials_apart(self) -> ProxyEntry:
        """Credentials in the URL move to username/password: Chromium takes them only from there."""
        parts = urlsplit(self.server)
        if parts.username is not None:
            self.username = self.username or unquote(parts.username)
            if parts.password is not None and self.password is None:
                self.password = SecretStr(unquote(parts.password))
            self.server = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
        return self


def check_locations(locations: dict[str, ProxyEntry]) -> dict[str, ProxyEntry]:
    """Names upper-cased and known, every entry with a locale and time zone (the setting's validator)."""
    checked: dict[str, ProxyEntry] = {}
    for name, entry in locations.items():
        key = name.strip().upper()
        if key == DIRECT or (key not in PLACES and not _PLACE_NAME.fullmatch(key)):
            raise ValueError(f"{name!r} is not a proxy location: use one of Skyvern's ProxyLocation values "
                             "(e.g. RESIDENTIAL_GB) or a place: GB, US-CA or US-NY-New York")
        locale, timezone_id = PLACES.get(key, (None, None))
        entry = entry.model_copy(update={"locale": entry.locale or locale,
                                         "timezone_id": entry.timezone_id or timezone_id})
        if entry.locale is None or entry.timezone_id is None:
            raise ValueError(f"{name!r} needs its own locale and timezone_id (e.g. \"en-US\", "
                             "\"America/Denver\"): there is no default for that place")
        checked[key] = entry
    return checked


class ProxySettings(Protocol):
    """What the lookup needs of app.platform.settings.Settings (which imports this module)."""

    @property
    def proxy_locations(self) -> dict[str, ProxyEntry]: ...


class ProxyLocationRejected(ValueError):
    """An explicit proxy_location this server has no proxy for (HTTP 400; the message names the setting)."""


@dataclass(frozen=True)
class ProxyRoute:
    """Where a browser goes out, and the place it presents as."""

    location: str
    server: str
    username: str | None
    password: str | None
    bypass: str | None
    locale: str
    timezone_id: str

    def playwright_proxy(self) -> dict[str, str]:
        """Playwright's `proxy` option of a browser context."""
        proxy = {"server": self.server, "username": self.username, "password": self.password,
                 "bypass": self.bypass}
        return {key: value for key, value in proxy.items() if value is not None}

    def __repr__(self) -> str:  # never the password
        return f"ProxyRoute({self.location!r}, {self.server!r})"


def proxy_route(settings: ProxySettings, proxy_location: object) -> ProxyRoute | None:
    """The proxy a browser for this `proxy_location` (a run's, a browser session's or a workflow run's,
    as the request gave it) goes through; None for a direct connection. Raises ProxyLocationRejected
    for an explicit value that is not mapped."""
    if proxy_location is None or proxy_location == DIRECT:
        return None
    locations: dict[str, ProxyEntry] = settings.proxy_locations
    for name in _names(proxy_location):
        entry = locations.get(name)
        if entry is not None:
            assert entry.locale is not None and entry.timezone_id is not None  # check_locations
            return ProxyRoute(name, entry.server, entry.username,
                              entry.password.get_secret_value() if entry.password else None,
                              entry.bypass, entry.locale, entry.timezone_id)
    mapped = ", ".join(sorted(locations)) or "none"
    raise ProxyLocationRejected(
        f"proxy_location {_shown(proxy_location)} has no proxy on this server: the operator maps proxy "
        f"locations to proxies in {SETTING} (mapped: {mapped}). Send \"NONE\" or leave proxy_location "
        "unset for a direct connection.")


def proxy_browser_options(settings: ProxySettings, proxy_location: object) -> dict[str, Any]:
    """The browser options (workers.agent.contract.BrowserOptions fields) that send a browser through
    `proxy_location`'s proxy as its place: proxy, locale, timezone_id; none for a direct connection."""
    route = proxy_route(settings, proxy_location)
    if route is None:
        return {}
    return {"proxy": route.playwright_proxy(), "locale": route.locale, "timezone_id": route.timezone_id}


def _names(proxy_location: object) -> list[str]:
    """The setting's names that could serve the value, most specific first."""
    if isinstance(proxy_location, str):
        return [proxy_location.strip().upper()]
    if not isinstance(proxy_location, dict):
        return []
    if "url" in proxy_location:
        raise ProxyLocationRejected(
            "proxy_location.url: this server takes no proxy address from requests; its operator maps "
            f"proxy locations to proxies in {SETTING}. Send a proxy location (e.g. \"RESIDENTIAL_GB\" "
            "or {\"country\": \"GB\"}) or \"NONE\".")
    country = str(proxy_location.get("country") or "").strip().upper()
    if not country:
        return []
    subdivision = str(proxy_location.get("subdivision") or "").strip().upper().removeprefix(f"{country}-")
    city = str(proxy_location.get("city") or "").strip().upper()
    parts = [country, *([subdivision] if subdivision else []), *([city] if city else [])]
    residential = "RESIDENTIAL" if country == "US" else f"RESIDENTIAL_{country}"
    return ["-".join(parts[:length]) for length in range(len(parts), 0, -1)] + [residential]


def _shown(proxy_location: object) -> str:
    if isinstance(proxy_location, dict):
        return "{" + ", ".join(f"{key}: {value!r}" for key, value in proxy_location.items()) + "}"
    return repr(proxy_location)
