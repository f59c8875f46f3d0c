"""Probing conditions: does a statement filter, order or probe on a column masking hides?

A masked column can be read one guess at a time without ever reaching the
output: ``WHERE email LIKE 'a%'``, ``WHERE salary > 2000``, ``ORDER BY ssn``.
``sql.lineage`` reports where a statement uses columns to pick rows; this
module judges them against the masking rules that hold for the context (the
same ones the fetch applies), so guardrails can say:

- ``filters_on_masked``: a masked column in WHERE / HAVING / JOIN ON / an
  aggregate's FILTER (any comparison, probes included). An equality between
  two masked columns (``a.customer_id = b.customer_id`` on hashed pseudonyms)
  is a join and does not count: that is what pseudonyms are for; an equality
  between a masked column and an unmasked one (a table or list of guesses)
  does.
- ``probes_masked``: a masked column in a LIKE / ILIKE / SIMILAR TO / regex
  match or a range comparison (``<``, ``>``, ``BETWEEN``) against a literal
  or a parameter.
- ``orders_by_masked``: a masked column in GROUP BY, ORDER BY, DISTINCT ON or
  a window's PARTITION BY / ORDER BY.

A column counts as masked when the first rule matching it by ``columns`` or
``column_names`` masks it (not when a rule reveals it). Columns are judged as
the statement names them, through its subqueries and CTEs; an unqualified
column of several tables counts if any of them is masked, and a whole row
(``t``, ``t.*``) if any rule masks by column. Without lineage (the sqlparse
backend) the conditions hold for refusing rules and never for permissive
ones: fail closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from governed_db.masking import MaskRule
    from governed_db.sql.facts import StatementFacts
    from governed_db.sql.lineage import Source

__all__ = ["PROBE_CONDITIONS", "Probing", "probing"]

#: The probing condition keys, as written in a rule's ``when``.
PROBE_CONDITIONS = ("filters_on_masked", "probes_masked", "orders_by_masked")


@dataclass(frozen=True, slots=True)
class Probing:
    """How a statement uses masked columns (None: cannot tell)."""

    filters_on_masked: bool | None
    probes_masked: bool | None
    orders_by_masked: bool | None


_UNKNOWN = Probing(None, None, None)
_NONE = Probing(False, False, False)
#: (id(lineage), id(rules)) -> (lineage, rules, answer): rules tuples are interned per selection
_CACHE: dict[tuple[int, int], tuple[object, object, Probing]] = {}


def probing(s: StatementFacts, rules: tuple[MaskRule, ...]) -> Probing:
    """How statement ``s`` uses the columns ``rules`` mask (cached per lineage and rules)."""
    lineage = s.lineage
    if not lineage.known:
        return _UNKNOWN if s.tables_read or s.tables_written else _NONE
    if not lineage.uses:
        return _NONE
    key = (id(lineage), id(rules))
    found = _CACHE.get(key)
    if found is not None and found[0] is lineage and found[1] is rules:
        return found[2]
    filters = probes = orders = False
    for use in lineage.uses:
        hit = _masked(use.sources, rules)
        if use.kind == "equality":
            filters = filters or hit != _masked(use.partner, rules)
        elif use.kind == "order":
            orders = orders or hit
        else:
            filters = filters or hit
            probes = probes or (hit and use.kind == "probe")
    answer = Probing(filters, probes, orders)
    if len(_CACHE) > 4096:
        _CACHE.clear()
    _CACHE[key] = (lineage, rules, answer)
    return answer


def _masked(sources: frozenset[Source], rules: tuple[MaskRule, ...]) -> bool:
    for source in sources:
        column = source.column
        if column == "*" or column.startswith("#") or source.row:
            if any(r.action == "mask" and r.matches_columns for r in rules):
                return True
            continue
        for table in source.tables:
            qualified = f"{table}.{column}"
            for rule in rules:
                if rule.detectors or not rule.matches(qualified, None, column):
                    continue
                if rule.action == "mask":
                    return True
                break
    return False


def matches(condition: bool | None, value: bool | None, every: bool) -> bool:
    """Does a probing condition hold? Unknown holds only for a refusing rule's ``true``."""
    if condition is None:
        return True
    if value is None:
        return condition and not every
    return condition == value
