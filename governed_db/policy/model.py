"""The frozen values a policy is made of: globs, conditions, rules, limits, decisions."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from governed_db.errors import ApprovalRequired, PolicyViolation

if TYPE_CHECKING:
    from governed_db.identity import Identity
    from governed_db.sql.facts import Facts, StatementFacts

__all__ = [
    "ACTIONS",
    "ACTION_RANK",
    "MODES",
    "Conditions",
    "Context",
    "Decision",
    "GlobSet",
    "Limits",
    "Rule",
    "Threshold",
    "TimeWindow",
    "violation",
]

#: Rule actions, least to most strict: the strictest over all statements wins.
ACTIONS: tuple[str, ...] = ("allow", "observe", "require_approval", "block")
ACTION_RANK: dict[str, int] = {a: i for i, a in enumerate(ACTIONS)}
#: ``enforce`` blocks; ``observe`` computes and records but never blocks.
MODES = frozenset({"enforce", "observe"})


class GlobSet:
    """Shell-style patterns (``*``, ``?``, ``[abc]``), matched case-insensitively.

    With ``qualified=True`` a pattern without a dot also matches the last part of
    a dotted name: ``orders`` matches ``public.orders`` and ``sales.orders``.
    """

    __slots__ = ("_regex", "patterns")

    def __init__(self, patterns: Iterable[str], *, qualified: bool = False) -> None:
        self.patterns = tuple(patterns)
        parts = []
        for p in self.patterns:
            body = fnmatch.translate(p)
            parts.append(f"(?:.*\\.)?{body}" if qualified and "." not in p else body)
        self._regex = re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)

    def matches(self, value: str) -> bool:
        """True if ``value`` matches any pattern."""
        return self._regex.match(value) is not None

    def matches_any(self, values: Iterable[str]) -> bool:
        """True if any of ``values`` matches any pattern."""
        return any(self._regex.match(v) is not None for v in values)

    def __repr__(self) -> str:
        return f"GlobSet({list(self.patterns)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GlobSet) and self.patterns == other.patterns

    def __hash__(self) -> int:
        return hash(self.patterns)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Days of the week (0 = Monday) and a minute range, in a timezone.

    ``start > end`` spans midnight (``22:00-06:00``); ``outside`` inverts the window.
    """

    days: frozenset[int] = frozenset(range(7))
    start: int = 0  # minutes after midnight, inclusive
    end: int = 24 * 60  # exclusive
    tz: tzinfo = UTC
    tz_name: str = "UTC"
    outside: bool = False

    def describe(self) -> str:
        """``mon-fri 09:00-18:00 Europe/Paris`` (``outside`` prefixed with "not")."""
        names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        days = ",".join(names[d] for d in sorted(self.days)) if len(self.days) < 7 else "any day"
        hours = f"{self.start // 60:02}:{self.start % 60:02}-{self.end // 60:02}:{self.end % 60:02}"
        return f"{'not ' if self.outside else ''}{days} {hours} {self.tz_name}"

    def contains(self, now: datetime) -> bool:
        """Whether ``now`` (naive = UTC) satisfies the condition."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        local = now.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        weekday = local.weekday()
        if self.start <= self.end:
            inside = weekday in self.days and self.start <= minute < self.end
        elif minute >= self.start:  # before midnight: the window opened today
            inside = weekday in self.days
        else:  # after midnight: the window opened yesterday
            inside = minute < self.end and (weekday - 1) % 7 in self.days
        return inside != self.outside


@dataclass(frozen=True, slots=True)
class Threshold:
    """``gt``/``gte``/``lt``/``lte`` bounds, all of which must hold."""

    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None

    def describe(self) -> str:
        """``>10000`` and the like."""
        ops = ((">", self.gt), (">=", self.gte), ("<", self.lt), ("<=", self.lte))
        return " ".join(f"{op}{n}" for op, n in ops if n is not None)

    def matches(self, value: int | None) -> bool:
        """False when ``value`` is unknown (None)."""
        if value is None:
            return False
        return (
            (self.gt is None or value > self.gt)
            and (self.gte is None or value >= self.gte)
            and (self.lt is None or value < self.lt)
            and (self.lte is None or value <= self.lte)
        )


@dataclass(frozen=True, slots=True)
class Conditions:
    """A rule's ``when``: every given condition must hold (None = any).

    Conditions over a statement's sets (operations: its ``effects``; tables,
    functions, settings, objects, alter_actions, copy_endpoint) hold when ANY
    member matches.
    With ``every`` (set for allow and observe rules, which let a statement
    through before later rules see it) they hold only when the statement has
    such members and ALL of them match: ``allow`` on ``operation: insert`` does
    not let the update of an upsert through, nor ``tables_written: scratch.*``
    a statement that also writes elsewhere.
    """

    environments: frozenset[str] | None = None
    actors: frozenset[str] | None = None
    actor_kinds: frozenset[str] | None = None
    operations: frozenset[str] | None = None
    classes: frozenset[str] | None = None
    tables: GlobSet | None = None
    tables_read: GlobSet | None = None
    tables_written: GlobSet | None = None
    functions: GlobSet | None = None
    has_where: bool | None = None
    where_is_trivial: bool | None = None
    has_limit: bool | None = None
    opaque: bool | None = None
    min_statements: int | None = None
    max_statements: int | None = None
    time: TimeWindow | None = None
    estimated_rows: Threshold | None = None
    locks_rows: bool | None = None
    explain_analyze: bool | None = None
    settings: GlobSet | None = None
    objects: frozenset[str] | None = None
    alter_actions: frozenset[str] | None = None
    copy_endpoint: frozenset[str] | None = None
    #: probing conditions (``policy.masking_probes``), judged with the masking rules
    filters_on_masked: bool | None = None
    probes_masked: bool | None = None
    orders_by_masked: bool | None = None
    every: bool = False

    @property
    def probing(self) -> bool:
        """True if a probing condition is given (judged in ``Policy.first_match``)."""
        return not (
            self.filters_on_masked is None
            and self.probes_masked is None
            and self.orders_by_masked is None
        )

    @property
    def dynamic(self) -> bool:
        """True if the outcome depends on the clock or on an EXPLAIN estimate."""
        return self.time is not None or self.estimated_rows is not None

    def describe(self) -> list[str]:
        """The conditions as short ``key=value`` strings (for ``policy explain``)."""
        labels = {"environments": "environment", "actors": "actor", "actor_kinds": "actor_kind"}
        labels |= {"operations": "operation", "classes": "class"}
        labels |= {"min_statements": "statements>=", "max_statements": "statements<="}
        parts: list[str] = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is None or name == "every":
                continue
            if isinstance(value, frozenset):
                text = ",".join(sorted(map(str, value)))
            elif isinstance(value, GlobSet):
                text = ",".join(value.patterns)
            elif isinstance(value, (TimeWindow, Threshold)):
                text = value.describe()
            else:
                text = str(value).lower() if isinstance(value, bool) else str(value)
            parts.append(f"{labels.get(name, name)}={text}")
        return parts

    def static_match(
        self,
        s: StatementFacts,
        count: int,
        environment: str,
        kind: str | None,
        groups: frozenset[str],
    ) -> bool:
        """Every condition but ``time`` and ``estimated_rows`` holds for statement ``s``."""
        if self.environments is not None and environment not in self.environments:
            return False
        if self.actor_kinds is not None and kind not in self.actor_kinds:
            return False
        if self.actors is not None and self.actors.isdisjoint(groups):
            return False
        if self.min_statements is not None and count < self.min_statements:
            return False
        if self.max_statements is not None and count > self.max_statements:
            return False
        every = self.every
        if self.operations is not None:
            effects = s.effects or frozenset((s.operation,))
            if every:
                if not effects <= self.operations:
                    return False
            elif self.operations.isdisjoint(effects):
                return False
        if self.classes is not None and s.statement_class not in self.classes:
            return False
        if self.has_where is not None and s.has_where != self.has_where:
            return False
        if self.where_is_trivial is not None and s.where_is_trivial != self.where_is_trivial:
            return False
        if self.has_limit is not None and s.has_limit != self.has_limit:
            return False
        if self.opaque is not None and s.opaque != self.opaque:
            return False
        if self.locks_rows is not None and bool(s.row_locks) != self.locks_rows:
            return False
        if self.explain_analyze is not None and s.explain_analyze != self.explain_analyze:
            return False
        if self.tables is not None and not _globs(
            self.tables, s.tables_written | s.tables_read, every
        ):
            return False
        if self.tables_read is not None and not _globs(self.tables_read, s.tables_read, every):
            return False
        if self.tables_written is not None and not _globs(
            self.tables_written, s.tables_written, every
        ):
            return False
        if self.functions is not None and not _globs(self.functions, s.functions, every):
            return False
        if self.settings is not None and not _settings(self.settings, s.settings, every):
            return False
        if self.objects is not None and not _names(self.objects, s.objects, every):
            return False
        if self.copy_endpoint is not None:
            endpoint = frozenset((s.copy_endpoint,)) if s.copy_endpoint else frozenset()
            if not _names(self.copy_endpoint, endpoint, every):
                return False
        return self.alter_actions is None or _names(self.alter_actions, s.alter_actions, every)


def _globs(globs: GlobSet, values: frozenset[str], every: bool) -> bool:
    if every:
        return bool(values) and all(globs.matches(v) for v in values)
    return globs.matches_any(values)


def _names(names: frozenset[str], values: frozenset[str], every: bool) -> bool:
    if every:
        return bool(values) and values <= names
    return not names.isdisjoint(values)


def _settings(globs: GlobSet, values: frozenset[str], every: bool) -> bool:
    """Like ``_globs``, where "*" (a name not known in advance) may be any setting: it
    matches every pattern in a refusing rule, only a pattern matching "*" in a permissive one.
    """
    if every:
        return bool(values) and all(globs.matches(v) for v in values)
    return "*" in values or globs.matches_any(values)


@dataclass(frozen=True, slots=True)
class Rule:
    """One guardrail: when ``when`` holds, take ``action``; ``line`` is where it was written."""

    id: str
    action: str
    when: Conditions = field(default_factory=Conditions)
    message: str = ""
    hint: str = ""
    description: str = ""
    line: int | None = None
    #: For ``require_approval``: how it is granted (an ``ApprovalRule``; None = defaults).
    approval: Any = None


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-environment limits; None means no limit. Timeouts are in seconds."""

    max_rows_affected: int | None = None
    statement_timeout: float | None = None
    lock_timeout: float | None = None

    @property
    def statement_timeout_ms(self) -> int | None:
        """``statement_timeout`` in milliseconds, as PostgreSQL's SET wants it."""
        return _ms(self.statement_timeout)

    @property
    def lock_timeout_ms(self) -> int | None:
        """``lock_timeout`` in milliseconds."""
        return _ms(self.lock_timeout)


@dataclass(frozen=True, slots=True)
class Context:
    """Who runs the statement, where and when.

    ``now`` None means the current time (read only when a time rule needs it);
    ``estimated_rows`` comes from EXPLAIN when ``policy.needs_estimate`` asked for it;
    ``waived`` names rules to skip (the ``check`` command's inline escape hatch).
    """

    environment: str
    identity: Identity | None = None
    now: datetime | None = None
    estimated_rows: int | None = None
    waived: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one query string.

    ``action`` is what the gate does; ``would_be`` what enforce mode would do (they
    differ only in observe mode, where block/require_approval become observe).
    ``cacheable`` is False when the outcome depended on an EXPLAIN estimate;
    ``timed`` is True when it depended on the clock (time windows have minute
    resolution, so it holds until the current minute ends).
    ``statement_index`` is the statement that decided it (-1 for an empty string).
    """

    action: str
    rule_id: str | None
    reason: str
    hint: str
    environment: str
    would_be: str
    cacheable: bool = True
    timed: bool = False
    statement_index: int = 0

    @property
    def refuses(self) -> bool:
        """True for block and require_approval: the statement must not run as is."""
        return self.action in ("block", "require_approval")

    def raise_for(self, statement: str, facts: Facts | None = None) -> None:
        """Raise ``PolicyViolation``/``ApprovalRequired`` if the decision refuses."""
        if self.refuses:
            raise violation(self, statement, facts)


def violation(decision: Decision, statement: str, facts: Facts | None = None) -> PolicyViolation:
    """The exception for a refusing decision: ``ApprovalRequired`` or ``PolicyViolation``.

    The message reads "<reason> (rule <id>). <hint>".
    """
    cls = ApprovalRequired if decision.action == "require_approval" else PolicyViolation
    return cls(
        decision.reason,
        rule_id=decision.rule_id or "policy",
        hint=decision.hint,
        statement=statement,
        facts=facts,
    )
