"""Finding plugins and calling them safely.

There is no global plugin manager: :func:`make_plugin_manager` builds one, loading the
``loyaltycore`` entry points unless told not to (argument, or ``LOYALTY_PLUGINS``), so
tests and embedders decide exactly which plugins run. :class:`PluginHost` reads what the
plugins declare once and then guards every call to them: frozen inputs, a time budget,
exceptions contained, outputs validated again as effects, line isolation.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from pydantic import BaseModel, ConfigDict, ValidationError

from . import hookspecs
from .effects import CORE_ONLY_EFFECTS, EFFECT_ADAPTER, EFFECT_TYPES, TierChange
from .errors import ConfigurationError, PluginError
from .events import EventPayload

ENTRY_POINT_GROUP = "loyaltycore"
DEFAULT_TIME_BUDGET = 0.05  # seconds per hook call; a POS waits on this


class LineSpec(BaseModel):
    """A business line a plugin serves: its name and event types -> payload models."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    event_types: dict[str, type[EventPayload]]
    description: str = ""


def make_plugin_manager(plugins: Iterable[Any] = (), *,
                        load_entrypoints: bool | None = None) -> pluggy.PluginManager:
    """A fresh plugin manager with ``plugins`` registered.

    Entry points in the ``loyaltycore`` group are loaded when ``load_entrypoints`` is
    true; when it is None the environment decides: ``LOYALTY_PLUGINS`` unset loads all,
    ``LOYALTY_PLUGINS=none`` (or empty) loads none, ``LOYALTY_PLUGINS=retail,hotel`` loads
    only those entry-point names.
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    wanted = os.environ.get("LOYALTY_PLUGINS")
    if load_entrypoints is None:
        load_entrypoints = wanted is None or wanted.strip().lower() not in ("", "none")
    if load_entrypoints:
        names = None
        if wanted and wanted.strip().lower() not in ("", "none", "all"):
            names = {n.strip() for n in wanted.split(",") if n.strip()}
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if names is not None and ep.name not in names:
                continue
            if pm.get_plugin(ep.name) is not None:
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must be named
                raise ConfigurationError(f"cannot load plugin {ep.name!r} "
                                         f"({ep.value}): {exc}") from exc
    for plugin in plugins:
        pm.register(plugin, name=_plugin_name(plugin))
    return pm


def _plugin_name(plugin: Any) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__name__


@dataclass
class PluginInfo:
    """What one plugin declares: for ``loyalty plugins`` and for routing hook calls."""

    name: str
    version: str | None
    hooks: list[str]
    lines: list[str] = field(default_factory=list)


class PluginHost:
    """Reads the plugins' declarations once and makes every later call through a guard."""

    def __init__(self, pm: pluggy.PluginManager, *, time_budget: float = DEFAULT_TIME_BUDGET,
                 verify_determinism: bool = True):
        self.pm = pm
        self.time_budget = time_budget
        self.verify_determinism = verify_determinism
        self.lines: dict[str, LineSpec] = {}
        self.line_owner: dict[str, str] = {}
        self.functions: dict[str, Callable[..., Any]] = {}
        self.function_owner: dict[str, str] = {}
        self.ruleset_paths: list[tuple[str, Path]] = []
        self._decide: dict[str, list[tuple[str, Callable[..., Any]]]] = {}
        self._tier: list[tuple[str, frozenset[str], Callable[..., Any]]] = []
        self._collect()

    def _collect(self) -> None:
        for impl in self.pm.hook.loyalty_lines.get_hookimpls():
            owner = impl.plugin_name
            for spec in self._call_setup(owner, impl.function) or []:
                if not isinstance(spec, LineSpec):
                    raise ConfigurationError(f"plugin {owner}: loyalty_lines must return "
                                             f"LineSpec objects, got {type(spec).__name__}")
                if spec.name in self.lines:
                    raise ConfigurationError(
                        f"line {spec.name!r} is declared by both {self.line_owner[spec.name]} "
                        f"and {owner}; one line has one plugin")
                for etype, model in spec.event_types.items():
                    if not (isinstance(model, type) and issubclass(model, EventPayload)):
                        raise ConfigurationError(f"plugin {owner}: event type {etype!r} of line "
                                                 f"{spec.name!r} needs an EventPayload model")
                self.lines[spec.name] = spec
                self.line_owner[spec.name] = owner
        for impl in self.pm.hook.loyalty_functions.get_hookimpls():
            owner = impl.plugin_name
            for name, fn in (self._call_setup(owner, impl.function) or {}).items():
                if not (name.isidentifier() and not name.startswith("_") and callable(fn)):
                    raise ConfigurationError(f"plugin {owner}: function {name!r} must be a "
                                             "callable with a plain identifier as name")
                if name in self.functions:
                    raise ConfigurationError(f"function {name!r} is registered by both "
                                             f"{self.function_owner[name]} and {owner}")
                self.functions[name] = fn
                self.function_owner[name] = owner
        for impl in self.pm.hook.loyalty_rulesets.get_hookimpls():
            for path in self._call_setup(impl.plugin_name, impl.function) or []:
                self.ruleset_paths.append((impl.plugin_name, Path(path)))
        owned: dict[str, set[str]] = {}
        for line, owner in self.line_owner.items():
            owned.setdefault(owner, set()).add(line)
        for impl in self.pm.hook.loyalty_decide.get_hookimpls():
            for line in owned.get(impl.plugin_name, ()):
                self._decide.setdefault(line, []).append((impl.plugin_name, _taking(impl)))
        for impl in self.pm.hook.loyalty_tier_changed.get_hookimpls():
            lines = frozenset(owned.get(impl.plugin_name, ()))
            self._tier.append((impl.plugin_name, lines, _taking(impl)))

    @staticmethod
    def _call_setup(owner: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001
            raise ConfigurationError(f"plugin {owner} failed while starting: {exc}") from exc

    def event_types(self) -> dict[str, dict[str, type[EventPayload]]]:
        return {name: dict(spec.event_types) for name, spec in self.lines.items()}

    def has_decide_hooks(self, line: str) -> bool:
        return line in self._decide

    def info(self) -> list[PluginInfo]:
        """Installed plugins, their versions, the hooks each implements and its lines."""
        dists = _distributions_by_entry_point()
        out = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda p: p[0]):
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            lines = sorted(line for line, owner in self.line_owner.items() if owner == name)
            out.append(PluginInfo(name=name, version=dists.get(name), hooks=hooks, lines=lines))
        return out

    # --- guarded calls ------------------------------------------------------------------

    def decide(self, event: Any, member: Any, policy: Any) -> list[Any]:
        """Effects the line's plugins propose for ``event`` (raises PluginError on a fault)."""
        effects: list[Any] = []
        for owner, fn in self._decide.get(event.line, ()):
            produced = self._guarded(owner, "loyalty_decide", fn,
                                     lambda fn=fn: fn(event=event, member=member.model_copy(
                                         deep=True), policy=policy))
            effects.extend(self._checked(owner, produced, {event.line}))
        return effects

    def tier_changed(self, member: Any, change: TierChange, event: Any,
                     policy: Any) -> list[Any]:
        effects: list[Any] = []
        for owner, lines, fn in self._tier:
            produced = self._guarded(owner, "loyalty_tier_changed", fn,
                                     lambda fn=fn: fn(member=member.model_copy(deep=True),
                                                      change=change, event=event,
                                                      policy=policy))
            effects.extend(self._checked(owner, produced, lines))
        return effects

    def _guarded(self, owner: str, hook: str, fn: Callable[..., Any],
                 call: Callable[[], Any]) -> list[Any]:
        first = self._timed(owner, hook, call)
        if self.verify_determinism:
            second = self._timed(owner, hook, call)
            if _dump(first) != _dump(second):
                raise PluginError(owner, f"{hook} is not deterministic: two calls with the "
                                         "same input returned different effects")
        return first

    def _timed(self, owner: str, hook: str, call: Callable[[], Any]) -> list[Any]:
        started = time.perf_counter()
        try:
            with _budget(self.time_budget, owner, hook):
                result = call()
        except PluginError:
            raise
        except Exception as exc:  # noqa: BLE001 - contained: the event is rejected, not the run
            raise PluginError(owner, f"{hook} raised {type(exc).__name__}: {exc}") from exc
        elapsed = time.perf_counter() - started
        if elapsed > self.time_budget:
            raise PluginError(owner, f"{hook} took {elapsed * 1000:.1f} ms; the budget is "
                                     f"{self.time_budget * 1000:.0f} ms")
        if result is None:
            return []
        if not isinstance(result, list | tuple):
            raise PluginError(owner, f"{hook} must return a list of effects, "
                                     f"got {type(result).__name__}")
        return list(result)

    def _checked(self, owner: str, produced: list[Any], lines: set[str] | frozenset[str]
                 ) -> list[Any]:
        effects = []
        for item in produced:
            raw = item.model_dump() if isinstance(item, BaseModel) else item
            if not isinstance(raw, Mapping):
                raise PluginError(owner, f"returned {type(item).__name__}, not an effect")
            try:
                effect = EFFECT_ADAPTER.validate_python(dict(raw))
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in err["loc"])
                raise PluginError(owner, f"returned an invalid effect ({where}: "
                                         f"{err['msg']})") from None
            if not isinstance(effect, EFFECT_TYPES) or isinstance(effect, TierChange):
                raise PluginError(owner, "plugins cannot move tiers; the group ladder does")
            if isinstance(effect, CORE_ONLY_EFFECTS):
                raise PluginError(owner, "plugins cannot spend, hold or give back a "
                                         "member's points; only the member's own redeem, "
                                         "reserve_points, capture_reservation, "
                                         "release_reservation and cancel_redemption "
                                         "events do")
            if effect.line not in lines:
                raise PluginError(owner, f"line isolation: emitted a {effect.kind} effect for "
                                         f"line {effect.line!r}; it may only emit for "
                                         f"{sorted(lines) or 'no line'}")
            effects.append(effect.model_copy(update={"source": f"plugin:{owner}"}))
        return effects


def _taking(impl: Any) -> Callable[..., Any]:
    """Call a hook implementation with only the arguments it declares, as pluggy does."""
    names = set(impl.argnames)
    fn = impl.function

    def call(**kwargs: Any) -> Any:
        return fn(**{k: v for k, v in kwargs.items() if k in names})

    return call


def _dump(effects: list[Any]) -> list[Any]:
    return [e.model_dump() if isinstance(e, BaseModel) else e for e in effects]


class _budget:
    """Interrupt a hook that overruns its budget (main thread; elsewhere measured after)."""

    def __init__(self, seconds: float, owner: str, hook: str):
        self.seconds = seconds
        self.owner = owner
        self.hook = hook
        self.armed = False

    def __enter__(self):
        if self.seconds > 0 and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGALRM, self._alarm)
            # Grace over the budget: the alarm only stops runaways; overruns are measured.
            signal.setitimer(signal.ITIMER_REAL, self.seconds * 4)
            self.armed = True
        return self

    def _alarm(self, signum, frame):
        raise PluginError(self.owner, f"{self.hook} overran its time budget of "
                                      f"{self.seconds * 1000:.0f} ms and was stopped")

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def _distributions_by_entry_point() -> dict[str, str]:
    out = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None:
            out[ep.name] = f"{ep.dist.name} {ep.dist.version}"
    return out
