"""The hooks a business-line plugin implements (pluggy, project name ``loyaltycore``).

A plugin is a module or object with functions decorated ``@hookimpl`` and named after
the specs below. It is found through the ``loyaltycore`` entry-point group, or
registered directly with :func:`loyaltycore.plugins.make_plugin_manager`. Plugins never
write: they describe their line and return effects; the core checks and applies them.
Each hook's documentation, with an example, is in docs/plugin-hooks.md.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("loyaltycore")
hookimpl = pluggy.HookimplMarker("loyaltycore")


@hookspec
def loyalty_lines():
    """Declare the business line(s) this plugin serves.

    Called once when the engine starts. Return a list of :class:`loyaltycore.LineSpec`,
    each naming a line and its event types with their payload models (subclasses of
    :class:`loyaltycore.EventPayload`). A plugin may only emit effects for the lines it
    declares here (line isolation); two plugins cannot declare the same line.
    """


@hookspec
def loyalty_functions():
    """Offer pure functions to rule expressions.

    Called once when rules are compiled. Return ``{name: callable}``. Each function must
    be pure (no I/O, no clock, no randomness: decisions must be reproducible) and should
    take and return numbers (int or Decimal), strings, booleans, dates or tuples of them;
    anything else it returns is refused at evaluation. Names must not clash with the
    built-in functions or another plugin's.
    """


@hookspec
def loyalty_rulesets():
    """Ship rulesets with the plugin.

    Called once when the engine loads its rulesets. Return a list of paths (files or
    directories of ``.yaml`` files) holding this line's rulesets; they are loaded alongside
    the directory the engine was given. Rulesets in that directory win over a plugin's for
    the same line and version, so a group can override what a plugin ships.
    """


@hookspec
def loyalty_decide(event, member, policy):
    """Propose effects for an event of your line that a ruleset cannot express.

    Called for every event of a line this plugin declared, after the line's rules ran.
    ``event`` is the frozen event (``event.data`` is your payload model), ``member`` a
    frozen :class:`loyaltycore.MemberSnapshot` (a private copy), ``policy`` the group
    policy in force. Return a list of effects (``EarnPoints``, ``HoldPoints``,
    ``QualifyingCredit``, ``GrantRight`` ...) for your own line, or None. Effects are
    validated again, checked against the group invariants and rejected as a whole with the
    event if one breaks them. Raising, or running past the time budget, rejects the event
    with your plugin named; other events go on.
    """


@hookspec
def loyalty_tier_changed(member, change, event, policy):
    """React to a member moving on the group ladder.

    Called when a decision moves a member's tier (``change`` is a ``TierChange`` effect;
    ``event`` the event that caused it). Return effects for your own line (typically
    ``GrantRight`` of your line's rights, e.g. a welcome amenity on reaching the top tier)
    or None. The same guard and invariants apply as for ``loyalty_decide``.
    """
