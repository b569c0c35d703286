"""The risk fixtures (tests/risk/conftest.py) for the risk benchmark helpers' tests."""

from tests.risk.conftest import _no_market_data, ref, submit  # noqa: F401
