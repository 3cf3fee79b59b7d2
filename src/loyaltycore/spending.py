"""Points that leave a member's lots and come back: redemptions and their cancellations,
and holds at a till (reserve, then capture or release; a hold nobody settles lapses).

These are the steps of :class:`~loyaltycore.memory.MemoryState` that spend lots, kept
apart from earning, vesting and expiry: :class:`Spending` is a base of ``MemoryState`` and
uses its lots, journal and clock (``full_lots``, ``_take``, ``_post``, ``_repay_entry``,
``_advance``). A redemption or a hold takes lots soonest expiry first; whatever comes back
(a cancellation, a release, a lapse, the unspent rest of a capture) comes back as new lots
in the issuer's name with the original lots' dates, so a point never lives longer for
having been spent and given back, and settlement between lines stays exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from .effects import (
    CaptureReservation,
    RedeemPoints,
    ReleaseReservation,
    ReservePoints,
    RestorePoints,
)
from .events import Event
from .ledger import (
    AVAILABLE,
    RESERVED,
    Entry,
    Lot,
    Move,
    Posting,
    Reservation,
    Spent,
    earliest,
    redeemed,
)

if TYPE_CHECKING:
    from .memory import Facts, Member


class Spending:
    """Redemptions, cancellations and holds, applied to a member's lots and journal."""

    def _spend(self, m: Member, points: int, kind: str, line: str
               ) -> tuple[int, list[Move], tuple[Spent, ...]]:
        """Take ``points`` from the member's available lots, soonest expiry first, for a
        redemption or a hold at ``line``: (taken, moves, the pieces with their lots' dates)."""
        self.full_lots(m)
        lots = sorted((lot for lot in m.lots.values() if lot.status == AVAILABLE),
                      key=Lot.spend_order)
        dates = {lot.id: (lot.earned_at, lot.expires_at) for lot in lots}
        taken, moves, _ = self._take(m, lots, points, kind, line)
        m.available -= taken
        return taken, moves, tuple(Spent(mv.lot, mv.issuer, mv.points, *dates[mv.lot])
                                   for mv in moves)

    def _redeem(self, m: Member, e: RedeemPoints, event: Event, n: int, facts: Facts) -> None:
        taken, moves, pieces = self._spend(m, e.points, "redeem", e.line)
        facts.spent += pieces
        self._post(m, Entry(id=f"{m.id}|{event.id}|redeem{n}", member=m.id, kind="redeem",
                            at=event.occurred_at, event_id=event.id,
                            postings=(Posting(AVAILABLE, m.id, -taken),
                                      Posting(redeemed(e.line), None, taken)),
                            moves=tuple(moves), memo=e.reference))

    def _restore(self, m: Member, e: RestorePoints, event: Event, n: int) -> None:
        """Give back points of a redemption: the pieces it spent last come back first, each
        into a new lot of its issuer with the original lot's dates."""
        f = m.facts[e.redemption]
        skip = f.reversed
        f.reversed += e.points
        if m.changes is not None:
            m.changes.facts.add(e.redemption)
        at = event.occurred_at
        entry_id = f"{m.id}|{event.id}|restore{n}"
        moves, lots = self._lots_back(m, f.spent, skip, e.points, entry_id, event.id, at,
                                      "restore", e.line)
        m.available += e.points
        self._post(m, Entry(id=entry_id, member=m.id, kind="restore", at=at,
                            event_id=event.id,
                            postings=(Posting(redeemed(e.line), None, -e.points),
                                      Posting(AVAILABLE, m.id, e.points)),
                            moves=tuple(moves), memo=e.reason or f"cancels {e.redemption}"))
        self._keep_lots_back(m, lots, at, event.id)

    def _lots_back(self, m: Member, pieces: Sequence[Spent], skip: int, points: int,
                   entry_id: str, event_id: str | None, at: datetime, kind: str,
                   to_line: str) -> tuple[list[Move], list[Lot]]:
        """New lots for ``points`` of ``pieces`` (what a redemption or hold took), the last
        piece first, past the last ``skip`` points (given back before): each in its
        issuer's name with the original lot's dates, so nothing lives longer for having
        been spent and given back."""
        left = points
        moves, lots = [], []
        for i, piece in enumerate(reversed(pieces)):
            here = piece.points
            if skip:
                done = min(skip, here)
                skip -= done
                here -= done
            back = min(here, left)
            if not back:
                continue
            left -= back
            lot = Lot(id=f"{entry_id}.{i}", member=m.id, line=piece.issuer, points=back,
                      remaining=back, status=AVAILABLE, earned_at=piece.earned_at,
                      available_from=at, vests_on=None, expires_at=piece.expires_at,
                      source_event=event_id or entry_id, rule=None,
                      origin=f"{kind}:{piece.lot}", entry=entry_id)
            moves.append(Move(lot.id, kind, back, piece.issuer, to_line))
            lots.append(lot)
        return moves, lots

    def _keep_lots_back(self, m: Member, lots: list[Lot], at: datetime,
                        event_id: str | None) -> None:
        """Add the lots :meth:`_lots_back` made (after their entry is posted): they repay a
        refund debt first, and those whose date has passed expire now."""
        for lot in lots:
            m.lots[lot.id] = lot
            if m.changes is not None:
                m.changes.new_lots[lot.id] = lot
            m.next_due = earliest(m.next_due, lot.expires_at)
            self._repay_entry(m, lot, f"{lot.id}|repay", at, event_id)
        if m.next_due is not None and m.next_due <= at:
            self._advance(m, at)  # points whose date has passed expire now, as they would have

    # --- holds at a till (reservations) --------------------------------------------------

    def _settle(self, m: Member, e: ReservePoints | CaptureReservation | ReleaseReservation,
                event: Event, n: int, facts: Facts) -> None:
        if isinstance(e, ReservePoints):
            self._reserve(m, e, event, n)
            return
        r = m.reservations[e.reservation]
        at = event.occurred_at
        if isinstance(e, ReleaseReservation):
            self._release(m, r, f"{m.id}|{event.id}|release{n}", at, event.id, "released",
                          e.reason or f"releases the hold {r.id}")
            return
        entry_id = f"{m.id}|{event.id}|capture{n}"
        left, moves, spent = e.points, [], []
        for piece in r.pieces:  # spent soonest expiry first, as a redemption would
            take = min(piece.points, left)
            if not take:
                break
            left -= take
            moves.append(Move(piece.lot, "capture", take, piece.issuer, e.line))
            spent.append(Spent(piece.lot, piece.issuer, take, piece.earned_at,
                               piece.expires_at))
        facts.spent = tuple(spent)  # a captured hold is cancelled like a redemption
        back_moves, lots = self._lots_back(m, r.pieces, 0, e.released, entry_id, event.id,
                                           at, "release", e.line)
        postings = [Posting(RESERVED, m.id, -r.points), Posting(redeemed(e.line), None,
                                                                e.points)]
        if e.released:
            postings.append(Posting(AVAILABLE, m.id, e.released))
        m.reserved -= r.points
        m.available += e.released
        self._post(m, Entry(id=entry_id, member=m.id, kind="capture", at=at, event_id=event.id,
                            postings=tuple(postings), moves=tuple(moves + back_moves),
                            memo=e.reference or f"captures the hold {r.id}"))
        self._close_reservation(m, r, "captured", at, event.id, e.points)
        self._keep_lots_back(m, lots, at, event.id)

    def _reserve(self, m: Member, e: ReservePoints, event: Event, n: int) -> None:
        taken, moves, pieces = self._spend(m, e.points, "reserve", e.line)
        r = Reservation(id=event.id, member=m.id, line=e.line, points=taken,
                        at=event.occurred_at, expires_at=e.expires_at, reference=e.reference,
                        pieces=pieces)
        m.reservations[r.id] = r
        m.reserved += taken
        m.next_due = earliest(m.next_due, r.expires_at)
        if m.changes is not None:
            m.changes.reservations[r.id] = r
        self._post(m, Entry(id=f"{m.id}|{event.id}|reserve{n}", member=m.id, kind="reserve",
                            at=event.occurred_at, event_id=event.id,
                            postings=(Posting(AVAILABLE, m.id, -taken),
                                      Posting(RESERVED, m.id, taken)),
                            moves=tuple(moves), memo=e.reference))

    def _release(self, m: Member, r: Reservation, entry_id: str, at: datetime,
                 event_id: str | None, status: str, memo: str) -> None:
        moves, lots = self._lots_back(m, r.pieces, 0, r.points, entry_id, event_id, at,
                                      "release", r.line)
        m.reserved -= r.points
        m.available += r.points
        self._post(m, Entry(id=entry_id, member=m.id, kind="release", at=at,
                            event_id=event_id,
                            postings=(Posting(RESERVED, m.id, -r.points),
                                      Posting(AVAILABLE, m.id, r.points)),
                            moves=tuple(moves), memo=memo))
        self._close_reservation(m, r, status, at, event_id, 0)
        self._keep_lots_back(m, lots, at, event_id)

    def _lapse(self, m: Member, r: Reservation) -> None:
        """A hold nobody captured or released in time gives its points back."""
        self._release(m, r, f"{m.id}|lapse|{r.id}", r.expires_at, None, "expired",
                      f"the hold {r.id} lapsed unsettled")

    def _close_reservation(self, m: Member, r: Reservation, status: str, at: datetime,
                           event_id: str | None, captured: int) -> None:
        r.status, r.closed_at, r.closed_by, r.captured = status, at, event_id, captured
        r.pieces = ()  # what it held is settled; a long dry-run need not keep it
        if m.changes is not None:
            m.changes.reservations[r.id] = r
