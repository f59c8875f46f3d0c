"""The ``masking`` section: ordered masking rules with ``when`` conditions, and settings.

Each rule becomes a :class:`governed_db.masking.MaskRule` (validated here, with the
file and line of the offending key) plus the ``when`` it needs: the guardrails'
environment, actor and time conditions, nothing about statements. The masking
room receives the rules already filtered for a connection's environment and
actor (``Policy.masking_for``). See docs/masking.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import phonenumbers

from governed_db.errors import PolicyError
from governed_db.masking import Globs, MaskRule, bind, expand, method
from governed_db.masking.rules import SCOPES
from governed_db.policy.model import Conditions
from governed_db.policy.rules import CONDITION_KEYS, parse_conditions
from governed_db.policy.schema import Field, Reader, parse_glob_list
from governed_db.policy.yaml_lines import LineDict, LineList

if TYPE_CHECKING:
    from governed_db.masking.keys import MaskingKey

__all__ = [
    "MASKING_CONDITIONS",
    "MaskingRule",
    "MaskingSection",
    "MaskingSelection",
    "parse_masking",
]

#: The ``when`` keys a masking rule may use: who fetches, where and when.
MASKING_CONDITIONS = frozenset(
    {"environment", "environments", "actor", "actors", "actor_kind", "time"}
)
_RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
_CATEGORY = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_DEFAULT_MAX_CHARS = 1_000_000
#: What happens to a result column whose lineage cannot be followed.
UNKNOWN_LINEAGE = ("detect", "refuse")
_DEFAULT_BUDGET_MS = 250


@dataclass(frozen=True, slots=True)
class MaskingRule:
    """One rule of the section: the masking room's rule and when it applies.

    ``source`` and ``line`` say where it was written (``<baseline>`` for the
    built-in rules a policy extends).
    """

    rule: MaskRule
    when: Conditions = field(default_factory=Conditions)
    description: str = ""
    source: str | None = None
    line: int | None = None

    @property
    def id(self) -> str:
        """The rule's id."""
        return self.rule.id

    def holds(self, environment: str, kind: str | None, groups: frozenset[str]) -> bool:
        """The environment and actor conditions hold (``time`` is judged separately)."""
        when = self.when
        if when.environments is not None and environment not in when.environments:
            return False
        if when.actor_kinds is not None and kind not in when.actor_kinds:
            return False
        return when.actors is None or not when.actors.isdisjoint(groups)


@dataclass(frozen=True, slots=True)
class MaskingSelection:
    """The rules that hold for one context, in order.

    ``key`` is their ids: within one policy, equal keys mean equal rules (and
    the same ``rules`` tuple object), so it can key a cache of compiled rules.
    ``timed`` is True when a rule's ``time`` window was consulted: the
    selection then holds only until ``expires`` (epoch seconds, the end of the
    minute it was computed for; windows have minute resolution). Otherwise it
    holds for as long as the environment and identity stay the same.
    """

    rules: tuple[MaskRule, ...]
    key: tuple[str, ...]
    timed: bool = False
    expires: float | None = None


@dataclass(frozen=True, slots=True)
class MaskingSection:
    """The validated ``masking`` section.

    ``rules`` is the effective ordered list: the policy's own rules, then (with
    ``baseline``) the built-in baseline's. ``enabled`` False is the explicit
    opt-out (``masking: {enabled: false}``): no rule applies. Detector settings
    are already applied to ``rules``: with ``detectors_enabled`` False the
    baseline's detector rules are left out; ``detectors_scope`` is the scope of
    every detector rule that does not give its own. ``unknown_lineage`` is what
    happens to a result column whose lineage cannot be followed: ``detect``
    (the detectors scan it, the audit says ``lineage: unknown``) or ``refuse``.
    """

    rules: tuple[MaskingRule, ...] = ()
    enabled: bool = True
    baseline: bool = True
    phone_regions: tuple[str, ...] = ("US",)
    max_chars: int = _DEFAULT_MAX_CHARS
    time_budget_ms: int = _DEFAULT_BUDGET_MS
    detectors_enabled: bool = True
    detectors_scope: str = "all"
    unknown_lineage: str = "detect"
    uses_time: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "uses_time", any(r.when.time for r in self.rules))

    @property
    def budget(self) -> float:
        """``time_budget_ms`` in seconds, as ``MaskRules(budget=...)`` takes it."""
        return self.time_budget_ms / 1000

    @property
    def rule_ids(self) -> frozenset[str]:
        """The ids of every rule (the baseline's included when it is extended)."""
        return frozenset(r.id for r in self.rules)

    def mask_rules_options(self) -> dict[str, Any]:
        """The keyword arguments for ``MaskRules(rules, key_source=..., **options)``."""
        return {
            "phone_regions": self.phone_regions,
            "max_chars": self.max_chars,
            "budget": self.budget,
        }

    def select(
        self, candidates: tuple[MaskingRule, ...], now: datetime
    ) -> tuple[tuple[MaskRule, ...], tuple[str, ...]]:
        """Of ``candidates`` (whose other conditions hold), those whose window holds at ``now``."""
        chosen = tuple(
            m.rule for m in candidates if m.when.time is None or m.when.time.contains(now)
        )
        return chosen, tuple(r.id for r in chosen)


def parse_masking(
    item: Field | None,
    environments: Collection[str],
    actor_groups: Collection[str],
    baseline: MaskingSection | None,
) -> MaskingSection:
    """The section (``item`` None: absent), extending ``baseline``'s rules unless told not to.

    ``baseline`` is None when parsing the baseline itself.
    """
    if item is None:
        return _combine(MaskingSection(), [], baseline)
    if isinstance(item.value, bool):
        item.fail(
            "expected a mapping; to turn masking off write 'masking: {enabled: false}' "
            "(explicit, and recorded with every session)"
        )
    r = item.reader()
    enabled = r.get("enabled", bool, True)
    use_baseline_field = r.field("baseline")
    if use_baseline_field is not None and baseline is None:
        use_baseline_field.fail("the built-in baseline cannot extend itself")
    use_baseline = True if use_baseline_field is None else use_baseline_field.expect(bool)
    regions = r.map("phone_regions", _phone_regions) or ("US",)
    max_chars, budget_ms = r.map("limits", _limits) or (_DEFAULT_MAX_CHARS, _DEFAULT_BUDGET_MS)
    detectors_on, default_scope = r.map("detectors", _detector_settings) or (True, "all")
    unknown_lineage = r.map("unknown_lineage", lambda f: f.choice(UNKNOWN_LINEAGE, "value"))
    rules_field = r.field("rules")
    reserved = frozenset() if baseline is None or not use_baseline else baseline.rule_ids
    rules: list[MaskingRule] = []
    if rules_field is not None:
        rules = _rules(
            rules_field, environments, actor_groups, default_scope, detectors_on, reserved
        )
    r.finish()
    if not enabled:
        if rules:
            assert rules_field is not None
            rules_field.fail("masking is off (enabled: false): remove the rules or enable it")
        return MaskingSection((), False, False, regions, max_chars, budget_ms, detectors_on)
    extend = use_baseline and baseline is not None
    section = MaskingSection(
        (), True, extend, regions, max_chars, budget_ms, detectors_on, default_scope,
        unknown_lineage or "detect",
    )  # fmt: skip
    return _combine(section, rules, baseline if extend else None)


def _combine(
    section: MaskingSection, rules: list[MaskingRule], baseline: MaskingSection | None
) -> MaskingSection:
    """``section`` with ``rules`` then the baseline's, detector settings applied."""
    combined = list(rules)
    if baseline is not None:
        scope = section.detectors_scope
        for m in baseline.rules:
            if m.rule.detectors and not section.detectors_enabled:
                continue
            if m.rule.detectors and m.rule.scope != scope:
                combined.append(
                    dataclasses.replace(m, rule=dataclasses.replace(m.rule, scope=scope))
                )
            else:
                combined.append(m)
    return dataclasses.replace(section, rules=tuple(combined))


def _rules(
    item: Field,
    environments: Collection[str],
    actor_groups: Collection[str],
    default_scope: str,
    detectors_on: bool,
    reserved: frozenset[str],
) -> list[MaskingRule]:
    if not isinstance(item.value, LineList):
        item.fail("expected a list of rules")
    rules: list[MaskingRule] = []
    first_line: dict[str, int | None] = {}
    for one in item.items():
        rule = _rule(one, environments, actor_groups, default_scope, detectors_on)
        if rule.id in first_line:
            one.fail(f"duplicate rule id {rule.id!r} (first at line {first_line[rule.id]})")
        if rule.id in reserved:
            one.fail(
                f"rule id {rule.id!r} is a baseline rule's id; choose another id (your rules "
                "already come before the baseline's), or set 'baseline: false'"
            )
        first_line[rule.id] = one.line
        rules.append(rule)
    return rules


def _rule(
    item: Field,
    environments: Collection[str],
    actor_groups: Collection[str],
    default_scope: str,
    detectors_on: bool,
) -> MaskingRule:
    r = item.reader()
    id_field = r.require("id")
    rule_id = id_field.expect(str)
    if not _RULE_ID.fullmatch(rule_id):
        id_field.fail(f"bad rule id {rule_id!r}: use letters, digits, '-', '_', '.', ':'")
    description = r.get("description", str, "")
    when = r.map("when", lambda f: _when(f, environments, actor_groups)) or Conditions()
    columns_field, names_field = r.field("columns"), r.field("column_names")
    detectors_field = r.field("detectors")
    columns = _column_globs(columns_field) if columns_field is not None else []
    names = _name_globs(names_field) if names_field is not None else []
    detectors = _detectors(detectors_field) if detectors_field is not None else []
    scope_field = r.field("scope")
    scope = scope_field.choice(SCOPES, "scope") if scope_field is not None else None
    action = r.map("action", lambda f: f.choice(("mask", "reveal"), "masking action")) or "mask"
    method_field, options_field = r.field("method"), r.field("options")
    category_field = r.field("category")
    r.finish()

    if columns_field is not None and names_field is not None:
        names_field.fail(
            "give either 'columns' (source table.column globs) or 'column_names' (name globs) "
            "in one rule, not both: write two rules"
        )
    if not (columns or names or detectors):
        item.fail("a masking rule needs one of 'columns', 'column_names' or 'detectors'")
    if detectors_field is not None and not detectors_on:
        detectors_field.fail(
            "detectors are turned off for this policy (masking.detectors.enabled: false)"
        )
    if scope_field is not None:
        if not detectors:
            scope_field.fail("'scope' says which columns detectors scan; this rule has none")
        if scope == "computed" and columns:
            scope_field.fail(
                "'columns' match columns that have a source table, and 'scope: computed' only "
                "columns that have none: the rule could never apply"
            )
    mask_fields = (method_field, options_field, category_field)
    if action == "reveal":
        for given in mask_fields:
            if given is not None:
                name = given.key.rsplit(".", 1)[-1]
                given.fail(
                    f"a reveal rule shows values as they are: '{name}' belongs to a mask rule "
                    "(remove it, or use 'action: mask')"
                )
    method_name = method_field.expect(str) if method_field is not None else "redact"
    options = _options(options_field) if options_field is not None else {}
    category = None
    if category_field is not None and detectors and action == "mask":
        category_field.fail(
            "a detector rule's hits say what was found ([REDACTED:email]): 'category' "
            "applies to rules that mask whole columns"
        )
    if category_field is not None:
        category = category_field.expect(str)
        if not _CATEGORY.fullmatch(category):
            category_field.fail(
                f"bad category {category!r}: lowercase letters, digits, '_' and '-' "
                "(it is shown as [REDACTED:<category>])"
            )
    if action == "mask" and options_field is not None and method_field is None:
        options_field.fail(
            "options belong to a method: give 'method' (the default, redact, takes none)"
        )
    if action == "mask":
        _check_method(method_name, options, method_field, options_field, item)
    try:
        rule = MaskRule(
            id=rule_id,
            action=action,
            method=method_name,
            options=options,
            columns=Globs(columns, qualified=True),
            column_names=Globs(names),
            detectors=tuple(detectors),
            scope=scope or (default_scope if detectors else "all"),
            category=category,
        )
    except PolicyError as exc:  # what the checks above missed: still located
        _relocated(item, exc)
    return MaskingRule(rule, when, description, item.path, item.line)


def _relocated(where: Field, exc: PolicyError) -> NoReturn:
    """``exc`` (from the masking room) again, at ``where``: same class, file, line and key."""
    cls = type(exc) if type(exc).__init__ is PolicyError.__init__ else PolicyError
    text = f"{where.key}: {exc}" if where.key else str(exc)
    raise cls(text, path=where.path, line=where.line, key=where.key or None) from None


def _when(item: Field, environments: Collection[str], actor_groups: Collection[str]) -> Conditions:
    r = item.reader()
    for key in r.data:
        if key in MASKING_CONDITIONS:
            continue
        where = Field(r.data[key], f"{item.key}.{key}", r.data.line_of(key), item.path)
        allowed = ", ".join(sorted(MASKING_CONDITIONS))
        if key in CONDITION_KEYS:
            where.fail(
                f"{key!r} is a condition on statements; a masking rule applies to fetched "
                f"columns, whatever statement fetched them. Allowed here: {allowed}"
            )
        close = difflib.get_close_matches(key, sorted(MASKING_CONDITIONS), n=1)
        extra = f" (did you mean {close[0]!r}?)" if close else ""
        where.fail(f"unknown key {key!r}{extra}; known keys: {allowed}")
    return parse_conditions(r, environments, actor_groups)


def _column_globs(item: Field) -> list[str]:
    globs = parse_glob_list(item)
    for one, glob in zip(item.items(), globs, strict=True):
        if glob.count(".") not in (1, 2) or "" in glob.split("."):
            one.fail(
                f"bad column glob {glob!r}: write table.column or schema.table.column "
                "(customers.email matches any schema; use column_names for bare names)"
            )
    return globs


def _name_globs(item: Field) -> list[str]:
    globs = parse_glob_list(item)
    for one, glob in zip(item.items(), globs, strict=True):
        if "." in glob:
            one.fail(
                f"bad column name glob {glob!r}: column_names match a bare column name; "
                "use 'columns' for table.column"
            )
    return globs


def _detectors(item: Field) -> list[str]:
    names = []
    for one in item.items():
        name = one.expect(str)
        try:
            expand((name,))
        except PolicyError as exc:
            _relocated(one, exc)
        names.append(name)
    if not names:
        item.fail("expected at least one detector name")
    return names


def _options(item: Field) -> dict[str, Any]:
    r = item.reader()
    out: dict[str, Any] = {}
    for name, value in r.entries():
        if isinstance(value.value, (LineDict, LineList)) or value.value is None:
            value.fail("an option value must be a string, number or boolean")
        out[name] = value.value
    return out


def _never_called() -> MaskingKey:  # bind() wants a key source for hash; it is not called
    raise AssertionError("the masking key is not read while a policy loads")


def _check_method(
    name: str,
    options: dict[str, Any],
    method_field: Field | None,
    options_field: Field | None,
    item: Field,
) -> None:
    """The method exists and takes these options; errors point at the key at fault."""
    try:
        custom = method(name)
    except PolicyError as exc:
        _relocated(method_field or item, exc)

    def at_option(exc: PolicyError) -> Field:
        if options_field is not None and exc.key in options:
            data: LineDict = options_field.value
            key = f"{options_field.key}.{exc.key}"
            return Field(options[exc.key], key, data.line_of(exc.key), options_field.path)
        return options_field or method_field or item

    try:
        bind(name, options=options, key_source=_never_called)
    except PolicyError as exc:
        _relocated(at_option(exc), exc)
    if custom is None or not options:
        return
    try:
        signature = inspect.signature(custom)
    except (TypeError, ValueError):  # a callable Python cannot introspect: trust it
        return
    try:
        signature.bind(None, **options)
    except TypeError:
        unknown = [k for k in options if not _accepts(signature, k)]
        bad = unknown[0] if unknown else next(iter(options))
        at_option(PolicyError("", key=bad)).fail(
            f"masking method {name!r} takes no option {bad!r}: it is called as {name}{signature}"
        )


def _accepts(signature: inspect.Signature, key: str) -> bool:
    params = signature.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return True
    p = params.get(key)
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


def _phone_regions(item: Field) -> tuple[str, ...]:
    regions: list[str] = []
    for one in item.items():
        code = one.expect(str).strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            one.fail(
                f"unknown phone region {one.value!r}: use an ISO 3166-1 alpha-2 country "
                "code such as US, GB, DE, FR"
            )
        if code not in regions:
            regions.append(code)
    if not regions:
        item.fail("expected at least one region (the default is [US])")
    return tuple(regions)


def _limits(item: Field) -> tuple[int, int]:
    r = item.reader()
    max_chars = r.map("max_chars", _positive) or _DEFAULT_MAX_CHARS
    budget = r.map("time_budget_ms", _positive) or _DEFAULT_BUDGET_MS
    r.finish()
    return max_chars, budget


def _positive(item: Field) -> int:
    value = item.expect(int)
    if value <= 0:
        item.fail(f"must be > 0, got {value}")
    return value


def _detector_settings(item: Field) -> tuple[bool, str]:
    if isinstance(item.value, bool):
        item.fail("expected a mapping: write 'detectors: {enabled: false}'")
    r: Reader = item.reader()
    enabled = r.get("enabled", bool, True)
    scope_field = r.field("scope")
    scope = scope_field.choice(SCOPES, "scope") if scope_field is not None else "all"
    r.finish()
    if not enabled and scope_field is not None:
        scope_field.fail("detectors are turned off (enabled: false): 'scope' has no effect")
    return enabled, scope
