"""Fixtures for the entertainment tests (helpers live in entertainment_support.py)."""

from __future__ import annotations

import pytest
from entertainment_support import EntertainmentEvents, open_engine

from loyaltycore.engine import Engine


@pytest.fixture
def engine() -> Engine:
    return open_engine()


@pytest.fixture
def ent() -> EntertainmentEvents:
    return EntertainmentEvents()
