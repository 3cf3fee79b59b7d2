"""Fixtures for the hotel tests (helpers live in hotel_support.py)."""

from __future__ import annotations

import pytest
from hotel_support import HotelEvents, open_engine

from loyaltycore.engine import Engine


@pytest.fixture
def engine() -> Engine:
    return open_engine()


@pytest.fixture
def hotel() -> HotelEvents:
    return HotelEvents()
