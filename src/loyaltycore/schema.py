"""Opening a database and keeping its schema current with alembic.

``LOYALTY_DB`` or ``--db`` names the database: a SQLAlchemy URL (``postgresql://...``,
``sqlite:///path``) or a plain file path for SQLite. SQLite runs in WAL mode with
immediate write transactions, so a writer takes the write lock when its transaction
begins instead of failing half-way; readers never block.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine as SqlEngine

DEFAULT_DB = "loyalty.db"
SQLITE_CACHE_KIB = 65536  # page cache per SQLite connection
SQLITE_MMAP_BYTES = int(os.environ.get("LOYALTY_SQLITE_MMAP", 2 << 30))  # file mapped
SQLITE_PAGE_SIZE = 2048  # of new SQLite files
SQLITE_CHECKPOINT_BYTES = 40_960_000  # of log between checkpoints (10,000 4-KiB pages)
# "background": a thread checkpoints (loyaltycore.checkpoints), the writer's commits only as
# a backstop, at 4x the log; "commit": the writer's commits checkpoint, as SQLite does
SQLITE_CHECKPOINTS = os.environ.get("LOYALTY_SQLITE_CHECKPOINTS", "background")


def background_checkpoints() -> bool:
    """Whether a SQLite store checkpoints from a thread (``LOYALTY_SQLITE_CHECKPOINTS``)."""
    return SQLITE_CHECKPOINTS == "background"


def database_url(db: str | Path | None = None) -> str:
    """``db``, else ``LOYALTY_DB``, else ./loyalty.db; a bare path means a SQLite file."""
    value = str(db) if db is not None else os.environ.get("LOYALTY_DB") or DEFAULT_DB
    if "://" not in value:
        return f"sqlite:///{value}"
    if value.startswith("postgresql://") or value.startswith("postgres://"):
        # psycopg 3 is the driver this package installs.
        return "postgresql+psycopg://" + value.split("://", 1)[1]
    return value


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return path or None if path != ":memory:" else None


def connect(url: str, *, background_checkpoints: bool = False) -> SqlEngine:
    """An engine for ``url``; SQLite connections get the pragmas below.
    ``background_checkpoints``: a :class:`~loyaltycore.checkpoints.Checkpointer` runs the
    checkpoints, so the writer's own are only a backstop against a log 4x larger."""
    if url.startswith("sqlite"):
        checkpoint_bytes = SQLITE_CHECKPOINT_BYTES * (4 if background_checkpoints else 1)
        engine = create_engine(url, connect_args={"timeout": 60, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # Only a new file takes it (before WAL mode writes its header). Past some
            # 10^4 members, each event dirties about ten B-tree pages that no other event
            # of its batch shares, each written to the log and again at the checkpoint:
            # at 2 KiB an event writes and reads half as many bytes as at the default
            # 4 KiB (10^6 members: 47 vs 88 KiB written, 0.67 vs 0.86 ms of CPU).
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a killed process (committed transactions are in the
            # log); only an OS crash or power loss can lose the last commits.
            cur.execute("PRAGMA synchronous=NORMAL")
            # With NORMAL, the only fsyncs are the checkpoints'. The default (1,000 pages)
            # checkpointed after nearly every batch; ~40 MB of log halves the time spent
            # committing, and a page written by several batches is copied once.
            page = cur.execute("PRAGMA page_size").fetchone()[0]
            cur.execute(f"PRAGMA wal_autocheckpoint={checkpoint_bytes // page}")
            # A batch reads and dirties thousands of B-tree pages on a large program; in
            # the default 2 MB cache even the index pages above them did not stay, and
            # every miss is a read from the OS. 64 MiB holds a batch's pages and the upper
            # levels of every index of a 10^6-member file (allocated as used, so a small
            # file never takes it).
            cur.execute(f"PRAGMA cache_size={-SQLITE_CACHE_KIB}")
            # Pages beyond the cache are read through a memory map of the file rather than
            # a read() into the cache each: on a 10^6-member file the per-event time
            # fell from 0.76 to 0.63 ms (bench/persist.py's scale). SQLite clamps it to
            # its compiled maximum (2 GB in common builds); 0 turns it off.
            cur.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            read = conn.get_execution_options().get("loyalty_read")
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "loyaltycore:migrations")
    return cfg


def upgrade(engine: SqlEngine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the latest)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Workers opening a fresh database together must not all create the tables:
            # one migrates, the others wait and then find it done.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7270917)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: SqlEngine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_current(engine: SqlEngine) -> bool:
    return current_revision(engine) == head_revision()
