"""Fixtures for the fault tests: the e2e suite's run marker and webhook receiver."""

from tests.e2e.conftest import receiver, token

__all__ = ["receiver", "token"]
