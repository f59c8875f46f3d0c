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
from typing import Any

from governed_db.errors import PolicyViolation
from governed_db.identity import Identity
from governed_db.masking import ColumnIdentity, MaskedValues, MaskRules, baseline_rules
from governed_db.sql import Facts

__all__ = ["WRITE_EFFECTS", "MaskingGate"]

#: Effects that store values: a masked value in one of these would be written back.
WRITE_EFFECTS = frozenset({"insert", "update", "merge", "copy_from", "create"})


class MaskingGate:
    """Masking rules per (environment, actor), and the masked-value write check."""

    __slots__ = ("_lock", "_rules", "policy")

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._rules: dict[tuple[str, Identity], MaskRules] = {}

    def rules(self, environment: str, identity: Identity) -> MaskRules:
        """The compiled rules that hold for ``environment`` and ``identity`` (cached)."""
        key = (environment, identity)
        found = self._rules.get(key)
        if found is None:
            found = MaskRules(self._filtered(environment, identity))
            with self._lock:
                if len(self._rules) > 256:
                    self._rules.clear()
                self._rules[key] = found
        return found

    def _filtered(self, environment: str, identity: Identity) -> Any:
        masking_for = getattr(self.policy, "masking_for", None)
        if masking_for is None:  # a policy without a masking section API: the baseline
            return baseline_rules()
        from governed_db.policy import Context

        return masking_for(Context(environment, identity))

    def shape(
        self, cursor: Any, make_row: Any, environment: str, identity: Identity, memory: Any
    ) -> Any:
        """The row maker for the cursor's current result (the user's own when nothing masks)."""
        columns = cursor._conn._gov_columns_of(cursor)
        if not columns:
            return make_row
        plan = self.rules(environment, identity).plan(
            [ColumnIdentity(name, source, type_oid) for name, source, type_oid in columns]
        )
        if not plan.needs_masking:
            return make_row
        return plan.start(memory).wrap(make_row)

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
