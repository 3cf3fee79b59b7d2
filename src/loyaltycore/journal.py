"""The in-memory journal: every entry a :class:`~loyaltycore.memory.MemoryState` posted,
kept compact."""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Sequence
from datetime import datetime
from typing import overload

from .ledger import Entry, Move, Posting


class Journal(Sequence[Entry]):
    """The journal entries a :class:`MemoryState` posted, in that order (a read-only
    sequence of :class:`~loyaltycore.ledger.Entry`).

    Each entry is kept as one flat tuple: its own fields, the number of postings and of
    moves, then three values per posting and five per move. CPython stops tracking such a
    tuple at its first collection, where an entry with its postings and moves is ~6 objects
    that every full collection walks. Reading an entry builds an equal one.
    """

    __slots__ = ("_rows",)

    def __init__(self, entries: Iterable[Entry] = ()):
        self._rows: list[tuple] = []
        for e in entries:
            self.add(e)

    def add(self, e: Entry, seq: int | None = None) -> None:
        """Keep ``e`` (with ``seq`` as its sequence number, if given)."""
        row = [e.id, e.member, e.kind, e.at, e.event_id, e.corrects, e.memo,
               e.seq if seq is None else seq, len(e.postings), len(e.moves)]
        for p in e.postings:
            row += (p.account, p.member, p.points)
        for mv in e.moves:
            row += (mv.lot, mv.kind, mv.points, mv.issuer, mv.to_line)
        self._rows.append(tuple(row))

    def add_earn(self, entry_id: str, member: str, at: datetime, event_id: str,
                 postings: dict[tuple[str, str | None], int], seq: int) -> None:
        """Keep an earn entry given by its fields (what :meth:`add` keeps for
        ``Entry(entry_id, member, "earn", at, event_id, postings, seq=seq)``)."""
        row = [entry_id, member, "earn", at, event_id, None, "", seq, len(postings), 0]
        for (account, who), points in postings.items():
            row += (account, who, points)
        self._rows.append(tuple(row))

    def add_row(self, row: tuple) -> None:
        """Keep an entry already laid out as :meth:`add` lays it out."""
        self._rows.append(row)

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> Entry: ...

    @overload
    def __getitem__(self, i: slice) -> list[Entry]: ...

    def __getitem__(self, i: int | slice) -> Entry | list[Entry]:
        if isinstance(i, slice):
            return [_entry(row) for row in self._rows[i]]
        return _entry(self._rows[i])

    def __iter__(self) -> Iterator[Entry]:
        return map(_entry, self._rows)

    def of(self, members: Container[str]) -> Iterator[Entry]:
        """The entries of ``members``: posted for one of them or with a posting of one."""
        for row in self._rows:
            end = 10 + 3 * row[8]
            if row[1] in members or any(who in members for who in row[11:end:3]):
                yield _entry(row)


def _entry(row: tuple) -> Entry:
    end = 10 + 3 * row[8]
    postings = row[10:end]
    moves = row[end:]
    return Entry(row[0], row[1], row[2], row[3], row[4],
                 tuple(Posting(*postings[i:i + 3]) for i in range(0, len(postings), 3)),
                 tuple(Move(*moves[i:i + 5]) for i in range(0, len(moves), 5)),
                 row[5], row[6], row[7])
