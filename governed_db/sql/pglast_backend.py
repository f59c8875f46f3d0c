"""The exact backend: PostgreSQL's own grammar through pglast (libpg_query).

The parse tree is read as JSON (``parse_sql_json``): plain dicts are several
times cheaper to build than pglast's node objects. This module dispatches on
the statement; ``pglast_walk`` visits every node below it.
"""

from __future__ import annotations

import json
from typing import Any

from pglast import parser as _parser

from governed_db.sql.lineage import UNKNOWN, Lineage
from governed_db.sql.lineage_walk import lineage_of
from governed_db.sql.pglast_ddl import ddl_facts
from governed_db.sql.pglast_walk import DML, RELATION_OBJECTS, Walker
from governed_db.sql.pglast_where import strings, to_expr
from governed_db.sql.vocabulary import Seen
from governed_db.sql.where import trivial

__all__ = ["NAME", "analyze_statement", "lineage_statement"]

NAME = "pglast"

Node = dict[str, Any]


def _limited(select: Node) -> bool:
    """LIMIT n / FETCH FIRST n (not LIMIT ALL / LIMIT NULL)."""
    count = select.get("limitCount")
    return count is not None and not count.get("A_Const", {}).get("isnull", False)


def _select(body: Node, seen: Seen, w: Walker) -> None:
    seen.operation = "select"
    into = body.get("intoClause")
    if into:
        seen.operation = "create"
        seen.effects.add("create")
        seen.objects.add("table")
        w.write(into.get("rel"))
    where = body.get("whereClause")
    seen.has_where = where is not None
    seen.where_is_trivial = where is not None and bool(
        trivial(to_expr(where), row_independent=False)
    )
    seen.has_limit = _limited(body)
    w.walk(body, frozenset())
    seen.settle_effect()


def _statement(kind: str, body: Node, seen: Seen, w: Walker) -> None:
    """Fill ``seen`` for one top-level statement node."""
    ddl_facts(kind, body, seen)
    simple = _SIMPLE.get(kind)
    if simple is not None:
        seen.operation = simple
        if kind in _TARGETS:
            for key in _TARGETS[kind]:
                target = body.get(key)
                for rv in target if isinstance(target, list) else [target]:
                    if isinstance(rv, dict):
                        w.write(rv.get("RangeVar", rv.get("relation", rv)))
        if kind == "ExecuteStmt":
            seen.executes = str(body.get("name", ""))
        elif kind == "DeallocateStmt":
            seen.deallocates = "*" if body.get("isall") or "name" not in body else body["name"]
        elif kind == "DiscardStmt" and body.get("target") == "DISCARD_ALL":
            seen.deallocates = "*"
            seen.setting(None)
        w.walk(body, frozenset())
        return
    if kind == "SelectStmt":
        _select(body, seen, w)
    elif kind in DML:
        w.dml(kind, body, frozenset())
        seen.settle_effect()
    elif kind == "ExplainStmt":
        options = {_opt(o): o["DefElem"].get("arg") for o in body.get("options", ())}
        analyze = "analyze" in options and _truthy_option(options["analyze"])
        ((inner_kind, inner),) = body["query"].items()
        _statement(inner_kind, inner, seen, w)
        if analyze:
            seen.explain_analyze = True
        elif not seen.opaque:
            seen.only_plans("explain")
    elif kind == "PrepareStmt":
        ((inner_kind, inner),) = body["query"].items()
        _statement(inner_kind, inner, seen, w)
        seen.prepares = str(body.get("name", ""))
    elif kind == "DeclareCursorStmt":
        ((inner_kind, inner),) = body["query"].items()
        _statement(inner_kind, inner, seen, w)
        seen.operation = "declare"
    elif kind == "CopyStmt":
        _copy(body, seen, w)
    elif kind == "CreateTableAsStmt":
        _create_table_as(body, seen, w)
    elif kind == "DropStmt":
        seen.operation = "drop"
        if body.get("removeType") in RELATION_OBJECTS:
            for obj in body.get("objects", ()):
                parts = strings(obj.get("List", {}).get("items", []))
                if parts:
                    schema = parts[-2] if len(parts) > 1 else "public"
                    seen.writes.add(f"{schema}.{parts[-1]}")
    elif kind in _ROLE_STMTS:
        seen.operation = _ROLE_STMTS[kind]
        seen.klass = "role"
        w.walk(body, frozenset())
    elif kind in ("GrantStmt", "GrantRoleStmt"):
        seen.operation = "grant" if body.get("is_grant") else "revoke"
    elif kind == "AlterDefaultPrivilegesStmt":
        seen.operation = "grant" if body.get("action", {}).get("is_grant") else "revoke"
    elif kind == "VariableSetStmt":
        seen.operation = "set"
        if body.get("name") in ("role", "session_authorization"):
            seen.klass = "role"
        w.walk({"VariableSetStmt": body}, frozenset())
    elif kind == "RenameStmt":
        seen.operation = "alter"
        renamed = body.get("renameType")
        if renamed in RELATION_OBJECTS or (
            body.get("relation")
            and (
                body.get("relationType") in RELATION_OBJECTS
                or renamed in ("OBJECT_COLUMN", "OBJECT_TABCONSTRAINT")
            )
        ):
            w.write(body.get("relation"))
    else:
        seen.operation = "unknown"
        seen.opaque = True
        w.walk(body, frozenset())


def _create_table_as(body: Node, seen: Seen, w: Walker) -> None:
    """CREATE TABLE / MATERIALIZED VIEW ... AS: a create, plus any write in its query."""
    seen.operation = "create"
    seen.effects.add("create")
    w.write(body.get("into", {}).get("rel"))
    ((query_kind, query),) = body["query"].items()
    if query_kind == "ExecuteStmt":  # CREATE TABLE t AS EXECUTE name: runs what name is
        seen.executes = str(query.get("name", ""))
        seen.opaque = True
    w.walk(query, frozenset())
    seen.has_limit = _limited(query)
    if seen.dml:
        seen.settle_effect()


def _opt(o: Node) -> str:
    return str(o["DefElem"]["defname"]).lower()


def _truthy_option(arg: Node | None) -> bool:
    if arg is None:
        return True
    if "String" in arg:
        return arg["String"].get("sval", "").lower() not in ("false", "off", "0", "no")
    if "Boolean" in arg:
        return bool(arg["Boolean"].get("boolval", False))
    if "Integer" in arg:
        return bool(arg["Integer"].get("ival", 0))
    return True


def _copy(body: Node, seen: Seen, w: Walker) -> None:
    if body.get("is_program"):
        seen.operation = "copy_program"
        seen.copy_endpoint = "program"
    else:
        seen.operation = "copy_from" if body.get("is_from") else "copy_to"
        seen.copy_endpoint = "file" if "filename" in body else "client"
    rel = body.get("relation")
    if rel and body.get("is_from"):
        w.write(rel)
    w.walk(body, frozenset())
    seen.settle_copy()


# Statements whose facts are just an operation, plus the written relation(s) named by keys.
_SIMPLE: dict[str, str] = {
    "TruncateStmt": "truncate",
    "CreateStmt": "create",
    "ViewStmt": "create",
    "IndexStmt": "create",
    "CreateSeqStmt": "create",
    "CreateSchemaStmt": "create",
    "CreateFunctionStmt": "create",
    "CreateExtensionStmt": "create",
    "CreateTrigStmt": "create",
    "CreateEventTrigStmt": "create",
    "CreatePolicyStmt": "create",
    "CompositeTypeStmt": "create",
    "CreateEnumStmt": "create",
    "CreateRangeStmt": "create",
    "CreateDomainStmt": "create",
    "DefineStmt": "create",
    "RuleStmt": "create",
    "CreateCastStmt": "create",
    "CreateOpClassStmt": "create",
    "CreateOpFamilyStmt": "create",
    "CreatePLangStmt": "create",
    "CreateTransformStmt": "create",
    "CreateConversionStmt": "create",
    "CreateStatsStmt": "create",
    "CreatedbStmt": "create",
    "CreateForeignTableStmt": "create",
    "ImportForeignSchemaStmt": "create",
    "AlterTableStmt": "alter",
    "AlterSeqStmt": "alter",
    "AlterObjectSchemaStmt": "alter",
    "AlterOwnerStmt": "alter",
    "AlterEnumStmt": "alter",
    "AlterTypeStmt": "alter",
    "AlterDomainStmt": "alter",
    "AlterFunctionStmt": "alter",
    "AlterExtensionStmt": "alter",
    "AlterSystemStmt": "alter",
    "AlterDatabaseStmt": "alter",
    "AlterDatabaseSetStmt": "alter",
    "DropdbStmt": "drop",
    "DropOwnedStmt": "drop",
    "CommentStmt": "comment",
    "SecLabelStmt": "security_label",
    "RefreshMatViewStmt": "refresh",
    "VacuumStmt": "vacuum",
    "ReindexStmt": "reindex",
    "ClusterStmt": "cluster",
    "LockStmt": "lock",
    "TransactionStmt": "transaction",
    "VariableShowStmt": "show",
    "ConstraintsSetStmt": "set",
    "ListenStmt": "listen",
    "UnlistenStmt": "listen",
    "NotifyStmt": "notify",
    "CheckPointStmt": "checkpoint",
    "DiscardStmt": "discard",
    "DeallocateStmt": "deallocate",
    "FetchStmt": "fetch",
    "ClosePortalStmt": "fetch",
    "CallStmt": "call",
    "DoStmt": "do",
    "ExecuteStmt": "execute",
    "LoadStmt": "load",
}

# Keys holding the relation(s) a statement changes.
_TARGETS: dict[str, tuple[str, ...]] = {
    "TruncateStmt": ("relations",),
    "CreateStmt": ("relation",),
    "ViewStmt": ("view",),
    "IndexStmt": ("relation",),
    "CreateForeignTableStmt": ("base",),
    "RefreshMatViewStmt": ("relation",),
    "ClusterStmt": ("relation",),
    "CreateTrigStmt": ("relation",),
    "CreatePolicyStmt": ("table",),
    "RuleStmt": ("relation",),
    "LockStmt": ("relations",),
}

# Statements whose relations are neither read nor written (sequences, types).
# fmt: off
_NO_WALK = frozenset({
    "CreateSeqStmt", "AlterSeqStmt", "CompositeTypeStmt", "CreateEnumStmt", "CreateRangeStmt",
    "CommentStmt", "SecLabelStmt", "ConstraintsSetStmt"
})
# fmt: on

_ROLE_STMTS = {
    "CreateRoleStmt": "create",
    "AlterRoleStmt": "alter",
    "AlterRoleSetStmt": "alter",
    "DropRoleStmt": "drop",
}


def _vacuum_targets(body: Node, w: Walker) -> None:
    for rel in body.get("rels", ()):
        w.write(rel.get("VacuumRelation", {}).get("relation"))


def lineage_statement(sql: str) -> Lineage:
    """The lineage of one statement's text (``sql.lineage``; parsed again: it is lazy)."""
    try:
        stmts = json.loads(_parser.parse_sql_json(sql)).get("stmts", [])
        if len(stmts) != 1:
            return UNKNOWN
        ((kind, body),) = stmts[0]["stmt"].items()
        return lineage_of(kind, body)
    except Exception:  # unparseable, or a lineage bug: unknown (the detectors still apply)
        return UNKNOWN


def analyze_statement(sql: str) -> Seen:
    """Analyze one statement's text (placeholders already rewritten as ``$n``)."""
    seen = Seen()
    try:
        tree = json.loads(_parser.parse_sql_json(sql))
    except _parser.ParseError:
        seen.opaque = True
        return seen
    stmts = tree.get("stmts", [])
    if len(stmts) != 1:
        seen.opaque = True
        return seen
    ((kind, body),) = stmts[0]["stmt"].items()
    w = Walker(seen)
    if kind == "VacuumStmt":
        _vacuum_targets(body, w)
        seen.operation = "vacuum" if body.get("is_vacuumcmd") else "analyze"
        w.walk(body, frozenset())
        return seen
    if kind in ("AlterTableStmt", "AlterObjectSchemaStmt", "ReindexStmt"):
        rel = body.get("relation")
        objtype = body.get("objtype") or body.get("objectType")
        if objtype in RELATION_OBJECTS or body.get("kind") == "REINDEX_OBJECT_TABLE":
            w.write(rel)
        elif rel:
            w.exclude.add(id(rel))
    if kind in _NO_WALK:
        ddl_facts(kind, body, seen)
        seen.operation = _SIMPLE.get(kind, "create")
        return seen
    _statement(kind, body, seen, w)
    return seen
