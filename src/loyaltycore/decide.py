"""Deciding: one event and a member snapshot in, proposed effects with traces out.

This is the hot path. It runs the compiled rules of the event's ``(line, type)`` in a
fixed order (base, multiply, bonus, group cross-sell, qualifying credit, grants,
reversals), then the line plugin's ``loyalty_decide`` hook, then the tier ladder. It
reads only: what to write is returned as effects plus counter increments, and the
invariants (:mod:`loyaltycore.invariants`) judge it before anyone applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from .context import SOURCES, calendar_scope, member_scope, qualification_scope
from .effects import (
    EarnPoints,
    HoldPoints,
    QualifyingCredit,
    ReversePoints,
    TierChange,
    Trace,
    UseRight,
    maker,
    trusted,
)
from .errors import EvaluationError, PluginError
from .events import Event
from .members import MemberSnapshot, Qualification
from .periods import period_key
from .receipts import RuleMiss, Violation
from .redemption import CORE_EVENT_TYPES, core_effect
from .rights import grant_effect, quota_room, right_counters
from .rulebook import CompiledRule, GroupBook, LineBook, RuleBook, RulePlan, Step, TypeRules
from .rulesets import Cap, Pending
from .sandbox import as_evaluation_error, compile_program

_ROUNDING = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN,
             "ceiling": ROUND_CEILING}
_ZERO = Decimal(0)
_SOURCE_INDEX = {s: i for i, s in enumerate(SOURCES)}


class History(Protocol):
    """What deciding may read of the past beyond the snapshot: the facts of an earlier
    event of the same member (for refunds), as a mapping with ``points``, ``amount``,
    ``refunded``, ``reversed``, ``line``; None if unknown."""

    def original(self, member_id: str, event_id: str) -> Mapping[str, Any] | None: ...

    def redemption(self, member_id: str, event_id: str) -> Mapping[str, Any] | None:
        """An earlier accepted ``redeem`` event of the member: ``line``, ``points`` spent
        and ``restored`` (given back by cancellations so far); None if there is none. A
        captured reservation counts as a redemption under its capture event's id."""

    def reservation(self, member_id: str, event_id: str) -> Mapping[str, Any] | None:
        """The member's reservation made by ``reserve_points`` event ``event_id``:
        ``line``, ``points``, ``status`` (open, captured, released, expired), ``expires_at``
        and ``closed_at``; None if there is none."""


@dataclass(slots=True)
class Decision:
    """Everything deciding produced for one event; applied only if ``violations`` is empty."""

    event: Event
    member: MemberSnapshot
    group: GroupBook | None
    line_book: LineBook | None
    book: RuleBook | None = None
    effects: list[Any] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    misses: list[RuleMiss] = field(default_factory=list)
    local_date: date | None = None
    qualification_after: Qualification | None = None
    tier_after: str | None = None
    args: tuple[Any, ...] = ()

    @property
    def accepted(self) -> bool:
        return not self.violations


def to_points(value: Decimal | int, rounding: str) -> int:
    """Points from a Decimal amount under the group's rounding policy (never via float)."""
    if type(value) is int:
        return value
    if rounding == "floor" and value >= 0:
        return int(value)
    return int(value.to_integral_value(rounding=_ROUNDING[rounding]))


def decide(event: Event, member: MemberSnapshot, book: RuleBook, *, history: History,
           plugins: Any = None, explain: bool = False, is_new: bool = False,
           calendar: dict[str, Any] | None = None, group: GroupBook | None = None
           ) -> Decision:
    """Propose the effects of ``event`` for ``member`` (nothing is written).

    ``group`` (the policy in force) and ``calendar`` (the event's
    :func:`~loyaltycore.context.calendar_scope`) may be passed by a caller that already
    computed them to take the snapshot; they are computed here otherwise.
    """
    ev = event.__dict__  # envelope fields read once (a model's attributes cost more)
    at = ev["occurred_at"]
    line = ev["line"]
    etype = ev["type"]
    gb = group if group is not None else book.group_at(at)
    tier = member.__dict__["tier"]
    decision = Decision(event, member, gb, None, book, [], {}, [], [], None, None, tier)
    if gb is None:
        decision.violations.append(Violation(
            invariant="rules-in-force", message=f"no group policy is in force at {at.isoformat()}"))
        return decision
    policy = gb.policy
    pol = gb.policy_scope.get(line)
    if pol is None:
        decision.violations.append(Violation(
            invariant="caps", message=f"line {event.line!r} has no caps in group policy "
                                      f"{policy.version}; its events cannot be judged"))
        return decision
    if ev["amount"] is not None and ev["currency"] not in (None, policy.currency):
        decision.violations.append(Violation(
            invariant="currency", message=f"amount in {event.currency}, but the program runs "
                                          f"in {policy.currency}",
            numbers={"currency": event.currency, "group_currency": policy.currency}))
        return decision
    lb, plan = book.plan_at(gb, line, etype, at)
    decision.line_book = lb
    cal = calendar if calendar is not None else calendar_scope(event, gb.tz)
    local_date = cal["local_date"]
    decision.local_date = local_date
    credits = policy.qualification.credits
    args = (ev, ev["data"].__dict__, cal,
            member_scope(member, local_date, gb.tier_rank.get(tier, 0), is_new),
            qualification_scope(member, credits, line), {}, pol)
    decision.args = args
    fast = False
    added: dict[str, Decimal] | None = None
    rights = False
    if not explain:
        program = plan.program
        if program is None:
            program = plan.program = _program(plan, gb)
        try:
            added, rights = program(args, decision, lb)
            fast = True
        except Exception:  # noqa: BLE001 - the rule-by-rule path below names the rule
            decision.effects.clear()
            decision.counters.clear()
    try:
        if not fast:
            # Rule by rule, recording why rules did not fire: with --explain, or when a
            # rule could not be evaluated (this path finds which rule, in the order rules
            # run, and rejects the event naming it).
            runner = _RuleRunner(decision, gb, args, explain)
            runner.earn(plan.rules, plan.cross)
            runner.credits(plan.rules.credit)
            runner.grants(plan.rules.grant, lb)
            runner.reversals(plan.reverse, history)
        elif plan.reverse:
            _RuleRunner(decision, gb, args, False).reversals(plan.reverse, history)
    except _Rejected:
        return decision
    if not fast:
        added = None
        rights = plan.has_grants
    if etype == "use_right":
        rights = True
        decision.effects.append(trusted(UseRight, dict(
            line=event.line, rule=None, source="core", trace=trusted(Trace, dict(
                rule="use_right", version=None, file=None,
                detail=f"member uses {event.data.quantity} x {event.data.right}", values={})),
            kind="use_right", right=event.data.right, quantity=event.data.quantity)))
    elif etype in CORE_EVENT_TYPES:
        effect = core_effect(decision, history)
        if effect is None:
            return decision
        decision.effects.append(effect)
    if plugins is not None and plugins.has_decide_hooks(line):
        added = None  # a plugin's effects may hold credit too: _tiers sums them all
        rights = True
        try:
            decision.effects.extend(plugins.decide(event, member, policy))
        except PluginError as exc:
            decision.violations.append(Violation(invariant="plugin", message=str(exc),
                                                 rule=f"plugin:{exc.plugin}"))
            return decision
    if _tiers(decision, gb, book, plugins, added) or rights:
        right_counters(decision, gb, lb)
    return decision


# Positional trusted() builders, in each model's field order (see effects.maker).
_trace = maker(Trace)
_earn = maker(EarnPoints)
_hold = maker(HoldPoints)
_credit = maker(QualifyingCredit)
_period_keys: dict[tuple[str, date], str | None] = {}


def _period(per: str, day: date) -> str | None:
    """:func:`period_key`, remembered: a few hundred distinct days cover a whole stream."""
    try:
        return _period_keys[per, day]
    except KeyError:
        if len(_period_keys) > 8192:
            _period_keys.clear()
        key = _period_keys[per, day] = period_key(per, day)
        return key


def _fail(decision: Decision, rule: CompiledRule, exc: BaseException) -> None:
    err = exc if isinstance(exc, EvaluationError) else as_evaluation_error(exc, "")
    decision.violations.append(Violation(
        invariant="rule-evaluation", rule=rule.id,
        message=f"rule {rule.id} ({rule.file}) could not be evaluated: {err}",
        numbers={"reason": err.reason}))
    raise _Rejected


class _Fallback(Exception):
    """A fused ruleset program met a value it does not handle: decide rule by rule."""


def _program(plan: RulePlan, gb: GroupBook) -> Any:
    """Compile ``plan`` under ``gb`` into one function ``(args, decision, line book) ->
    (credit added by kind, granted anything?)``.

    It does what the rule-by-rule path does for rules that fire without explanations:
    the same arithmetic, caps, texts and effects, in the same order, with each rule's
    conditions and values spliced in from their checked trees
    (:func:`~loyaltycore.sandbox.compile_program`). Whatever it cannot handle (a failing
    expression, a value of the wrong type, a trace value missing) it raises, and the
    caller decides the event rule by rule instead, which reports it exactly as before.
    """
    policy = gb.policy
    slots: dict[str, Any] = {}
    constants: dict[str, Any] = {"c_rounding": policy.rounding,
                                 "c_ratetext": f" x base rate {policy.base_rate} = "}
    env: dict[str, Any] = {
        "k_rate": policy.base_rate, "k_to_points": to_points, "k_str": str, "k_int": int,
        "k_type": type, "k_isinstance": isinstance, "k_bool": bool, "k_num": (int, Decimal),
        "k_Decimal": Decimal, "k_zero": _ZERO, "k_bad": _Fallback, "k_capped": _capped,
        "k_trace": _trace, "k_earn": _earn, "k_hold": _hold, "k_credit": _credit,
        "k_days": _days, "k_grant": _grant_step}
    out = ["def run(args, d, lb):",
           f"    {', '.join(f'_s{i}' for i in range(len(SOURCES)))}, = args",
           "    append = d.effects.append",
           "    line = _s0['line']",
           "    added = {}",
           "    granted = False",
           "    base = 0",
           "    pending = None"]

    def values(k: int, step: Step) -> str:
        items = []
        for j, (name, i, key) in enumerate(step.rule.reads):
            constants[f"c_n{k}_{j}"], constants[f"c_key{k}_{j}"] = name, key
            items.append(f"c_n{k}_{j}: _s{i}[c_key{k}_{j}]")
        return "{" + ", ".join(items) + "}"

    def emit(k: int, step: Step, basis: str, hold: str) -> list[str]:
        code, pad = [], ""
        if step.cap is not None:
            env[f"k_cap{k}"] = step.cap
            code += [f"pts, note = k_capped(d, k_step{k}, k_cap{k}, pts)",
                     "if note:",
                     "    detail = detail + '; ' + note",
                     "if pts or not note:"]
            pad = "    "
        trace = f"k_trace(c_id{k}, c_ver{k}, c_file{k}, detail, {values(k, step)})"
        return code + [pad + line for line in (
            f"hold = {hold}",
            "if hold is None:",
            f"    append(k_earn(line, c_id{k}, c_src{k}, {trace}, 'earn', pts, '{basis}'))",
            "else:",
            "    days = hold.days",
            f"    append(k_hold(line, c_id{k}, c_src{k}, {trace}, 'hold', pts, '{basis}',",
            "                  None if days is None else _s0['occurred_at'] + k_days(days),",
            "                  hold.until))")]

    def body(k: int, step: Step) -> list[str]:
        rule = step.rule
        env[f"k_step{k}"] = step
        env[f"k_pend{k}"] = step.pending
        constants.update({f"c_id{k}": step.id, f"c_ver{k}": step.version,
                          f"c_file{k}": step.file, f"c_src{k}": step.source})
        if rule.value is not None:
            slots[f"x_value{k}"] = rule.value
        hold = f"k_pend{k}" if step.pending is not None else "pending"
        kind = step.kind
        if kind == "base":
            return ["spend = x_value{k}",
                    "if spend is None or k_isinstance(spend, k_bool) "
                    "or not k_isinstance(spend, k_num) or spend < 0:",
                    "    raise k_bad",
                    "base = pts = k_to_points(spend * k_rate, c_rounding)",
                    "detail = 'spend ' + k_str(spend) + c_ratetext + k_str(pts) + ' points'",
                    f"pending = k_pend{k}",
                    *emit(k, step, "base", "pending")]
        if kind == "multiply":
            env[f"k_extra{k}"] = rule.extra_factor
            constants[f"c_detail{k}"], constants[f"c_factor{k}"] = step.detail, step.factor_text
            return ["if base:",
                    *("    " + line for line in [
                        f"pts = k_to_points(base * k_extra{k}, c_rounding)",
                        f"detail = c_detail{k} + k_str(base) + c_factor{k} + k_str(pts)"
                        " + ' points'",
                        *emit(k, step, "multiply", hold)])]
        if kind == "bonus":
            if rule.fixed_points is not None:
                constants[f"c_fixed{k}"] = rule.fixed_points
                constants[f"c_bonus{k}"] = "bonus " + str(rule.fixed_points) + " points"
                head = [f"pts = c_fixed{k}", f"detail = c_bonus{k}"]
            else:
                head = [f"pts = x_value{k}",
                        "if k_isinstance(pts, k_Decimal) and pts == pts.to_integral_value():",
                        "    pts = k_int(pts)",
                        "if k_type(pts) is not k_int or pts < 0:",
                        "    raise k_bad",
                        "detail = 'bonus ' + k_str(pts) + ' points'"]
            return head + emit(k, step, "bonus", hold)
        if kind == "credit":
            constants[f"c_credit{k}"] = step.credit
            return [f"value = x_value{k}",
                    "if value is None or k_isinstance(value, k_bool) "
                    "or not k_isinstance(value, k_num):",
                    "    raise k_bad",
                    "if not value == 0:",
                    f"    trace = k_trace(c_id{k}, c_ver{k}, c_file{k}, "
                    f"c_credit{k} + ' +' + k_str(value), {values(k, step)})",
                    "    value = k_Decimal(value)",
                    f"    added[c_credit{k}] = (added[c_credit{k}] + value if c_credit{k} in added"
                    " else k_zero + value)",
                    f"    append(k_credit(line, c_id{k}, 'rules', trace, 'credit', c_credit{k},"
                    " value))"]
        return [f"if k_grant(d, k_step{k}, lb, args):", "    granted = True"]

    def block(k: int, cond: Any, keyword: str = "if") -> list[str]:
        lines = [line.replace("{k}", str(k)) for line in body(k, plan_steps[k])]
        if cond is None:
            return lines
        slots[f"x_when{k}"] = cond
        return [f"{keyword} x_when{k}:", *("    " + line for line in lines)]

    plan_steps = [step for _, step in plan.first + plan.all]
    k = 0
    for cond, _ in plan.first:  # an if/elif chain: only the first base rule that holds
        if cond is None:
            code = block(k, None)
            out += ["    " + line for line in (code if k == 0 else ["else:"]
                                               + ["    " + c for c in code])]
            k = len(plan.first)
            break
        out += ["    " + line for line in block(k, cond, "if" if k == 0 else "elif")]
        k += 1
    for cond, _ in plan.all:
        out += ["    " + line for line in block(k, cond)]
        k += 1
    out.append("    return added, granted")
    return compile_program("\n".join(out), "run", SOURCES, slots=slots, constants=constants,
                           env=env)


def _grant_step(d: Decision, step: Step, lb: LineBook | None, args: tuple) -> bool:
    """A grant rule whose condition held: the grant, if the right exists and its quota
    has room (True if granted)."""
    rd = lb.rights.get(step.rule.spec.right) if lb is not None else None
    if rd is None:
        return False
    room = quota_room(rd, d.member, d.counters, d.local_date, counter="grant")
    if room is not None and room < 1:
        return False
    d.effects.append(grant_effect(rd, d.event, step.id, step.version, step.file, "rules",
                                  step.values(args)))
    return True


def _days(n: int) -> timedelta:
    try:
        return _DELTAS[n]
    except KeyError:
        delta = _DELTAS[n] = timedelta(days=n)
        return delta


_DELTAS: dict[int, timedelta] = {}


def _capped(d: Decision, step: Step, cap: Cap, points: int) -> tuple[int, str]:
    """:meth:`_RuleRunner.capped` with the rule's counter keys prepared."""
    key = _period(cap.per, d.local_date)
    have = d.member.counters
    counters = d.counters
    note = ""
    if cap.times is not None and key is not None:
        fkey = step.fire_prefix + key
        fired = have.get(fkey, 0) + counters.get(fkey, 0)
        if fired >= cap.times:
            return 0, f"cap reached: fired {fired} of {cap.times} times per {cap.per}"
        counters[fkey] = counters.get(fkey, 0) + 1
    if cap.points is not None:
        used = 0
        if key is not None:
            ekey = step.earn_prefix + key
            used = have.get(ekey, 0) + counters.get(ekey, 0)
        room = max(0, cap.points - used)
        if points > room:
            note = f"capped from {points} to {room} ({cap.points} per {cap.per}, {used} used)"
            points = room
        if key is not None and points:
            counters[ekey] = counters.get(ekey, 0) + points
    return points, note


class _Rejected(Exception):
    """A rule failed to evaluate: the event is rejected with the rule named."""


class _RuleRunner:
    def __init__(self, decision: Decision, gb: GroupBook, args: tuple, explain: bool):
        self.d = decision
        self.gb = gb
        self.args = args
        self.explain = explain
        self.rounding = gb.policy.rounding
        self.counters = decision.counters
        self.member = decision.member
        self.local_date = decision.local_date

    def fail(self, rule: CompiledRule, exc: BaseException) -> None:
        err = exc if isinstance(exc, EvaluationError) else as_evaluation_error(exc, "")
        self.d.violations.append(Violation(
            invariant="rule-evaluation", rule=rule.id,
            message=f"rule {rule.id} ({rule.file}) could not be evaluated: {err}",
            numbers={"reason": err.reason}))
        raise _Rejected

    def fires(self, rule: CompiledRule) -> bool:
        if rule.when is None:
            return True
        try:
            hit = rule.when.fn(*self.args)
        except Exception as exc:  # noqa: BLE001
            self.fail(rule, exc)
        if not hit and self.explain:
            self.miss(rule, "condition is false: " + rule.spec.when)
        return bool(hit)

    def value(self, rule: CompiledRule) -> Any:
        try:
            return rule.value.fn(*self.args)  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001
            self.fail(rule, exc)

    def miss(self, rule: CompiledRule, reason: str) -> None:
        self.d.misses.append(trusted(RuleMiss, dict(
            rule=rule.id, version=rule.version, reason=reason, values=self.values(rule))))

    def values(self, rule: CompiledRule) -> dict[str, Any]:
        args = self.args
        return {name: args[i][key] for name, i, key in rule.reads if key in args[i]}

    def capped(self, rule: CompiledRule, points: int) -> tuple[int, str]:
        cap: Cap | None = rule.spec.cap
        if cap is None:
            return points, ""
        key = period_key(cap.per, self.local_date)
        note = ""
        if cap.times is not None and key is not None:
            fkey = f"fire:{rule.id}:{key}"
            fired = self.member.counters.get(fkey, 0) + self.counters.get(fkey, 0)
            if fired >= cap.times:
                return 0, f"cap reached: fired {fired} of {cap.times} times per {cap.per}"
            self.counters[fkey] = self.counters.get(fkey, 0) + 1
        if cap.points is not None:
            used = 0
            if key is not None:
                ekey = f"earn:{rule.id}:{key}"
                used = self.member.counters.get(ekey, 0) + self.counters.get(ekey, 0)
            room = max(0, cap.points - used)
            if points > room:
                note = f"capped from {points} to {room} ({cap.points} per {cap.per}, " \
                       f"{used} used)"
                points = room
            if key is not None and points:
                self.counters[ekey] = self.counters.get(ekey, 0) + points
        return points, note

    def emit_points(self, rule: CompiledRule, points: int, basis: str, detail: str,
                    pending: Pending | None, source: str) -> None:
        points, note = self.capped(rule, points)
        if note and not points:
            if self.explain:
                self.miss(rule, note)
            return
        if note:
            detail += f"; {note}"
        trace = trusted(Trace, dict(rule=rule.id, version=rule.version, file=rule.file,
                                      detail=detail, values=self.values(rule)))
        event = self.d.event
        if pending is None:
            effect = trusted(EarnPoints, dict(line=event.line, rule=rule.id, source=source,
                                                trace=trace, kind="earn", points=points,
                                                basis=basis))
        else:
            vests_at = (event.occurred_at + timedelta(days=pending.days)
                        if pending.days is not None else None)
            effect = trusted(HoldPoints, dict(line=event.line, rule=rule.id, source=source,
                                                trace=trace, kind="hold", points=points,
                                                basis=basis, vests_at=vests_at,
                                                vests_on=pending.until))
        self.d.effects.append(effect)

    def earn(self, rules: TypeRules, cross: TypeRules) -> None:
        base_points = 0
        pending: Pending | None = None
        rate = self.gb.policy.base_rate
        fired_base = None
        for rule in rules.base:
            if fired_base is not None:
                if self.explain:
                    self.miss(rule, f"shadowed: base rule {fired_base} already fired")
                continue
            if not self.fires(rule):
                continue
            spend = self.value(rule)
            if spend is None or isinstance(spend, bool) or not isinstance(spend, int | Decimal) \
                    or spend < 0:
                self.fail(rule, EvaluationError(f"spend must be a non-negative number, got "
                                                f"{spend!r}", reason="type"))
            fired_base = rule.id
            base_points = to_points(spend * rate, self.rounding)
            pending = rule.spec.pending
            self.emit_points(rule, base_points, "base",
                             f"spend {spend} x base rate {rate} = {base_points} points",
                             pending, "rules")
        for rule in rules.multiply:
            if not self.fires(rule):
                continue
            if not base_points:
                if self.explain:
                    self.miss(rule, "no base points to multiply")
                continue
            extra = to_points(base_points * rule.extra_factor, self.rounding)
            self.emit_points(rule, extra, "multiply",
                             f"x{rule.spec.factor}: base {base_points} x "
                             f"{rule.extra_factor} extra = {extra} points",
                             rule.spec.pending or pending, "rules")
        for group, source in ((rules.bonus, "rules"), (cross.bonus, "group")):
            for rule in group:
                if not self.fires(rule):
                    continue
                if rule.fixed_points is not None:
                    pts = rule.fixed_points
                else:
                    pts = self.value(rule)
                    if isinstance(pts, Decimal) and pts == pts.to_integral_value():
                        pts = int(pts)
                    if type(pts) is not int or pts < 0:
                        self.fail(rule, EvaluationError(
                            f"bonus points must be a whole number >= 0, got {pts!r}",
                            reason="type"))
                self.emit_points(rule, pts, "bonus", f"bonus {pts} points",
                                 rule.spec.pending or pending, source)

    def credits(self, rules: list[CompiledRule]) -> None:
        event = self.d.event
        for rule in rules:
            if not self.fires(rule):
                continue
            value = self.value(rule)
            if value is None or isinstance(value, bool) or not isinstance(value, int | Decimal):
                self.fail(rule, EvaluationError(f"credit value must be a number, got "
                                                f"{value!r}", reason="type"))
            if value == 0:
                continue
            self.d.effects.append(trusted(QualifyingCredit, dict(
                line=event.line, rule=rule.id, source="rules",
                trace=trusted(Trace, dict(rule=rule.id, version=rule.version, file=rule.file,
                                            detail=f"{rule.spec.credit} +{value}",
                                            values=self.values(rule))),
                kind="credit", credit=rule.spec.credit, value=Decimal(value))))

    def grants(self, rules: list[CompiledRule], lb: LineBook | None) -> None:
        for rule in rules:
            if not self.fires(rule):
                continue
            rd = lb.rights.get(rule.spec.right) if lb is not None else None
            if rd is None:
                continue
            room = quota_room(rd, self.member, self.counters, self.local_date,
                              counter="grant")
            if room is not None and room < 1:
                if self.explain:
                    self.miss(rule, f"quota reached for right {rd.right.id}")
                continue
            self.d.effects.append(grant_effect(rd, self.d.event, rule.id, rule.version,
                                               rule.file, "rules", self.values(rule)))

    def reversals(self, rules: list[CompiledRule], history: History) -> None:
        event = self.d.event
        for rule in rules:
            # The original event's facts are looked up first so that `when` may read
            # original.* (e.g. only claw back refunds of recent purchases).
            try:
                original_id = rule.original.fn(*self.args)  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001
                self.fail(rule, exc)
            facts = history.original(event.member, str(original_id)) \
                if original_id is not None else None
            orig = self.args[_SOURCE_INDEX["orig"]]
            orig.clear()
            if facts is not None:
                orig.update(facts)
            if not self.fires(rule):
                continue
            if facts is None:
                self.d.violations.append(Violation(
                    invariant="refund-bounds", rule=rule.id,
                    message=f"refers to event {original_id!r}, which this member never had "
                            "(or which is itself a refund)"))
                raise _Rejected
            refunded = self.value(rule)
            if isinstance(refunded, bool) or not isinstance(refunded, int | Decimal):
                self.fail(rule, EvaluationError(f"refunded must be an amount, got {refunded!r}",
                                                reason="type"))
            amount = facts["amount"] or Decimal(0)
            total_refunded = facts["refunded"] + refunded
            if refunded <= 0 or total_refunded > amount:
                self.d.violations.append(Violation(
                    invariant="refund-bounds", rule=rule.id,
                    message=f"refund of {refunded} takes refunds of {original_id} to "
                            f"{total_refunded}, more than its amount {amount}",
                    numbers={"refunded": str(refunded), "already": str(facts["refunded"]),
                             "amount": str(amount)}))
                raise _Rejected
            # Claw back the proportion of all refunds so far, minus what was already taken:
            # rounding never accumulates and the total never exceeds what was earned.
            due = to_points(Decimal(facts["points"]) * total_refunded / amount, "floor") \
                if amount else facts["points"]
            points = max(0, min(facts["points"], due) - facts["reversed"])
            self.d.effects.append(trusted(ReversePoints, dict(
                line=facts["line"], rule=rule.id, source="rules",
                trace=trusted(Trace, dict(
                    rule=rule.id, version=rule.version, file=rule.file,
                    detail=f"{original_id} earned {facts['points']} on {amount}; refunds now "
                           f"{total_refunded} -> claw back {points} "
                           f"({facts['reversed']} already)",
                    values=self.values(rule))),
                kind="reverse", points=points, reverses=str(original_id),
                refunded=refunded, reason=f"refund of {refunded}")))


def _tiers(decision: Decision, gb: GroupBook, book: RuleBook, plugins: Any,
           added: dict[str, Decimal] | None = None) -> bool:
    """Propose the upgrade the event's qualifying credit earns, if any (True if it did).

    ``added`` is the credit by kind when the caller already summed it; otherwise the
    effects are summed here."""
    member = decision.member
    if added is None:
        added = {}
        for e in decision.effects:
            if isinstance(e, QualifyingCredit):
                added[e.credit] = added.get(e.credit, Decimal(0)) + e.value
    q = member.qualification
    if not added:
        decision.qualification_after = q
        return False
    line = decision.event.line
    target = _upgrade(gb, member.tier, q, added, line)
    if target is None:
        return False
    credits = dict(q.credits)
    for k, v in added.items():
        credits[k] = credits.get(k, Decimal(0)) + v
    after = trusted(Qualification, dict(credits=credits, lines_active=q.lines_active | {line}))
    decision.qualification_after = after
    tier, why = target
    change = trusted(TierChange, dict(
        line="group", rule=f"tier:{tier.id}", source="tiers",
        trace=trusted(Trace, dict(
            rule=f"tier:{tier.id}", version=gb.version, file=gb.file,
            detail=f"{why} {_metric_text(after, why)} reaches the {tier.id} threshold "
                   f"{tier.upgrade[why]}", values={f"qualification.{why}": _metric_text(after, why)})),
        kind="tier_change", from_tier=member.tier, to_tier=tier.id, reason="upgrade"))
    decision.effects.append(change)
    decision.tier_after = tier.id
    event = decision.event
    for right_id in tier.on_upgrade:
        rd = gb.rights.get(right_id)
        if rd is None:
            for books in book.lines.values():
                for b in books:
                    rd = rd or b.rights.get(right_id)
        if rd is not None:
            decision.effects.append(grant_effect(rd, event, f"tier:{tier.id}", gb.version,
                                                 gb.file, "tiers", {}))
    for line, _books in book.lines.items():
        lb = book.line_at(line, event.occurred_at)
        if lb is None:
            continue
        for up in lb.ruleset.on_upgrade:
            if up.to == tier.id and up.right in lb.rights:
                decision.effects.append(grant_effect(lb.rights[up.right], event, up.id,
                                                     lb.version, lb.file, f"tiers:{line}", {}))
    if plugins is not None:
        try:
            decision.effects.extend(plugins.tier_changed(member, change, event, gb.policy))
        except PluginError as exc:
            decision.violations.append(Violation(invariant="plugin", message=str(exc),
                                                 rule=f"plugin:{exc.plugin}"))
    return True


def _upgrade(gb: GroupBook, current: str, q: Qualification, added: dict[str, Decimal],
             line: str) -> tuple[Any, str] | None:
    """The highest tier above ``current`` whose threshold the updated qualification meets.

    Same answer as :func:`tiers.upgrade_target` on the updated qualification, without
    building it: most events upgrade nobody, and this runs on every event with credit.
    """
    here = gb.tier_rank.get(current, 0)
    credits = q.credits
    floor = gb.upgrade_floor(here)
    for name, need in floor:
        # The lowest threshold on ``name`` of any tier above: reaching none of them means
        # no upgrade, which is the answer for almost every event.
        if name == "lines_active":
            have = len(q.lines_active) + (line not in q.lines_active)
        else:
            have = credits.get(name, 0) + added.get(name, 0)
        if have >= need:
            break
    else:
        return None
    tiers = gb.policy.tiers
    for rank in range(len(tiers) - 1, here, -1):
        tier = tiers[rank]
        for name, need in tier.upgrade.items():
            if name == "lines_active":
                have = len(q.lines_active) + (line not in q.lines_active)
            else:
                have = credits.get(name, 0) + added.get(name, 0)
            if have >= need:
                return tier, name
    return None


def _metric_text(q: Qualification, name: str) -> str:
    if name == "lines_active":
        return str(len(q.lines_active))
    return str(q.credits.get(name, Decimal(0)))
