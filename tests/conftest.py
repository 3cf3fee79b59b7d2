"""Shared test setup: hypothesis profiles, plugin selection, engines and event factories.

Hypothesis profiles: ``ci`` (fast, for CI) and ``dev`` (more examples); choose with
``HYPOTHESIS_PROFILE`` (default ``dev``).

Plugins: tests register plugins programmatically (``load_entrypoints=False``); the CLI,
which always reads entry points, is pinned to the retail plugin through
``LOYALTY_PLUGINS`` so an unrelated installed plugin cannot change results.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ["LOYALTY_PLUGINS"] = "retail"
os.environ.pop("LOYALTY_RULESETS", None)

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=False,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=150, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

from plugins import support  # noqa: E402


@pytest.fixture
def engine():
    """A fresh engine on the real rulesets/ with the retail plugin only."""
    return support.open_real()


@pytest.fixture
def test_engine():
    """A fresh engine on the test group policy with the retail and arcade lines."""
    return support.open_test()


@pytest.fixture
def ev():
    """Factory of raw event dicts: ``ev.purchase("100")``, ``ev.refund(id, "50")`` ..."""
    return support.Events()


@pytest.fixture
def make_event():
    """Factory of one raw event dict with any envelope and payload fields."""
    factory = support.Events()
    return factory.make


# --- databases ---------------------------------------------------------------------------
# The ledger is tested on real SQLite files and a real PostgreSQL (never skipped: a
# PostgreSQL that cannot be reached fails these tests). Each test gets its own schema.

PG_URL = support.PG_URL


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    url, drop = support.pg_schema(PG_URL)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'loyalty.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each ledger test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'loyalty.db'}"
        return
    url, drop = support.pg_schema(PG_URL)
    try:
        yield url
    finally:
        drop()
