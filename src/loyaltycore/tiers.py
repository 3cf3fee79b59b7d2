"""The group tier ladder: who qualifies for what, on upgrade and at review.

Pure functions over the policy and a member's qualification. Upgrades are immediate
(the highest tier whose upgrade thresholds are met); downgrades happen only at a review,
where a tier is kept if its retain thresholds are met and the soft landing limits how
many rungs one review can drop.
"""

from __future__ import annotations

from decimal import Decimal

from .members import Qualification
from .rulesets import GroupPolicy, TierSpec

LINES_ACTIVE = "lines_active"


def metric(qualification: Qualification, name: str) -> Decimal:
    if name == LINES_ACTIVE:
        return Decimal(len(qualification.lines_active))
    return qualification.credits.get(name, Decimal(0))


def meets(thresholds: dict[str, Decimal], qualification: Qualification) -> str | None:
    """The first metric whose threshold is reached (any one qualifies), or None."""
    for name, need in thresholds.items():
        if metric(qualification, name) >= need:
            return name
    return None


def upgrade_target(policy: GroupPolicy, current: str,
                   qualification: Qualification) -> tuple[TierSpec, str] | None:
    """The highest tier above ``current`` the member qualifies for, and the metric that did it."""
    ranks = {t.id: i for i, t in enumerate(policy.tiers)}
    here = ranks.get(current, 0)
    for rank in range(len(policy.tiers) - 1, here, -1):
        tier = policy.tiers[rank]
        why = meets(tier.upgrade, qualification)
        if why is not None:
            return tier, why
    return None


def review_target(policy: GroupPolicy, current: str, qualification: Qualification) -> str:
    """The tier a member holds after a review: kept if retained (or requalified), else
    dropped to the highest tier they retain, but never more than the soft landing allows."""
    ranks = {t.id: i for i, t in enumerate(policy.tiers)}
    here = ranks.get(current, 0)
    up = upgrade_target(policy, current, qualification)
    if up is not None:
        return up[0].id
    for rank in range(here, 0, -1):
        tier = policy.tiers[rank]
        keep = tier.retain if tier.retain is not None else tier.upgrade
        if meets(keep, qualification) is not None:
            break
    else:
        rank = 0
    floor = max(0, here - policy.review.soft_landing)
    return policy.tiers[max(rank, floor)].id
