"""Fixtures for the fault tests: the e2e suite's run marker."""

from tests.e2e.conftest import token

__all__ = ["token"]
