"""Fixtures for the property tests (helpers live in property_support.py)."""

from __future__ import annotations

import pytest
from property_support import PropertyEvents, open_engine

from loyaltycore.engine import Engine


@pytest.fixture
def engine() -> Engine:
    return open_engine()


@pytest.fixture
def prop() -> PropertyEvents:
    return PropertyEvents()
