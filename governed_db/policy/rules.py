"""The ``guardrails`` section: ordered rules with ``when`` conditions."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Collection
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from governed_db.identity import KINDS
from governed_db.policy.model import ACTIONS, Conditions, GlobSet, Rule, Threshold, TimeWindow
from governed_db.policy.schema import Field, Reader, parse_glob_list
from governed_db.sql import (
    ALTER_ACTIONS,
    COPY_ENDPOINTS,
    OBJECT_KINDS,
    OPERATIONS,
    STATEMENT_CLASSES,
)

__all__ = [
    "CONDITION_KEYS",
    "PERMISSIVE",
    "PLACEHOLDERS",
    "parse_conditions",
    "parse_rules",
    "parse_time_window",
]

#: Placeholders a rule's ``message`` and ``hint`` may use.
PLACEHOLDERS = frozenset(
    {
        "rule_id",
        "operation",
        "verb",
        "class",
        "table",
        "tables",
        "functions",
        "environment",
        "actor",
        "actor_kind",
        "estimated_rows",
        "statement_count",
        "effects",
        "settings",
        "objects",
        "alter_actions",
        "copy_endpoint",
    }
)
#: Actions that let a statement through before later rules see it: their set-valued
#: conditions must hold for every member (see ``Conditions``).
PERMISSIVE = frozenset({"allow", "observe"})
#: Every key a ``when`` mapping may hold (the masking section accepts only some).
CONDITION_KEYS = frozenset(
    {
        "environment",
        "environments",
        "actor",
        "actors",
        "actor_kind",
        "operation",
        "operations",
        "class",
        "classes",
        "tables",
        "tables_read",
        "tables_written",
        "functions",
        "has_where",
        "where_is_trivial",
        "has_limit",
        "opaque",
        "statement_count",
        "time",
        "estimated_rows",
        "locks_rows",
        "explain_analyze",
        "settings",
        "objects",
        "alter_actions",
        "copy_endpoint",
        "filters_on_masked",
        "probes_masked",
        "orders_by_masked",
    }
)
_RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAYS = {name: i for i, day in enumerate(_WEEK) for name in (day, day[:3])}
_HHMM = re.compile(r"([01]?\d|2[0-4]):([0-5]\d)")


def parse_rules(
    item: Field,
    environments: Collection[str],
    actor_groups: Collection[str],
    approval: Callable[[Field], Any] | None = None,
) -> tuple[Rule, ...]:
    """Every rule of ``guardrails``, in order; rule ids must be unique.

    ``approval`` parses a ``require_approval`` rule's ``approval`` block.
    """
    operations = OPERATIONS
    rules: list[Rule] = []
    first_line: dict[str, int | None] = {}
    for one in item.items():
        rule = _rule(one, environments, actor_groups, operations, approval)
        if rule.id in first_line:
            one.fail(f"duplicate rule id {rule.id!r} (first at line {first_line[rule.id]})")
        first_line[rule.id] = one.line
        rules.append(rule)
    return tuple(rules)


def _rule(
    item: Field,
    environments: Collection[str],
    actor_groups: Collection[str],
    operations: frozenset[str],
    approval: Callable[[Field], Any] | None = None,
) -> Rule:
    r = item.reader()
    id_field = r.require("id")
    rule_id = id_field.expect(str)
    if not _RULE_ID.fullmatch(rule_id):
        id_field.fail(f"bad rule id {rule_id!r}: use letters, digits, '-', '_', '.', ':'")
    action = r.require("action").choice(ACTIONS, "action")
    when_field = r.field("when")
    when = (
        Conditions()
        if when_field is None
        else _conditions(
            when_field.reader(), environments, actor_groups, operations, action in PERMISSIVE
        )
    )
    message = r.map("message", _template) or ""
    hint = r.map("hint", _template) or ""
    description = r.get("description", str, "")
    granted = r.field("approval")
    if granted is not None and (action != "require_approval" or approval is None):
        granted.fail("'approval' applies only to rules whose action is require_approval")
    approval_rule = approval(granted) if granted is not None and approval is not None else None
    r.finish()
    return Rule(rule_id, action, when, message, hint, description, item.line, approval_rule)


def _template(item: Field) -> str:
    text = item.expect(str).strip()
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        item.fail(f"bad template: {exc} (write {{{{ and }}}} for literal braces)")
    unknown = names - PLACEHOLDERS
    if unknown:
        item.fail(
            f"unknown placeholder {{{sorted(unknown)[0]}}}; "
            f"available: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}"
        )
    return text


def parse_conditions(
    r: Reader,
    environments: Collection[str],
    actor_groups: Collection[str],
    *,
    every: bool = False,
) -> Conditions:
    """A ``when`` mapping (keys in ``CONDITION_KEYS``) as ``Conditions``; unknown keys fail."""
    return _conditions(r, environments, actor_groups, OPERATIONS, every)


def _conditions(
    r: Reader,
    environments: Collection[str],
    actor_groups: Collection[str],
    operations: frozenset[str],
    every: bool,
) -> Conditions:
    def names(key: str, allowed: Collection[str] | None, what: str) -> frozenset[str] | None:
        found = r.field(key)
        if found is None:
            return None
        if allowed is None:
            return frozenset(found.strings())
        return found.choices(allowed, what)

    def one_of(
        singular: str, plural: str, allowed: Collection[str] | None, what: str
    ) -> frozenset[str] | None:
        a, b = names(singular, allowed, what), names(plural, allowed, what)
        if a is not None and b is not None:
            r.here().fail(f"use either {singular!r} or {plural!r}, not both")
        return a if a is not None else b

    def globs(key: str) -> GlobSet | None:
        return r.map(key, lambda f: GlobSet(parse_glob_list(f), qualified=True))

    def flag(key: str) -> bool | None:
        return r.map(key, lambda f: f.expect(bool))

    count = r.map("statement_count", _count) or (None, None)
    conditions = Conditions(
        environments=one_of("environment", "environments", environments, "environment"),
        actors=one_of("actor", "actors", actor_groups, "actor group"),
        actor_kinds=names("actor_kind", KINDS, "actor kind"),
        operations=one_of("operation", "operations", operations, "operation"),
        classes=one_of("class", "classes", STATEMENT_CLASSES, "statement class"),
        tables=globs("tables"),
        tables_read=globs("tables_read"),
        tables_written=globs("tables_written"),
        functions=globs("functions"),
        has_where=flag("has_where"),
        where_is_trivial=flag("where_is_trivial"),
        has_limit=flag("has_limit"),
        opaque=flag("opaque"),
        min_statements=count[0],
        max_statements=count[1],
        time=r.map("time", _time_window),
        estimated_rows=r.map("estimated_rows", _threshold),
        locks_rows=flag("locks_rows"),
        explain_analyze=flag("explain_analyze"),
        settings=r.map("settings", lambda f: GlobSet(parse_glob_list(f))),
        objects=names("objects", OBJECT_KINDS, "object kind"),
        alter_actions=names("alter_actions", ALTER_ACTIONS, "alter action"),
        copy_endpoint=names("copy_endpoint", COPY_ENDPOINTS, "copy endpoint"),
        filters_on_masked=flag("filters_on_masked"),
        probes_masked=flag("probes_masked"),
        orders_by_masked=flag("orders_by_masked"),
        every=every,
    )
    r.finish()
    return conditions


def _count(item: Field) -> tuple[int | None, int | None]:
    r = item.reader()
    low = r.map("min", _non_negative)
    high = r.map("max", _non_negative)
    r.finish()
    if low is None and high is None:
        item.fail("give 'min' and/or 'max'")
    if low is not None and high is not None and low > high:
        item.fail(f"min ({low}) is greater than max ({high})")
    return low, high


def _non_negative(item: Field) -> int:
    value = item.expect(int)
    if value < 0:
        item.fail(f"must be ≥ 0, got {value}")
    return value


def _threshold(item: Field) -> Threshold:
    r = item.reader()
    bounds = {k: r.map(k, _non_negative) for k in ("gt", "gte", "lt", "lte")}
    r.finish()
    if all(v is None for v in bounds.values()):
        item.fail("give at least one of gt, gte, lt, lte (e.g. {gt: 10000})")
    return Threshold(**bounds)


def parse_time_window(item: Field) -> TimeWindow:
    """A ``time`` mapping (days, hours, timezone, outside) as a ``TimeWindow``."""
    return _time_window(item)


def _time_window(item: Field) -> TimeWindow:
    r = item.reader()
    days = r.map("days", _days)
    hours = r.map("hours", _hours)
    tz_name = r.get("timezone", str, "UTC")
    tz = _zone(tz_name, r.field("timezone") or item)
    outside = r.get("outside", bool, False)
    r.finish()
    if days is None and hours is None:
        item.fail("give 'days' and/or 'hours' (e.g. hours: '09:00-18:00')")
    start, end = hours or (0, 24 * 60)
    return TimeWindow(days or frozenset(range(7)), start, end, tz, tz_name, outside)


def _days(item: Field) -> frozenset[int]:
    result: set[int] = set()
    for one in item.items():
        text = one.expect(str).strip().lower()
        first, sep, last = text.partition("-")
        last = last if sep else first
        if first not in _DAYS or last not in _DAYS:
            one.fail(f"bad day {text!r}; use mon..sun or a range such as 'mon-fri'")
        a, b = _DAYS[first], _DAYS[last]
        result.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return frozenset(result)


def _hours(item: Field) -> tuple[int, int]:
    text = item.expect(str).replace(" ", "")
    start, sep, end = text.partition("-")
    m1, m2 = _HHMM.fullmatch(start), _HHMM.fullmatch(end)
    if not sep or m1 is None or m2 is None:
        item.fail(f"bad time range {text!r}; write 'HH:MM-HH:MM', e.g. '09:00-18:00'")
    a = int(m1.group(1)) * 60 + int(m1.group(2))
    b = int(m2.group(1)) * 60 + int(m2.group(2))
    if a > 24 * 60 or b > 24 * 60 or a == b:
        item.fail(f"bad time range {text!r}: times must be 00:00..24:00 and differ")
    return a, b


def _zone(name: str, where: Field) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        where.fail(f"unknown timezone {name!r} (use an IANA name such as 'Europe/Paris')")
