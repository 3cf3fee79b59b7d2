"""Fixtures for the retail tests (helpers live in retail_support.py)."""

from __future__ import annotations

import pytest
from retail_support import RetailEvents, open_engine

from loyaltycore.engine import Engine


@pytest.fixture
def engine() -> Engine:
    return open_engine()


@pytest.fixture
def retail() -> RetailEvents:
    return RetailEvents()
