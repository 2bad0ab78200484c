"""WAYFARER_PROXY_LOCATIONS: which proxy a proxy_location gets, with what locale and time zone."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.platform.proxies import ProxyLocationRejected, proxy_route
from app.platform.settings import Settings


def settings(tmp_path: Path, locations: dict[str, object]) -> Settings:
    return Settings(data_dir=tmp_path, proxy_locations=locations)


def test_nothing_set_or_none_is_a_direct_connection(tmp_path: Path) -> None:
    # the official SDKs send null (the Python library) or no key (fern clients) when the caller sets nothing
    configured = settings(tmp_path, {"RESIDENTIAL": "http://us.proxy:3128"})
    assert proxy_route(configured, None) is None
    assert proxy_route(configured, "NONE") is None
    assert proxy_route(settings(tmp_path, {}), None) is None


def test_a_mapped_location_gets_its_proxy_with_the_place_s_locale_and_time_zone(tmp_path: Path) -> None:
    configured = settings(tmp_path, {"residential_gb": "http://al%40ice:pa%3Ass@gb.proxy:3128",
                                     "US-CA": {"server": "socks5://10.0.0.7:1080", "bypass": ".internal"}})
    gb = proxy_route(configured, "RESIDENTIAL_GB")
    assert gb is not None and (gb.locale, gb.timezone_id) == ("en-GB", "Europe/London")
    assert gb.playwright_proxy() == {"server": "http://gb.proxy:3128", "username": "al@ice",
                                     "password": "pa:ss"}
    california = proxy_route(configured, "us-ca")
    assert california is not None and california.timezone_id == "America/Los_Angeles"
    assert california.playwright_proxy() == {"server": "socks5://10.0.0.7:1080", "bypass": ".internal"}


def test_a_geotarget_takes_the_most_specific_place_mapped(tmp_path: Path) -> None:
    configured = settings(tmp_path, {
        "US-NY-New York": {"server": "http://nyc:1", "locale": "en-US", "timezone_id": "America/New_York"},
        "US": "http://us:1", "RESIDENTIAL_DE": "http://de:1"})

    def server(target: dict[str, str]) -> str | None:
        route = proxy_route(configured, target)
        return route.server if route else None

    assert server({"country": "US", "subdivision": "NY", "city": "New York"}) == "http://nyc:1"
    assert server({"country": "us", "subdivision": "US-NY", "city": "new york"}) == "http://nyc:1"
    assert server({"country": "US", "subdivision": "TX"}) == "http://us:1"
    assert server({"country": "DE", "city": "Berlin"}) == "http://de:1"  # the country's residential location
    with pytest.raises(ProxyLocationRejected, match="WAYFARER_PROXY_LOCATIONS"):
        proxy_route(configured, {"country": "FR"})


def test_an_explicit_location_without_a_proxy_is_refused_naming_the_setting(tmp_path: Path) -> None:
    configured = settings(tmp_path, {"RESIDENTIAL_GB": "http://gb.proxy:3128"})
    for value in ("RESIDENTIAL", "RESIDENTIAL_JP", "MARS", 7):
        with pytest.raises(ProxyLocationRejected) as refused:
            proxy_route(configured, value)
        assert "WAYFARER_PROXY_LOCATIONS (mapped: RESIDENTIAL_GB)" in str(refused.value)
    with pytest.raises(ProxyLocationRejected, match=r"^proxy_location\.url: .*WAYFARER_PROXY_LOCATIONS"):
        proxy_route(configured, {"url": "http://user:pw@elsewhere:3128"})


def test_the_setting_refuses_unknown_places_and_hides_passwords(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="'MOON' is not a proxy location"):
        settings(tmp_path, {"MOON": "http://h:1"})
    with pytest.raises(ValidationError, match="'US-CO' needs its own locale and timezone_id"):
        settings(tmp_path, {"US-CO": "http://h:1"})
    with pytest.raises(ValidationError, match="server must be a proxy URL"):
        settings(tmp_path, {"GB": "ftp://h:1"})
    configured = settings(tmp_path, {"GB": "http://bob:hunter2@h:1"})
    assert "hunter2" not in repr(configured) and "hunter2" not in repr(proxy_route(configured, "GB"))
