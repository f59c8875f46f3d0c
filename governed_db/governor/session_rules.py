"""Rules that hold whatever the policy says, and statements that depend on the session.

- ``hard_rule``: names psycopg uses for its own prepared statements
  (``_pg3_*``) cannot be prepared, executed or deallocated by the caller
  (``DEALLOCATE _pg3_0; PREPARE _pg3_0 AS DELETE ...`` would turn psycopg's next
  ``SELECT 1`` into a delete), and a statement may not change the settings the
  gate's reading of text depends on (``standard_conforming_strings``,
  ``client_encoding``, or a setting whose name is only known when it runs).
- ``with_prepared``: ``EXECUTE name`` is decided as what ``name`` was
  prepared as on this connection (every candidate, when a failed call left it
  uncertain); an unknown name stays opaque. ``PREPARE``/``DEALLOCATE`` change
  that map only once the call has run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from governed_db.policy import Decision
from governed_db.sql import Facts, StatementFacts

__all__ = [
    "PINNED_SETTINGS",
    "RESERVED_PREFIX",
    "Changes",
    "apply",
    "dynamic",
    "hard_rule",
    "with_prepared",
]

RESERVED_PREFIX = "_pg3_"
#: Settings a statement may not change ("*": a name known only when it runs).
PINNED_SETTINGS = frozenset({"standard_conforming_strings", "client_encoding", "*"})

#: Map changes a call makes, in order: (name, facts) prepares; (name, None) deallocates
#: ("*": every name).
Changes = tuple[tuple[str, tuple[StatementFacts, ...] | None], ...]


def dynamic(facts: Facts) -> bool:
    """Whether the statement's meaning depends on the connection's prepared statements."""
    return any(s.prepares or s.executes or s.deallocates for s in facts.statements)


def hard_rule(facts: Facts, environment: str) -> Decision | None:
    """A refusal no policy can lift, or None."""
    for s in facts.statements:
        for name in (s.prepares, s.executes, s.deallocates):
            if name and name.startswith(RESERVED_PREFIX):
                return Decision(
                    "block",
                    "reserved-prepared-name",
                    f"prepared statement names starting with {RESERVED_PREFIX!r} belong to "
                    f"psycopg (this statement names {name!r}); using one could change what a "
                    "later statement runs",
                    "Choose another name for your prepared statement.",
                    environment,
                    "block",
                )
        changed = s.settings & PINNED_SETTINGS
        if changed:
            shown = ", ".join(sorted("an unknown setting" if c == "*" else c for c in changed))
            return Decision(
                "block",
                "session-setting-change",
                f"the statement changes {shown}; governed_db reads statement text under "
                "standard_conforming_strings=on and client_encoding=UTF8 and may not lose that",
                "Leave these settings as they are; name the setting literally in set_config().",
                environment,
                "block",
            )
    return None


def with_prepared(facts: Facts, prepared: dict[str, Any]) -> tuple[Facts, Changes]:
    """``facts`` with every ``EXECUTE`` replaced by what it runs, and the map changes."""
    known = dict(prepared)
    statements: list[StatementFacts] = []
    changes: list[tuple[str, tuple[StatementFacts, ...] | None]] = []
    for s in facts.statements:
        if s.executes:
            targets = known.get(s.executes)
            if targets:
                statements.extend(replace(t, text=s.text) for t in targets)
                continue
        statements.append(s)
        if s.prepares:
            known[s.prepares] = (s,)
            changes.append((s.prepares, (s,)))
        if s.deallocates:
            if s.deallocates == "*":
                known.clear()
            else:
                known.pop(s.deallocates, None)
            changes.append((s.deallocates, None))
    return replace(facts, statements=tuple(statements)), tuple(changes)


def apply(prepared: dict[str, Any], changes: Changes, succeeded: bool) -> None:
    """Record what a call did to the connection's prepared statements.

    On success the changes hold as made. On failure it is unknown which ran,
    so a name keeps every candidate (the strictest decides) and nothing is
    forgotten.
    """
    for name, targets in changes:
        if targets is None:
            if not succeeded:
                continue
            if name == "*":
                prepared.clear()
            else:
                prepared.pop(name, None)
        elif succeeded:
            prepared[name] = targets
        else:
            prepared[name] = tuple(dict.fromkeys((*prepared.get(name, ()), *targets)))
