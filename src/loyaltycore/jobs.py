"""What a run of the time-driven jobs did (``Engine.run_jobs`` / ``loyalty jobs run``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .ledger import Entry
from .reviews import ReviewMove


@dataclass
class JobsReport:
    as_of: datetime
    members: int = 0  # members that had something due
    vested: int = 0  # points
    expired: int = 0  # points
    lapsed: int = 0  # vouchers
    released: int = 0  # points of holds at a till that lapsed unsettled
    moves: list[ReviewMove] = field(default_factory=list)

    def tally(self, entries: Iterable[Entry]) -> None:
        for e in entries:
            if e.kind == "vest":
                self.vested += sum(p.points for p in e.postings if p.account == "available")
            elif e.kind == "expire":
                self.expired += sum(p.points for p in e.postings if p.member is None)
            elif e.kind == "release" and e.event_id is None:  # lapsed, not released by a till
                self.released += sum(p.points for p in e.postings if p.account == "available")

    def as_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "members": self.members,
                "vested_points": self.vested, "expired_points": self.expired,
                "vouchers_lapsed": self.lapsed, "hold_points_released": self.released,
                "tier_moves": [{"member": m.member, "on": m.on.isoformat(), "from": m.from_tier,
                                "to": m.to_tier} for m in self.moves]}
