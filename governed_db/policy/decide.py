"""``decide(policy, facts, context) -> Decision``: a pure function, plus a decision cache.

Per statement, rules are tried in order and the first whose conditions all hold
decides; no match means ``allow``. Over a multi-statement string the strictest
would-be action wins (block > require_approval > observe > allow), the first
such statement on ties. In ``observe`` mode a refusing decision's ``action``
becomes ``observe`` while ``would_be`` keeps what enforce mode would do.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from governed_db.policy.document import Policy
from governed_db.policy.model import ACTION_RANK, Context, Decision, Rule

if TYPE_CHECKING:
    from governed_db.sql.facts import Facts, StatementFacts

__all__ = ["DecisionCache", "decide", "decide_each"]

_REFUSING = frozenset({"block", "require_approval"})
_DEFAULT_REASON = {  # after "<OPERATION>" or "<OPERATION> on <table>"
    "block": " is not allowed in {environment}",
    "require_approval": " needs an approval in {environment}",
    "observe": " is allowed and recorded (observed)",
    "allow": " is allowed",
}
_DEFAULT_HINT = {
    "block": "Change the statement so that the rule no longer applies, or ask an operator.",
    "require_approval": "Ask an approver to grant this statement, then run it again.",
}


def decide(policy: Policy, facts: Facts, context: Context) -> Decision:
    """The decision for a whole query string (see the module docstring)."""
    each = decide_each(policy, facts, context)
    if not each:
        env = context.environment
        return Decision("allow", None, "empty statement", "", env, "allow", statement_index=-1)
    best = each[0]
    for d in each[1:]:
        if ACTION_RANK[d.would_be] > ACTION_RANK[best.would_be]:
            best = d
    cacheable = all(d.cacheable for d in each)
    timed = any(d.timed for d in each)
    if (cacheable, timed) != (best.cacheable, best.timed):
        best = replace(best, cacheable=cacheable, timed=timed)
    return best


def decide_each(policy: Policy, facts: Facts, context: Context) -> tuple[Decision, ...]:
    """One decision per statement of ``facts``, in order."""
    count = len(facts.statements)
    clock: list[datetime] = []
    result = []
    for index, s in enumerate(facts.statements):
        rule, timed, estimated = policy.first_match(s, count, context, clock)
        flags = {"cacheable": not estimated, "timed": timed, "statement_index": index}
        result.append(_decision(policy, rule, s, context, count, **flags))
    return tuple(result)


def _decision(
    policy: Policy,
    rule: Rule | None,
    s: StatementFacts,
    context: Context,
    count: int,
    **flags: Any,
) -> Decision:
    env = context.environment
    if rule is None:
        return Decision("allow", None, "no guardrail matched", "", env, "allow", **flags)
    values = _placeholders(rule, s, count, context)
    template = rule.message or (
        ("{operation} on {table}" if s.tables_read or s.tables_written else "{operation}")
        + _DEFAULT_REASON[rule.action]
    )
    reason = template.format_map(values).rstrip(". ")
    hint = (rule.hint or _DEFAULT_HINT.get(rule.action, "")).format_map(values)
    would_be = rule.action
    action = "observe" if policy.mode == "observe" and would_be in _REFUSING else would_be
    return Decision(action, rule.id, reason, hint, env, would_be, **flags)


def _placeholders(rule: Rule, s: StatementFacts, count: int, context: Context) -> dict[str, Any]:
    tables = sorted(s.tables_written) + sorted(s.tables_read - s.tables_written)
    identity = context.identity
    estimate = context.estimated_rows
    return {
        "rule_id": rule.id,
        "operation": s.operation.upper().replace("_", " "),
        "verb": s.operation.replace("_", " "),
        "class": s.statement_class,
        "table": tables[0] if tables else "(no table)",
        "tables": ", ".join(tables) if tables else "(no table)",
        "functions": ", ".join(sorted(s.functions)) if s.functions else "(none)",
        "environment": context.environment,
        "actor": identity.name if identity is not None else "(unknown actor)",
        "actor_kind": identity.kind if identity is not None else "(unknown)",
        "estimated_rows": "unknown" if estimate is None else f"{estimate:,}",
        "statement_count": count,
        "effects": ", ".join(sorted(s.effects or (s.operation,))),
        "settings": ", ".join(sorted(s.settings)) if s.settings else "(none)",
        "objects": ", ".join(sorted(s.objects)) if s.objects else "(none)",
        "alter_actions": ", ".join(sorted(s.alter_actions)) if s.alter_actions else "(none)",
        "copy_endpoint": s.copy_endpoint or "(none)",
    }


class DecisionCache:
    """Decisions by (query text, environment, identity, waived rules).

    The gate calls ``get`` before analyzing; on a miss it analyzes, decides and
    ``put``s. Decisions that depended on an EXPLAIN estimate are never stored;
    those that depended on the clock are kept until the current minute ends
    (and only when the context reads the real clock, ``now=None``). Bounded:
    the oldest entry goes first. Bind one cache to one policy.
    """

    __slots__ = ("_data", "maxsize", "policy")

    def __init__(self, policy: Policy, maxsize: int = 4096) -> None:
        self.policy = policy
        self.maxsize = maxsize
        self._data: dict[tuple[Any, ...], tuple[Decision, float]] = {}

    def get(self, text: str, context: Context) -> Decision | None:
        """The cached decision for ``text`` in ``context``, or None."""
        entry = self._data.get((text, context.environment, context.identity, context.waived))
        if entry is None:
            return None
        decision, expires = entry
        if expires and time.time() >= expires:
            return None
        return decision

    def put(self, text: str, context: Context, decision: Decision) -> None:
        """Remember ``decision`` if it may be reused (see the class docstring)."""
        if not decision.cacheable:
            return
        expires = 0.0
        if decision.timed:
            if context.now is not None:
                return
            expires = (time.time() // 60 + 1) * 60
        data = self._data
        if len(data) >= self.maxsize:
            with contextlib.suppress(StopIteration, RuntimeError):  # raced by another thread
                data.pop(next(iter(data)), None)
        data[(text, context.environment, context.identity, context.waived)] = (decision, expires)

    def decide(self, text: str, facts: Facts, context: Context) -> Decision:
        """``get``, else ``decide`` and ``put``."""
        found = self.get(text, context)
        if found is None:
            found = decide(self.policy, facts, context)
            self.put(text, context, found)
        return found

    def clear(self) -> None:
        """Forget every decision."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
