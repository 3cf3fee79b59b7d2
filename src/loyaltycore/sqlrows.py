"""Rows read and written straight through the database driver, for the per-batch path.

A batch of 500 events reads and writes tens of thousands of rows. Through SQLAlchemy's
statement objects each row paid for parameter processing, and each query for building and
compiling a statement (a VALUES list of literals is never found in the compile cache):
together several times what SQLite itself spent. Here each statement's text is built once
per (table, columns, dialect) and cached, values are converted once per column with the
column type's own bind and result processors (so a row reads back exactly as SQLAlchemy
would read it), and rows go to the driver's ``execute``/``executemany``.

On PostgreSQL a write is one statement per table and batch, whatever its number of rows:
each column travels as one array parameter and ``unnest`` turns the arrays back into rows
(``INSERT ... SELECT * FROM unnest(...)``, ``UPDATE ... FROM unnest(...)``). psycopg's
``executemany`` sent, prepared and acknowledged every row on its own: for a batch of 500
events, some 3,000 rows, it spent more client time than the whole decide-and-apply path,
and the server parsed and planned as many statements. Reads by member id take one array
parameter too (``= ANY(...)``, pairs through ``unnest``) rather than a list of 500
placeholders that psycopg parsed out of the query's text each time.

Everything else (migrations, jobs' selection, reports, merges) keeps SQLAlchemy
statements: they run once per command, not once per row.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from .tables import Timestamp

IN_CHUNK = 500  # ids per IN (...) list

Converter = Callable[[Any], Any]


class _Reader:
    """A SELECT of some columns of one table: its row type and its value converters."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Any):
        cols = [table.c[name] for name in columns]
        self.quote = dialect.identifier_preparer.quote
        self.columns = ", ".join(f"{self.quote(table.name)}.{self.quote(c.name)}" for c in cols)
        self.row = namedtuple(f"{table.name}_row", [c.name for c in cols])  # noqa: PYI024
        # psycopg returns datetimes, Decimals, dates and bools itself; SQLite returns text
        # and integers that the column types turn back into them.
        self.convert = [] if dialect.name != "sqlite" else [
            (i, f) for i, c in enumerate(cols)
            if (f := c.type.dialect_impl(dialect).result_processor(dialect, None)) is not None]

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[Any]:
        make = self.row._make
        if not self.convert:
            return [make(r) for r in raw]
        out = []
        convert = self.convert
        for r in raw:
            r = list(r)
            for i, f in convert:
                v = r[i]
                if v is not None:
                    r[i] = f(v)
            out.append(make(r))
        return out


_READERS: dict[tuple[str, tuple[str, ...], str], _Reader] = {}
_TEXTS: dict[tuple, str] = {}


def _reader(conn: Connection, table: Table, columns: Sequence[str] | None) -> _Reader:
    names = tuple(columns) if columns is not None else tuple(c.name for c in table.c)
    key = (table.name, names, conn.dialect.name)
    reader = _READERS.get(key)
    if reader is None:
        reader = _READERS[key] = _Reader(table, names, conn.dialect)
    return reader


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _marks(conn: Connection, n: int) -> str:
    return ", ".join([_mark(conn)] * n)


def chunks(seq: Sequence[Any], n: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def select_in(conn: Connection, table: Table, key: str, ids: Sequence[Any], *,
              columns: Sequence[str] | None = None, where: str = "",
              params: Sequence[Any] = (), order_by: str | None = None,
              for_update: bool = False) -> list[Any]:
    """Rows of ``table`` whose ``key`` is in ``ids`` (chunked), as named tuples.

    ``where``: an extra condition in SQL with the driver's ``?``/``%s`` marks written as
    ``{}`` (filled from ``params``); column names in it are the table's own."""
    reader = _reader(conn, table, columns)
    quote = reader.quote
    out: list[Any] = []
    for part in chunks(ids):
        tkey = ("select_in", table.name, reader.columns, key, where, order_by, for_update,
                len(part), conn.dialect.name)
        sql = _TEXTS.get(tkey)
        arrays = conn.dialect.name == "postgresql"
        if sql is None:
            # PostgreSQL: one array parameter; psycopg parses a query's text for its
            # placeholders, and one with 500 of them took milliseconds each time.
            wanted = (f"= ANY({_array_of(conn, table, key)})" if arrays
                      else f"IN ({_marks(conn, len(part))})")
            sql = (f"SELECT {reader.columns} FROM {quote(table.name)} "
                   f"WHERE {quote(key)} {wanted}")
            if where:
                sql += " AND " + where.format(*([_mark(conn)] * where.count("{}")))
            if order_by:
                sql += f" ORDER BY {quote(order_by)}"
            if for_update:
                sql += " FOR UPDATE"
            _TEXTS[tkey] = sql
        args = (list(part), *params) if arrays else (*part, *params)
        out += reader.rows(conn.exec_driver_sql(sql, args).fetchall())
    return out


def select_pairs(conn: Connection, table: Table, keys: tuple[str, str],
                 pairs: Sequence[tuple[Any, Any]], columns: Sequence[str]) -> list[Any]:
    """Rows of ``table`` for (key1, key2) pairs, joined as a VALUES list so that the
    database goes through the primary key (``(a, b) IN (...)`` made SQLite scan the whole
    table, and two separate IN lists made it probe every a against every b)."""
    reader = _reader(conn, table, columns)
    quote = reader.quote
    t = quote(table.name)
    k1, k2 = (quote(k) for k in keys)
    out: list[Any] = []
    for part in chunks(sorted(set(pairs))):
        tkey = ("pairs", table.name, reader.columns, keys, len(part), conn.dialect.name)
        sql = _TEXTS.get(tkey)
        arrays = conn.dialect.name == "postgresql"
        if sql is None:
            if arrays:
                wanted = (f"SELECT * FROM unnest({_array_of(conn, table, keys[0])}, "
                          f"{_array_of(conn, table, keys[1])})")
            else:
                pair = f"({_marks(conn, 2)})"
                wanted = f"VALUES {', '.join([pair] * len(part))}"
            sql = (f"WITH wanted(k1, k2) AS ({wanted}) "
                   f"SELECT {reader.columns} FROM wanted JOIN {t} "
                   f"ON {t}.{k1} = wanted.k1 AND {t}.{k2} = wanted.k2")
            _TEXTS[tkey] = sql
        if arrays:
            args: tuple = tuple(map(list, zip(*part, strict=True)))
        else:
            args = tuple(v for p in part for v in p)
        out += reader.rows(conn.exec_driver_sql(sql, args).fetchall())
    return out


class _Writer:
    """One INSERT/UPDATE/upsert statement and the bind conversions of its columns."""

    def __init__(self, sql: str, convert: list[Converter | None]):
        self.sql = sql
        self.fix = [(i, f) for i, f in enumerate(convert) if f is not None]

    def run(self, conn: Connection, rows: list[tuple]) -> None:
        if self.fix:
            # Column by column: zip transposes in C, and a column's values share one
            # converter.
            columns = list(zip(*rows, strict=True))
            for i, f in self.fix:
                columns[i] = [None if v is None else f(v) for v in columns[i]]
            rows = list(zip(*columns, strict=True))
        conn.exec_driver_sql(self.sql, rows)


class _ArrayWriter:
    """One statement over ``unnest`` of one array per column (PostgreSQL)."""

    def __init__(self, sql: str):
        self.sql = sql

    def run(self, conn: Connection, rows: list[tuple]) -> None:
        # Straight to psycopg: its %b (binary) parameters are not SQLAlchemy's to parse.
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self.sql, tuple(map(list, zip(*rows, strict=True))))
        finally:
            cursor.close()


_WRITERS: dict[tuple, _Writer | _ArrayWriter] = {}


def _array_of(conn: Connection, table: Table, name: str) -> str:
    """A binary array parameter of column ``name``'s type (PostgreSQL)."""
    return f"%b::{table.c[name].type.compile(dialect=conn.dialect)}[]"


def _unnest(conn: Connection, table: Table, names: Sequence[str]) -> str:
    """``unnest(%b::type[], ...)`` for the columns ``names`` of ``table``. Binary (``%b``):
    in text form psycopg escapes every array element with a regular expression, which cost
    more than the rows' executemany did. The casts give each array its column's type
    (an array of small ints arrives as int2[], say)."""
    return "unnest(" + ", ".join(_array_of(conn, table, n) for n in names) + ")"


def _converters(conn: Connection, table: Table, names: Sequence[str]) -> list[Converter | None]:
    dialect = conn.dialect
    if dialect.name != "sqlite":
        return [None] * len(names)  # psycopg adapts datetimes, Decimals and bools itself
    return [_remembered(f) if isinstance(table.c[n].type, Timestamp) and f is not None else f
            for n in names for f in [table.c[n].type.bind_processor(dialect)]]


_TEXT_OF_INSTANT: dict[Any, Any] = {}


def _remembered(convert: Converter) -> Converter:
    """A timestamp's text, remembered: one event's instant is written to its event row,
    its entries, lot moves and lots, and converting an aware datetime to UTC text costs more
    than a dictionary lookup. Equal instants in different offsets have one UTC text, so
    they may share it."""
    memo = _TEXT_OF_INSTANT

    def text(value: Any) -> Any:
        out = memo.get(value)
        if out is None:
            if len(memo) > 100_000:
                memo.clear()
            out = memo[value] = convert(value)
        return out

    return text


def insert(conn: Connection, table: Table, rows: Sequence[dict] | Sequence[tuple], *,
           columns: Sequence[str] | None = None, conflict: Sequence[str] = (),
           update: Sequence[str] = ()) -> None:
    """INSERT ``rows`` in one executemany (PostgreSQL: one statement).

    ``rows`` are dicts with the same keys, or tuples of the values of ``columns`` in that
    order (what the per-batch path builds: no dict per row). ``conflict``: the unique key to
    upsert on; ``update``: the columns an existing row takes from the new one (none: the
    existing row is kept). Autoincrement keys are left to the database."""
    if not rows:
        return
    if columns is None:
        first = rows[0]
        assert isinstance(first, dict), "tuples need their columns"
        columns = [c.name for c in table.c if c.name in first]
    names = list(columns)
    tuples = _as_tuples(rows, names)
    key = ("insert", table.name, tuple(names), tuple(conflict), tuple(update),
           conn.dialect.name)
    writer = _WRITERS.get(key)
    if writer is None:
        quote = conn.dialect.identifier_preparer.quote  # "right" is a reserved word
        arrays = conn.dialect.name == "postgresql"
        sql = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) " + (
            f"SELECT * FROM {_unnest(conn, table, names)}" if arrays
            else f"VALUES ({_marks(conn, len(names))})")
        if conflict:
            target = ", ".join(quote(n) for n in conflict)
            if update:
                sets = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in update)
                sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
            else:
                sql += f" ON CONFLICT ({target}) DO NOTHING"
        writer = _WRITERS[key] = (_ArrayWriter(sql) if arrays else
                                  _Writer(sql, _converters(conn, table, names)))
    writer.run(conn, tuples)


def _as_tuples(rows: Sequence[dict] | Sequence[tuple], names: Sequence[str]) -> list[tuple]:
    """``rows`` as tuples of the values of ``names``: dicts are read in that order, tuples
    are taken to be in it already."""
    if not isinstance(rows[0], dict):
        return list(rows)  # type: ignore[arg-type]
    if len(names) == 1:
        return [(row[names[0]],) for row in rows]  # type: ignore[call-overload]
    get = itemgetter(*names)
    return [get(row) for row in rows]  # type: ignore[misc]


def update(conn: Connection, table: Table, rows: Sequence[dict] | Sequence[tuple], *,
           where: Sequence[str], columns: Sequence[str] | None = None) -> None:
    """UPDATE one row per dict (or tuple of ``columns``' values), found by the ``where``
    columns; the other columns are the ones set. Tuples end with the ``where`` columns."""
    if not rows:
        return
    where = tuple(where)
    if columns is None:
        first = rows[0]
        assert isinstance(first, dict), "tuples need their columns"
        columns = [*(n for n in first if n not in where), *where]
    elif tuple(columns[-len(where):]) != where:
        raise ValueError(f"update of {table.name}: the columns must end with {where}")
    sets = list(columns[:-len(where)])
    tuples = _as_tuples(rows, columns)
    key = ("update", table.name, tuple(sets), where, conn.dialect.name)
    writer = _WRITERS.get(key)
    if writer is None:
        quote = conn.dialect.identifier_preparer.quote
        names = [*sets, *where]
        t = quote(table.name)
        if conn.dialect.name == "postgresql":
            sql = (f"UPDATE {t} SET {', '.join(f'{quote(n)} = v.{quote(n)}' for n in sets)} "
                   f"FROM {_unnest(conn, table, names)} "
                   f"AS v({', '.join(quote(n) for n in names)}) "
                   f"WHERE {' AND '.join(f'{t}.{quote(n)} = v.{quote(n)}' for n in where)}")
            writer = _WRITERS[key] = _ArrayWriter(sql)
        else:
            mark = _mark(conn)
            sql = (f"UPDATE {t} SET {', '.join(f'{quote(n)} = {mark}' for n in sets)} "
                   f"WHERE {' AND '.join(f'{quote(n)} = {mark}' for n in where)}")
            writer = _WRITERS[key] = _Writer(sql, _converters(conn, table, names))
    writer.run(conn, tuples)
