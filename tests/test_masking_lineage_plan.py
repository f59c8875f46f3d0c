"""Lineage resolved against a catalog (``masking.lineage_plan``) and planned (``MaskRules``)."""

from __future__ import annotations

from governed_db.masking import MaskRule, MaskRules, baseline_rules
from governed_db.masking.lineage_plan import Derived, Relation, derived_columns, resolve
from governed_db.masking.plan import ColumnIdentity
from governed_db.sql import analyze


class Catalog:
    """An in-memory ``Relations``: what a connection's catalog holds."""

    def __init__(self, *relations: Relation) -> None:
        self.by_name = {r.qualified: r for r in relations}
        self.view_lineage: dict[str, tuple[Derived, ...] | None] = {}

    def relation(self, name: str) -> Relation | None:
        return self.by_name.get(name)


CUSTOMERS = Relation("public.customers", ("id", "email", "ssn"))
VAULT = Relation("public.vault", ("id", "c1"))
CATALOG = Catalog(
    CUSTOMERS,
    VAULT,
    Relation(
        "public.v1", ("id", "x"), "SELECT customers.id, lower(customers.ssn) AS x FROM customers"
    ),
    Relation("public.v2", ("y",), "SELECT v1.x AS y FROM v1"),
    Relation("public.loop", ("a",), "SELECT loop.a FROM loop"),
)


def sources(sql: str, width: int, catalog: Catalog = CATALOG) -> list[tuple[list[str], bool, bool]]:
    found = resolve(analyze(sql).statements[0].lineage, catalog, width)
    return [(sorted(d.sources), d.unknown, d.plain) for d in found]


def test_star_expands_in_catalog_order() -> None:
    assert sources("select * from customers", 3) == [
        (["public.customers.id"], False, True),
        (["public.customers.email"], False, True),
        (["public.customers.ssn"], False, True),
    ]


def test_using_join_merges_columns() -> None:
    found = sources("select * from customers join vault using (id)", 4)
    assert [s for s, _, _ in found] == [
        ["public.customers.id", "public.vault.id"],
        ["public.customers.email"],
        ["public.customers.ssn"],
        ["public.vault.c1"],
    ]


def test_unqualified_column_goes_to_the_table_that_has_it() -> None:
    assert sources("select ssn, c1 from customers, vault", 2) == [
        (["public.customers.ssn"], False, True),
        (["public.vault.c1"], False, True),
    ]


def test_alias_column_list_is_positional() -> None:
    assert sources("select b from customers c(a, b)", 1) == [
        (["public.customers.email"], False, True)
    ]


def test_whole_row_reference() -> None:
    ((found, unknown, plain),) = sources("select c::text from customers c", 1)
    assert found == ["public.customers.email", "public.customers.id", "public.customers.ssn"]
    assert (unknown, plain) == (False, False)


def test_views_resolve_through_their_definitions() -> None:
    assert sources("select * from v2", 1) == [
        (["public.customers.ssn", "public.v1.x", "public.v2.y"], False, False)
    ]


def test_a_view_that_reaches_itself_is_unknown() -> None:
    ((_, unknown, _),) = sources("select a from loop", 1)
    assert unknown


def test_unknown_relation_is_unknown() -> None:
    ((_, unknown, _),) = sources("select x from nowhere", 1)
    assert unknown


def test_builtin_srf_fills_the_width() -> None:
    found = sources("select c.id, j.* from customers c, jsonb_each(to_jsonb(c)) j", 3)
    assert found[0] == (["public.customers.id"], False, True)
    assert found[1] == found[2]
    assert found[1][0] == ["public.customers.email", "public.customers.id", "public.customers.ssn"]


def test_shapes_that_do_not_line_up_fail_wide() -> None:
    found = sources("select * from customers", 5)  # e.g. a column added since the lookup
    assert all(unknown for _, unknown, _ in found)
    assert all(s == found[0][0] for s, _, _ in found)


def test_set_operation_of_stars_lines_up_positionally() -> None:
    found = sources("select * from vault union select id, email from customers", 2)
    assert [s for s, _, _ in found] == [
        ["public.customers.id", "public.vault.id"],
        ["public.customers.email", "public.vault.c1"],
    ]


def test_own_source_of_a_view_column_resolves_too() -> None:
    lineage = analyze("select x from v1").statements[0].lineage
    (found,) = derived_columns(lineage, ["public.v1.x"], CATALOG)
    assert "public.customers.ssn" in found.sources
    assert not found.plain


def _plan(rules: MaskRules, *columns: ColumnIdentity) -> list[tuple[str, str | None, str | None]]:
    return [(c.action, c.method, c.derived_from) for c in rules.plan(list(columns)).columns]


def test_plan_masks_derived_columns_whole() -> None:
    rules = MaskRules(baseline_rules())
    derived = ColumnIdentity("lower", None, 25, frozenset({"public.customers.email"}), False, True)
    length = ColumnIdentity("length", None, 23, frozenset({"public.customers.email"}), False, True)
    clean = ColumnIdentity("lower", None, 25, frozenset({"public.vault.c1"}), False, True)
    assert _plan(rules, derived, length, clean) == [
        ("mask", "redact", "public.customers.email"),
        ("mask", "redact", "public.customers.email"),
        ("scan", None, None),
    ]


def test_plan_keeps_a_method_that_keeps_nothing() -> None:
    rules = MaskRules(
        [MaskRule("ids", method="hash", columns=["customers.customer_id"])],
        key_source=lambda: b"k" * 32,  # type: ignore[arg-type,return-value]
    )
    column = ColumnIdentity(
        "upper", None, 25, frozenset({"public.customers.customer_id"}), False, True
    )
    assert _plan(rules, column) == [("mask", "hash", "public.customers.customer_id")]


def test_plan_redacts_a_transformed_column_matched_by_name() -> None:
    rules = MaskRules(baseline_rules())
    column = ColumnIdentity("card_number", None, 25, frozenset(), False, True)
    plain = ColumnIdentity("card_number", None, 25, frozenset(), False, False)
    assert _plan(rules, column, plain) == [
        ("mask", "redact", None),
        ("mask", "last4", None),
    ]


def test_plan_reveals_when_every_source_is_revealed() -> None:
    rules = MaskRules(
        [MaskRule("open", action="reveal", columns=["customers.email"]), *baseline_rules()]
    )
    column = ColumnIdentity("lower", None, 25, frozenset({"public.customers.email"}), False, True)
    mixed = ColumnIdentity(
        "x", None, 25, frozenset({"public.customers.email", "public.customers.ssn"}), False, True
    )
    assert _plan(rules, column, mixed) == [
        ("reveal", None, "public.customers.email"),
        ("mask", "redact", "public.customers.ssn"),
    ]


def test_unknown_lineage_is_described() -> None:
    rules = MaskRules(baseline_rules())
    plan = rules.plan([ColumnIdentity("f", None, 25, frozenset(), True, True)])
    assert plan.describe()[0]["lineage"] == "unknown"
    assert plan.columns[0].action == "scan"  # the detectors still apply
