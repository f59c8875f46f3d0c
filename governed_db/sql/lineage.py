"""Where a statement's output columns come from, and where it uses columns to pick rows.

``Lineage`` is computed from the parse tree alongside the facts (once per
statement text; see ``lineage_walk``). It names relations as the analyzer does
(``public.orders`` for an unqualified ``orders``) and leaves to the catalog what
the text alone cannot say: which of several tables an unqualified column belongs
to, the columns behind ``*``, and what a view's columns derive from.

- ``items``: the output columns in order. A ``Column`` derives from a set of
  ``Source`` columns (every column an expression, a function's arguments, a
  CASE's conditions, an aggregate or a subquery reads); ``unknown`` when a
  function lineage cannot see through contributes (a user-defined function,
  dynamic SQL). ``Expand`` is ``*`` over a relation (one column per column
  of it), ``Branches`` a set operation (position by position), ``Opaque`` ``*``
  over a function of unknown shape (an unknown number of unknown columns).
- ``uses``: where columns pick rows rather than reach the output (WHERE,
  HAVING, JOIN ON, GROUP BY, ORDER BY, window and aggregate clauses), each a
  ``Use`` of kind ``filter``, ``probe`` (LIKE/regex/range against a literal or
  parameter), ``order`` or ``equality`` (column = column; ``partner`` is the
  other side).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "NO_DATA",
    "UNKNOWN",
    "USE_KINDS",
    "Branches",
    "Column",
    "Expand",
    "Item",
    "Lineage",
    "Opaque",
    "Source",
    "Use",
]

#: What a column can be used for besides reaching the output.
USE_KINDS = ("filter", "probe", "order", "equality")


@dataclass(frozen=True, slots=True)
class Source:
    """A column of a base relation (table, view, ...), as the statement names it.

    ``tables`` are the candidate relations (``schema.name``), innermost query
    level first: one when the text says which; several for an unqualified
    column the catalog must place (the first that has the column is the one).
    ``column`` is a name, ``*`` (every column) or ``#n`` (the n-th column,
    renamed by an alias list). ``row``: a bare name that is the whole row when
    the relation has no column of that name (``SELECT c FROM customers c``).
    """

    tables: tuple[str, ...]
    column: str
    row: bool = False

    def __str__(self) -> str:
        where = self.tables[0] if len(self.tables) == 1 else "{" + "|".join(self.tables) + "}"
        return f"{where}.{self.column}"


@dataclass(frozen=True, slots=True)
class Column:
    """One output column: the source columns it derives from.

    ``plain``: the value is a column's value as stored (a reference, maybe cast),
    not computed from it; masking methods that keep characters fit only those.
    """

    sources: frozenset[Source] = frozenset()
    unknown: bool = False
    plain: bool = False


@dataclass(frozen=True, slots=True)
class Expand:
    """``*`` over a base relation: one output column per column of ``table``.

    ``exclude``: columns already given by a ``JOIN ... USING``; ``also``: what
    a statement assigned to some columns (``INSERT``/``UPDATE ... RETURNING *``)
    and ``also_all`` to every column (an insert whose columns are positional).
    """

    table: str
    exclude: frozenset[str] = frozenset()
    also: tuple[tuple[str, frozenset[Source]], ...] = ()
    also_all: frozenset[Source] = frozenset()


@dataclass(frozen=True, slots=True)
class Branches:
    """A set operation: each branch's columns, combined position by position."""

    branches: tuple[tuple[Item, ...], ...]


@dataclass(frozen=True, slots=True)
class Opaque:
    """``*`` over a function whose width the text doesn't give: columns deriving from
    ``sources``; ``unknown`` unless it is a built-in (``unnest``, ``jsonb_each``)."""

    sources: frozenset[Source] = frozenset()
    unknown: bool = True


Item = Column | Expand | Branches | Opaque


@dataclass(frozen=True, slots=True)
class Use:
    """Columns used to pick, group or order rows (see the module docstring)."""

    kind: str
    sources: frozenset[Source]
    partner: frozenset[Source] = frozenset()


@dataclass(frozen=True, slots=True)
class Lineage:
    """A statement's output columns and row-picking uses.

    ``known`` is False when the statement's output cannot be followed at all
    (``FETCH``, ``EXECUTE``, ``CALL``, a parse failure); ``data`` is False when
    no output column derives from anything but its own source: output that is
    not table data (``SHOW``, ``EXPLAIN``), or ``COPY table TO``'s columns.
    """

    items: tuple[Item, ...] = ()
    uses: tuple[Use, ...] = ()
    known: bool = True
    data: bool = True

    def sources(self) -> frozenset[Source]:
        """Every source any output column derives from."""
        out: set[Source] = set()
        for item in self.items:
            out.update(item_sources(item))
        return frozenset(out)

    def used(self, *kinds: str) -> frozenset[Source]:
        """Sources of the uses of these kinds (every kind when none given)."""
        out: set[Source] = set()
        for use in self.uses:
            if not kinds or use.kind in kinds:
                out.update(use.sources)
                out.update(use.partner)
        return frozenset(out)


def item_sources(item: Item) -> Iterator[Source]:
    """Every source ``item`` derives from (``Expand`` as ``table.*``)."""
    if isinstance(item, Column | Opaque):
        yield from item.sources
    elif isinstance(item, Expand):
        yield Source((item.table,), "*")
        for _, found in item.also:
            yield from found
        yield from item.also_all
    else:
        for branch in item.branches:
            for inner in branch:
                yield from item_sources(inner)


#: The lineage of a statement that cannot be followed.
UNKNOWN = Lineage(known=False)
#: The lineage of a statement whose output is not table data.
NO_DATA = Lineage(data=False)
