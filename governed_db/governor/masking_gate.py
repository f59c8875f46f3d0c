"""The gate's side of masking: mask plans for results, refusals of masked-value writes.

``shape_rows`` asks the cursor for its result's columns (name, source
``schema.table.column`` or None, type OID), plans them with the masking rules
that hold for this environment and actor, and wraps the user's row maker
only when something needs masking. Every masked value a connection emits is
remembered (bounded); a later statement that writes one back is refused, so
client-side masking never corrupts data.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from governed_db.errors import GovernanceError, PolicyViolation
from governed_db.identity import Identity
from governed_db.masking import ColumnIdentity, MaskedValues, MaskRules
from governed_db.masking.lineage_plan import Derived, derived_columns
from governed_db.policy import Context
from governed_db.sql import Facts, analyze
from governed_db.sql.lineage import UNKNOWN, Lineage

__all__ = ["WRITE_EFFECTS", "MaskingGate", "lineage_of_result", "view_tables"]

#: Effects that store values: a masked value in one of these would be written back.
WRITE_EFFECTS = frozenset({"insert", "update", "merge", "copy_from", "create"})


class MaskingGate:
    """Masking rules per (environment, actor), and the masked-value write check."""

    __slots__ = ("_actors", "_lock", "_plans", "_rules", "policy")

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._rules: dict[Any, MaskRules] = {}
        # (environment, identity) -> (rules, expires or None) for untimed selections
        self._actors: dict[tuple[str, Identity], tuple[MaskRules, float | None]] = {}
        # (rules, columns as plain tuples) -> plan: a repeated result shape costs one lookup
        self._plans: dict[tuple[Any, ...], tuple[MaskRules, Any, Any]] = {}

    def rules(self, environment: str, identity: Identity) -> MaskRules:
        """The compiled rules that hold for ``environment`` and ``identity`` now."""
        key = (environment, identity)
        found = self._actors.get(key)
        if found is not None and (found[1] is None or time.time() < found[1]):
            return found[0]
        selection = self.policy.masking_selection(Context(environment, identity))
        rules = self._compiled(selection)
        with self._lock:
            if len(self._actors) > 1024:
                self._actors.clear()
            self._actors[key] = (rules, selection.expires if selection.timed else None)
        return rules

    def _compiled(self, selection: Any) -> MaskRules:
        key = selection.key
        found = self._rules.get(key)
        if found is None:
            options = self.policy.masking.mask_rules_options()
            found = MaskRules(selection.rules, **options)
            with self._lock:
                if len(self._rules) > 256:
                    self._rules.clear()
                self._rules[key] = found
        return found

    def shape(
        self, cursor: Any, make_row: Any, environment: str, identity: Identity, memory: Any
    ) -> Any:
        """The row maker for the cursor's current result (the user's own when nothing masks)."""
        rules = self.rules(environment, identity)
        again = _same_shape(cursor, make_row, rules)
        if again is not None:
            return again
        columns = cursor._conn._gov_columns_of(cursor)
        if not columns:
            _note(cursor, None, None)
            return make_row
        derived = _derived(cursor, columns)  # the same object while the catalog stands
        key = (id(rules), tuple(columns), id(derived))
        cached = self._plans.get(key)
        if cached is not None and cached[0] is rules and cached[2] is derived:
            plan = cached[1]
        else:
            plan = rules.plan(
                [
                    ColumnIdentity(name, source, type_oid, d.sources, d.unknown, not d.plain)
                    for (name, source, type_oid), d in zip(columns, derived, strict=True)
                ]
            )
            with self._lock:
                if len(self._plans) > 4096:
                    self._plans.clear()
                self._plans[key] = (rules, plan, derived)
        if self.policy.masking.unknown_lineage == "refuse":
            _refuse_unknown(plan, rules)
        needs = plan.needs_masking
        made = self._made(cursor, plan, make_row, memory) if needs else None
        if _note(cursor, plan, made):
            _remember_shape(cursor, make_row, rules, plan, made)
        return make_row if made is None else made[1]

    @staticmethod
    def _made(cursor: Any, plan: Any, make_row: Any, memory: Any) -> tuple[Any, Any]:
        """``((masker, make_row), masking row maker)`` for ``plan``: generated once, reused.

        Kept per connection and (plan, user's row maker), so a repeated result
        shape costs a lookup, not a code generation; it goes with the connection.
        The masker's counts run across those results: each cursor notes where
        they stood (``driver.mask_counts``), and a masker another cursor is
        counting is not shared, so one result's counts never mix with another's.
        """
        conn = cursor._conn
        makers: dict[tuple[int, int], tuple[Any, ...]] | None = conn.__dict__.get("_gov_makers")
        if makers is None:
            makers = conn.__dict__["_gov_makers"] = {}
        key = (id(plan), id(make_row))
        found = makers.get(key)
        if found is not None and found[0] is plan and found[1] is make_row:
            if not _counted_elsewhere(cursor, found[2][0]):
                return found[2], found[3]
            masker = plan.start(memory)  # another cursor's results are counting that one
            bulk = (masker, make_row)
            return bulk, masker.wrap(make_row)
        masker = plan.start(memory)
        bulk = (masker, make_row)
        wrapped = masker.wrap(make_row)
        if len(makers) > 64:
            makers.clear()
        makers[key] = (plan, make_row, bulk, wrapped)
        return bulk, wrapped

    @staticmethod
    def identities(cursor: Any, columns: list[tuple[str, str | None, int]]) -> list[ColumnIdentity]:
        """The columns of the cursor's result (or COPY) with what lineage says of each."""
        derived = _derived(cursor, columns)
        return [
            ColumnIdentity(name, source, type_oid, d.sources, d.unknown, not d.plain)
            for (name, source, type_oid), d in zip(columns, derived, strict=True)
        ]

    def copy_out(
        self, cursor: Any, tables: Any, environment: str, identity: Identity, memory: Any
    ) -> Any:
        """A line masker for COPY TO STDOUT text/CSV, refusing what it cannot mask.

        Lines are scanned whole by the detectors (values masked in place). Rules
        that mask a column by its name or source cannot be applied to COPY text,
        so a COPY reading a table with such a column is refused.
        """
        rules = self.rules(environment, identity)
        catalog = cursor._conn._gov_catalog
        columns: list[ColumnIdentity] = []
        unknown = False
        for table in tables:
            found = catalog.columns_of(table)
            if found is None:
                unknown = True
                continue
            qualified, names = found
            columns.extend(ColumnIdentity(name, f"{qualified}.{name}", None) for name in names)
        if unknown or any(c.action == "mask" for c in rules.plan(columns).columns):
            raise GovernanceError(
                "COPY ... TO STDOUT reads a column that masking covers by name or source "
                "(or a table whose columns could not be looked up); COPY text cannot be "
                "masked column by column, so it is refused (fail closed)",
                rule_id="copy-out-unmasked",
                hint="SELECT the rows instead: fetched rows are masked.",
            )
        masker = rules.plan([ColumnIdentity("copy", None, 25)]).start(memory)

        def mask_line(line: str) -> str:
            return masker.apply((line,))[0]  # type: ignore[no-any-return]

        return mask_line

    @staticmethod
    def check_write(memory: MaskedValues, facts: Facts, query: str, params: Any) -> None:
        """Refuse a write that carries a value masking emitted on this connection."""
        if not memory or not (facts.tables_written or facts.effects & WRITE_EFFECTS):
            return
        hit = memory.find_in_params(params) if params is not None else None
        if hit is None:
            hit = memory.find_in_text(query)
        if hit is not None:
            raise PolicyViolation(
                "the statement writes a value that masking produced on this connection; "
                "storing it would overwrite the real value with its mask",
                rule_id="masked-value-write",
                hint=(
                    "Masked values are placeholders, not data: write only the fields you "
                    "changed, or re-read the row under a policy that reveals the column."
                ),
                statement=query,
                facts=facts,
            )


#: Query bytes -> the lineage of each of its statements (bounded).
_LINEAGES: dict[bytes | str, tuple[Lineage, ...]] = {}


def lineage_of_result(cursor: Any) -> Lineage:
    """The lineage of the statement behind the cursor's current result (``UNKNOWN`` if unsure)."""
    data = _sent_query(cursor)
    if data is None:
        return UNKNOWN
    found = _LINEAGES.get(data)
    if found is None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        found = tuple(_output_lineage(s) for s in analyze(text).statements)
        if len(_LINEAGES) > 4096:
            _LINEAGES.clear()
        _LINEAGES[data] = found
    if len(found) == 1:
        return found[0]
    results = getattr(cursor, "_results", ())
    index = getattr(cursor, "_iresult", -1)
    if len(results) == len(found) and 0 <= index < len(found):
        return found[index]
    return UNKNOWN


def _sent_query(cursor: Any) -> bytes | str | None:
    """The query behind the cursor's current result.

    psycopg's converted query, else (a statement psycopg runs prepared does not
    record it) the query of the call in flight, else the cursor's last query.
    """
    data = getattr(getattr(cursor, "_query", None), "query", None)
    if data is None:
        admission = getattr(cursor, "_gov_pass", None)
        data = getattr(getattr(admission, "pgq", None), "query", None)
        if data is None:
            data = getattr(admission, "query", None)
        if data is None:
            data = getattr(cursor, "_last_query", None)
    return data if isinstance(data, bytes | str) else None


#: Statement fingerprint -> its lineage, for the output columns only. Literals and
#: parameters never change what an output column derives from, so statements that differ
#: only in them (a ClientCursor's merged parameters) share one; their ``uses`` may differ
#: (``ORDER BY 2`` normalises to ``ORDER BY ?``), so this is not the place to read those.
_BY_FINGERPRINT: dict[str, Lineage] = {}


def _output_lineage(statement: Any) -> Lineage:
    fingerprint = statement.fingerprint
    found = _BY_FINGERPRINT.get(fingerprint) if fingerprint else None
    if found is None:
        found = statement.lineage
        if fingerprint:
            if len(_BY_FINGERPRINT) > 4096:
                _BY_FINGERPRINT.clear()
            _BY_FINGERPRINT[fingerprint] = found
    return found


def _derived(cursor: Any, columns: list[tuple[str, str | None, int]]) -> tuple[Derived, ...]:
    """What each result column derives from (cached per statement and catalog state)."""
    lineage = lineage_of_result(cursor)
    catalog = getattr(cursor._conn, "_gov_catalog", None)
    if catalog is None:  # no catalog to resolve with: what the server says is all there is
        return _PLAIN[len(columns)] if all(c[1] for c in columns) else _computed(columns)
    sources = tuple(source for _, source, _ in columns)
    key = (id(lineage), sources)
    found = catalog.lineage_cache.get(key)
    if found is None or found[0] is not lineage:
        found = (lineage, derived_columns(lineage, sources, catalog))
        catalog.remember_lineage(key, found)
    return found[1]  # type: ignore[no-any-return]


def _note(cursor: Any, plan: Any, made: Any) -> bool:
    """Hand the cursor its result's plan and masker; False for a plain psycopg cursor."""
    try:
        cursor._gov_plan = plan  # the audit's "which data they touched"
        cursor._gov_bulk = None if made is None else made[0]  # fetchall: a column at a time
    except AttributeError:  # a plain psycopg cursor has no room for these
        return False
    return True


def _description(res: Any) -> tuple[Any, ...]:
    """Everything masking reads of a result's columns: names, sources and types."""
    return tuple(
        (res.fname(i), res.ftable(i), res.ftablecol(i), res.ftype(i)) for i in range(res.nfields)
    )


def _remember_shape(cursor: Any, make_row: Any, rules: Any, plan: Any, made: Any) -> None:
    """Keep what this result was planned from, so the next like it skips the planning."""
    conn = cursor._conn
    catalog = getattr(conn, "_gov_catalog", None)
    res = cursor.pgresult
    if catalog is None or res is None:
        return
    cursor._gov_shape = (
        _description(res),
        make_row,
        rules,
        catalog.generation,
        _sent_query(cursor),
        plan,
        made,
        getattr(cursor, "_iresult", -1),  # which statement of the text (lineage differs)
    )


def _counted_elsewhere(cursor: Any, masker: Any) -> bool:
    """Whether another cursor's results are being counted with ``masker`` (driver.mask_counts)."""
    owners = cursor._conn.__dict__.get("_gov_mask_owners")
    owner = owners.get(id(masker)) if owners else None
    return owner is not None and owner != id(getattr(cursor, "_gov_counting", None))


def _same_shape(cursor: Any, make_row: Any, rules: Any) -> Any:
    """The row maker of the cursor's last result, if this one is planned the same (else None).

    The same when the server describes the columns alike (names, source table
    and column, types), for the same statement of the same text (its result
    index: the statements of one text derive their columns differently), row
    maker, masking rules and catalog; and its masker, if any, is not being
    counted by another cursor.
    """
    last = getattr(cursor, "_gov_shape", None)
    if last is None or last[1] is not make_row or last[2] is not rules:
        return None
    conn = cursor._conn
    if (
        last[3] != conn._gov_catalog.generation
        or last[7] != getattr(cursor, "_iresult", -1)
        or last[4] != _sent_query(cursor)
    ):
        return None
    res = cursor.pgresult
    if res is None or last[0] != _description(res):
        return None
    made = last[6]
    if made is not None and _counted_elsewhere(cursor, made[0][0]):
        return None
    cursor._gov_plan = last[5]
    cursor._gov_bulk = None if made is None else made[0]
    return make_row if made is None else made[1]


class _Plain(dict[int, tuple[Derived, ...]]):
    def __missing__(self, width: int) -> tuple[Derived, ...]:
        found = self[width] = (Derived(plain=True),) * width
        return found


_PLAIN = _Plain()


def _computed(columns: list[tuple[str, str | None, int]]) -> tuple[Derived, ...]:
    return tuple(Derived(plain=source is not None) for _, source, _ in columns)


def _refuse_unknown(plan: Any, rules: MaskRules) -> None:
    """``unknown_lineage: refuse``: a column lineage can't follow, when rules mask columns."""
    unknown = [c.column.name for c in plan.columns if c.column.unknown and c.action != "mask"]
    if not unknown or not any(r.action == "mask" and r.matches_columns for r in rules.rules):
        return
    raise GovernanceError(
        f"masking cannot tell where result column(s) {', '.join(map(repr, unknown))} come "
        "from (a function lineage cannot see through, dynamic SQL, FETCH or EXECUTE), and "
        "the policy refuses such results while it masks columns (unknown_lineage: refuse)",
        rule_id="unknown-lineage",
        hint=(
            "Select the columns from their tables directly (or through views), or ask for a "
            "policy that reveals them."
        ),
    )


def view_tables(definition: str) -> frozenset[str]:
    """The relations a view's definition reads (the analyzer's names)."""
    return analyze(definition).tables_read
