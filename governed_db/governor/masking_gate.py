"""The gate's side of masking: mask plans for results, refusals of masked-value writes.

``shape_rows`` asks the cursor for its result's columns (name, source
``schema.table.column`` or None, type OID), plans them with the masking rules
that hold for this environment and actor, and wraps the user's row maker
only when something needs masking. Every masked value a connection emits is
remembered (bounded); a later statement that writes one back is refused, so
client-side masking never corrupts data.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from governed_db.errors import GovernanceError, PolicyViolation
from governed_db.identity import Identity
from governed_db.masking import ColumnIdentity, MaskedValues, MaskRules
from governed_db.policy import Context
from governed_db.sql import Facts

__all__ = ["WRITE_EFFECTS", "MaskingGate"]

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
        self._plans: dict[tuple[int, tuple[Any, ...]], tuple[MaskRules, Any]] = {}

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
        columns = cursor._conn._gov_columns_of(cursor)
        if not columns:
            return make_row
        rules = self.rules(environment, identity)
        key = (id(rules), tuple(columns))
        cached = self._plans.get(key)
        if cached is not None and cached[0] is rules:
            plan = cached[1]
        else:
            plan = rules.plan(
                [ColumnIdentity(name, source, type_oid) for name, source, type_oid in columns]
            )
            with self._lock:
                if len(self._plans) > 4096:
                    self._plans.clear()
                self._plans[key] = (rules, plan)
        with contextlib.suppress(AttributeError):  # a plain psycopg cursor has no room for it
            cursor._gov_plan = plan  # the audit's "which data they touched"
        if not plan.needs_masking:
            with contextlib.suppress(AttributeError):
                cursor._gov_bulk = None
            return make_row
        masker = plan.start(memory)
        with contextlib.suppress(AttributeError):  # fetchall masks a whole result at once
            cursor._gov_bulk = (masker, make_row)
        return masker.wrap(make_row)

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
