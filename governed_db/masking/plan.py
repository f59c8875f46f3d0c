"""The mask plan: for each result column, what happens to its values.

:class:`MaskRules` compiles an ordered list of already-filtered rules once (per
policy and connection); :meth:`MaskRules.plan` turns a result's column
identities into a frozen :class:`MaskPlan`, cached by those identities. For
each column, the first rule that matches it by ``columns``/``column_names``
decides: mask it whole with the rule's method, or reveal it. Other columns of
a text-like type are scanned by the detectors of the detector rules whose
scope covers them (the first rule naming a detector decides its method, or
turns it off with ``reveal``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from governed_db.masking.detectors import PhoneDetector, detector
from governed_db.masking.keys import MaskingKey, load_masking_key
from governed_db.masking.methods import MaskFn, bind
from governed_db.masking.rules import MaskRule
from governed_db.masking.scan import KeyRule, Scanner, SpanRule

if TYPE_CHECKING:
    from governed_db.masking.apply import RowMasker
    from governed_db.masking.memory import MaskedValues

__all__ = [
    "KEEPS_NOTHING",
    "NOT_TEXT_OIDS",
    "TEXT_OIDS",
    "ColumnIdentity",
    "ColumnPlan",
    "MaskPlan",
    "MaskRules",
]

#: Type OIDs whose values are plain ``str`` (text, varchar, bpchar, name, unknown, xml).
TEXT_OIDS = frozenset({25, 1043, 1042, 19, 705, 142})
#: Type OIDs that never hold text, so detectors skip them: bool, integers, floats,
#: numeric, money, network and time types, uuid, bit strings, geometry.
#: (A number inside JSON or an array is still checked for a card number. bytea is
#: scanned: ``convert_to(secret, 'UTF8')`` is text as bytes.)
NOT_TEXT_OIDS = frozenset({
    16, 20, 21, 23, 26, 700, 701, 1700, 790, 869, 650, 829, 774, 1082, 1083, 1114,
    1184, 1186, 1266, 2950, 3220, 1560, 1562, 600, 601, 602, 603, 604, 628, 718,
})  # fmt: skip

KeySource = Callable[[], MaskingKey]

#: Methods that keep nothing of a value's characters, so they fit a value derived from a
#: masked column whatever it is. The others (``email``, ``last4``, ``partial``, custom
#: methods) keep characters: of a *transformed* value they would show the wrong ones
#: (``last4`` of ``substr(card, 1, 12)`` is digits 9-12), so a derived column is redacted.
KEEPS_NOTHING = frozenset({"redact", "hash", "null"})


@dataclass(frozen=True, slots=True)
class ColumnIdentity:
    """A result column: its result name, its source (None when computed) and type OID.

    ``derived``: the base columns (``schema.table.column``) it derives from by
    the statement's lineage (an expression, a view, ...); ``unknown``: lineage
    could not follow some of it (a user-defined function, ``FETCH``);
    ``transformed``: its values are computed, not stored values (``substr(card,
    1, 12) AS card_number``), so a method that keeps characters would keep the
    wrong ones: such a column matched by name is redacted instead.
    """

    name: str
    source: str | None = None
    type_oid: int | None = None
    derived: frozenset[str] = frozenset()
    unknown: bool = False
    transformed: bool = False

    @property
    def source_name(self) -> str | None:
        """The source column's own name (the last part of ``source``)."""
        return None if self.source is None else self.source.rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """What happens to one column: ``untouched``, ``mask`` (whole), ``scan`` or ``reveal``."""

    index: int
    column: ColumnIdentity
    action: str
    rule_id: str | None = None
    method: str | None = None
    detectors: tuple[str, ...] = ()
    #: The masked source column a derived column is masked for (None: its own rule).
    derived_from: str | None = None
    mask: MaskFn | None = field(default=None, repr=False, compare=False)
    scanner: Scanner | None = field(default=None, repr=False, compare=False)

    @property
    def text_only(self) -> bool:
        """True if the column's type says its values are plain strings."""
        return self.column.type_oid in TEXT_OIDS


@dataclass(frozen=True, slots=True)
class MaskPlan:
    """The per-column actions for one result shape; frozen and shared between results."""

    columns: tuple[ColumnPlan, ...]
    #: The columns masked whole, in order.
    mask_columns: tuple[ColumnPlan, ...] = field(init=False, repr=False, compare=False)
    #: The scanned columns by scanner: ``(scanner, columns, all plain text)``.
    groups: tuple[tuple[Scanner, tuple[ColumnPlan, ...], bool], ...] = field(
        init=False, repr=False, compare=False
    )
    #: Which columns get which treatment, as indices (the generated row maker's key).
    shape: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        groups: dict[tuple[int, bool], tuple[Scanner, list[ColumnPlan], bool]] = {}
        for col in self.columns:
            if col.action == "scan":
                assert col.scanner is not None
                key = (id(col.scanner), col.text_only)
                groups.setdefault(key, (col.scanner, [], col.text_only))[1].append(col)
        set_ = object.__setattr__
        set_(self, "mask_columns", tuple(c for c in self.columns if c.action == "mask"))
        set_(self, "groups", tuple((s, tuple(cols), t) for s, cols, t in groups.values()))
        set_(
            self,
            "shape",
            (
                tuple(c.index for c in self.mask_columns),
                tuple((tuple(c.index for c in cols), t) for _, cols, t in self.groups),
            ),
        )

    @property
    def needs_masking(self) -> bool:
        """False when every column is untouched or revealed: use the row maker as is."""
        return bool(self.mask_columns or self.groups)

    def start(self, memory: MaskedValues | None = None) -> RowMasker:
        """A masker for one result: applies the plan, counts, remembers what it emitted."""
        from governed_db.masking.apply import RowMasker

        return RowMasker(self, memory)

    def apply(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """One row, masked (no counting: use :meth:`start` for that)."""
        return self.start().apply(row)

    def describe(self) -> list[dict[str, Any]]:
        """The result's columns for an audit record: name, source (or ``computed``), action."""
        out = []
        for c in self.columns:
            item: dict[str, Any] = {"name": c.column.name, "source": c.column.source or "computed"}
            item["action"] = c.action
            if c.rule_id:
                item["rule"] = c.rule_id
            if c.derived_from:
                item["derived_from"] = c.derived_from
            if c.column.unknown:
                item["lineage"] = "unknown"
            out.append(item)
        return out


class MaskRules:
    """Ordered rules compiled once: methods bound, detectors built, scanners shared.

    ``key_source`` gives the masking key to ``hash`` (default: load it from the
    usual places, see :mod:`governed_db.masking.keys`); ``phone_regions`` the
    regions whose national phone formats count; ``max_chars`` and ``budget``
    bound the work on one value.
    """

    __slots__ = ("_fns", "_plans", "_regions", "_scanners", "budget", "key_source",
                 "max_chars", "rules")  # fmt: skip

    def __init__(
        self,
        rules: Sequence[MaskRule],
        *,
        key_source: KeySource | None = None,
        phone_regions: Sequence[str] = ("US",),
        max_chars: int = 1_000_000,
        budget: float = 0.25,
    ) -> None:
        self.rules = tuple(rules)
        self.key_source = key_source or _default_key
        self.max_chars = max_chars
        self.budget = budget
        self._regions = tuple(phone_regions)
        self._fns: dict[tuple[str, str], MaskFn] = {}
        self._scanners: dict[tuple[tuple[str, str], ...], Scanner] = {}
        self._plans: dict[tuple[ColumnIdentity, ...], MaskPlan] = {}
        for rule in self.rules:  # bind now: bad options fail at load time
            if rule.action == "mask":
                self._fn(rule, rule.category or "masked")

    def _fn(self, rule: MaskRule, category: str) -> MaskFn:
        key = (rule.id, category)
        fn = self._fns.get(key)
        if fn is None:
            fn = self._fns[key] = bind(
                rule.method, category=category, options=rule.options, key_source=self.key_source
            )
        return fn

    def plan(self, columns: Sequence[ColumnIdentity]) -> MaskPlan:
        """The plan for a result with these columns (cached)."""
        key = tuple(columns)
        found = self._plans.get(key)
        if found is None:
            found = MaskPlan(tuple(self._column(i, c) for i, c in enumerate(key)))
            if len(self._plans) >= 1024:
                self._plans.clear()
            self._plans[key] = found
        return found

    def _column(self, index: int, col: ColumnIdentity) -> ColumnPlan:
        source_name = col.source_name
        for rule in self.rules:
            if rule.detectors or not rule.matches(col.source, col.name, source_name):
                continue
            if rule.action == "reveal":
                return ColumnPlan(index, col, "reveal", rule.id)
            if col.transformed and rule.method not in KEEPS_NOTHING:
                fn = self._redact(rule.category or "masked")
                return ColumnPlan(index, col, "mask", rule.id, "redact", mask=fn)
            fn = self._fn(rule, rule.category or "masked")
            return ColumnPlan(index, col, "mask", rule.id, rule.method, mask=fn)
        if col.derived:
            found = self._derived(index, col)
            if found is not None:
                return found
        if col.type_oid in NOT_TEXT_OIDS:
            return ColumnPlan(index, col, "untouched")
        chosen: dict[str, MaskRule] = {}
        for rule in self.rules:
            if not rule.detectors or (rule.scope == "computed" and col.source is not None):
                continue
            if rule.matches_columns and not rule.matches(col.source, col.name, source_name):
                continue
            for name in rule.detectors:
                chosen.setdefault(name, rule)
        picked = tuple((n, r.id) for n, r in chosen.items() if r.action == "mask")
        if not picked:
            return ColumnPlan(index, col, "untouched")
        scanner = self._scanner(picked)
        return ColumnPlan(
            index,
            col,
            "scan",
            picked[0][1],
            detectors=tuple(n for n, _ in picked),
            scanner=scanner,
        )

    def _derived(self, index: int, col: ColumnIdentity) -> ColumnPlan | None:
        """Mask a column whole if it derives from a column a rule masks (see ``KEEPS_NOTHING``).

        For each base column it derives from, the first rule matching that column
        by ``columns``/``column_names`` decides (a ``reveal`` rule lets it through).
        """
        masked: dict[str, tuple[MaskRule, str]] = {}
        revealed: list[tuple[MaskRule, str]] = []
        for source in sorted(col.derived):
            name = source.rsplit(".", 1)[-1]
            for rule in self.rules:
                if rule.detectors or not rule.matches(source, None, name):
                    continue
                if rule.action == "mask":
                    masked.setdefault(rule.id, (rule, source))
                else:
                    revealed.append((rule, source))
                break
        if not masked:
            if revealed and len(revealed) == len(col.derived) and not col.unknown:
                rule, source = revealed[0]  # every source revealed: so is the column
                return ColumnPlan(index, col, "reveal", rule.id, derived_from=source)
            return None
        rule, source = next(iter(masked.values()))
        category = rule.category or "masked" if len(masked) == 1 else "masked"
        method = rule.method if len(masked) == 1 and rule.method in KEEPS_NOTHING else "redact"
        fn = self._fn(rule, category) if method == rule.method else self._redact(category)
        return ColumnPlan(index, col, "mask", rule.id, method, derived_from=source, mask=fn)

    def _redact(self, category: str) -> MaskFn:
        key = ("<derived>", category)
        fn = self._fns.get(key)
        if fn is None:
            fn = self._fns[key] = bind("redact", category=category, options={}, key_source=None)
        return fn

    def _scanner(self, picked: tuple[tuple[str, str], ...]) -> Scanner:
        found = self._scanners.get(picked)
        if found is not None:
            return found
        by_id = {r.id: r for r in self.rules}
        entries = []
        for name, rule_id in picked:
            rule = by_id[rule_id]
            det = PhoneDetector(self._regions) if name == "phone" else detector(name)
            fn = self._fn(rule, det.category)
            entries.append(SpanRule(det, fn, rule.id, rule.method))
        keys = [
            KeyRule(
                r.column_names,
                None if r.action == "reveal" else self._fn(r, r.category or "masked"),
                r.id,
                r.method if r.action == "mask" else "reveal",
            )
            for r in self.rules
            if r.column_names and not r.detectors
        ]
        found = Scanner(entries, keys, max_chars=self.max_chars, budget=self.budget)
        self._scanners[picked] = found
        return found


def _default_key() -> MaskingKey:
    from governed_db.errors import GovernanceError

    key = load_masking_key()
    if key is None:
        raise GovernanceError(
            "the 'hash' masking method needs a masking key and none is set up: create one "
            "with governed_db.masking.init_masking_key() or set GOVERNED_DB_MASKING_KEY"
        )
    return key
