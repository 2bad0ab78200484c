"""A run's cache key: the client's, or a hash of what decides what the run does (app/scripts/keys.py)."""

from __future__ import annotations

from app.scripts.keys import cache_key, normalised_url

REQUEST = {"engine": "skyvern-1.0", "data_extraction_schema": {"type": "object"}}


def test_the_url_is_normalised() -> None:
    assert normalised_url("HTTPS://Example.COM:443/order/#top") == "https://example.com/order"
    assert normalised_url("http://example.com:8080") == "http://example.com:8080/"
    assert normalised_url("https://example.com/a?b=1") == "https://example.com/a?b=1"


def test_the_same_task_written_differently_shares_a_key() -> None:
    one = cache_key(REQUEST, "Order  the usual\n", "https://Example.com/order/")
    assert one == cache_key(REQUEST, "Order the usual", "https://example.com/order")
    assert one.startswith("sha256:")


def test_what_changes_the_task_changes_the_key() -> None:
    base = cache_key(REQUEST, "Order the usual", "https://example.com/order")
    assert base != cache_key(REQUEST, "Order something else", "https://example.com/order")
    assert base != cache_key(REQUEST, "Order the usual", "https://example.com/other")
    assert base != cache_key({**REQUEST, "engine": "skyvern-2.0"}, "Order the usual", "https://example.com/order")
    assert base != cache_key({**REQUEST, "data_extraction_schema": None}, "Order the usual",
                             "https://example.com/order")


def test_a_given_cache_key_is_used_as_is() -> None:
    assert cache_key({**REQUEST, "cache_key": "daily-order"}, "anything", None) == "daily-order"
