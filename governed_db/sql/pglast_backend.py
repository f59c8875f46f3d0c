"""The exact backend: PostgreSQL's own grammar through pglast (libpg_query).

The parse tree is read as JSON (``parse_sql_json``): plain dicts are several
times cheaper to build than pglast's node objects. Every node is walked, so a
write or a dangerous call hidden in a CTE, a subquery or an EXPLAIN is found.
"""

from __future__ import annotations

import json
from typing import Any

from pglast import parser as _parser

from governed_db.sql.pglast_where import strings, to_expr
from governed_db.sql.vocabulary import Seen, Write
from governed_db.sql.where import always_true

__all__ = ["NAME", "analyze_statement"]

NAME = "pglast"

Node = dict[str, Any]

_DML = {
    "InsertStmt": "insert",
    "UpdateStmt": "update",
    "DeleteStmt": "delete",
    "MergeStmt": "merge",
}
_RELATION_OBJECTS = frozenset(
    {"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE"}
)
# Keys whose subtrees never hold a relation, a call or a statement: not walked.
_LEAVES = frozenset(
    {
        "String",
        "A_Const",
        "ColumnRef",
        "ParamRef",
        "typeName",
        "TypeName",
        "Integer",
        "Float",
        "Boolean",
        "A_Star",
        "name",
        "funcname",
        "alias",
        "Alias",
        "colnames",
    }
)


def _name(rv: Node) -> str:
    return f"{rv.get('schemaname', 'public')}.{rv.get('relname', '')}"


class _Walker:
    """Collects tables, writes and functions from every node of one statement."""

    __slots__ = ("exclude", "seen")

    def __init__(self, seen: Seen) -> None:
        self.seen = seen
        self.exclude: set[int] = set()

    def read(self, rv: Node, ctes: frozenset[str]) -> None:
        if id(rv) in self.exclude:
            return
        if "schemaname" not in rv and rv.get("relname") in ctes:
            return
        self.seen.reads.add(_name(rv))

    def write(self, rv: Node | None) -> None:
        if rv:
            self.exclude.add(id(rv))
            self.seen.writes.add(_name(rv))

    def with_clause(self, wc: Node, ctes: frozenset[str]) -> frozenset[str]:
        """Walk CTE bodies with the names each may see; return the scope for the main query."""
        items = [c["CommonTableExpr"] for c in wc.get("ctes", ())]
        names = [c["ctename"] for c in items]
        everything = ctes | frozenset(names)
        for i, cte in enumerate(items):
            scope = everything if wc.get("recursive") else ctes | frozenset(names[:i])
            self.walk(cte.get("ctequery"), scope)
        return everything

    def dml(self, kind: str, body: Node, ctes: frozenset[str]) -> None:
        op = _DML[kind]
        if "withClause" in body:
            ctes = self.with_clause(body["withClause"], ctes)
        self.write(body.get("relation"))
        where: Node | None = body.get("joinCondition") if op == "merge" else body.get("whereClause")
        trivial = where is not None and always_true(to_expr(where))
        self.seen.dml.append(Write(op, where is not None, trivial))
        for key, val in body.items():
            if key not in ("relation", "withClause"):
                self.walk(val, ctes)

    def walk(self, node: Any, ctes: frozenset[str]) -> None:
        """Visit ``node`` (a dict or list) and everything below it."""
        if type(node) is list:
            for item in node:
                if type(item) is dict:
                    self.walk(item, ctes)
            return
        if type(node) is not dict:
            return
        if "relname" in node:
            self.read(node, ctes)
            return
        if "withClause" in node:
            ctes = self.with_clause(node["withClause"], ctes)
        for key, val in node.items():
            if key in _LEAVES:
                continue
            kind = type(val)
            if kind is dict:
                if key in _DML:
                    self.dml(key, val, ctes)
                    continue
                if key == "withClause":
                    continue
                if key == "FuncCall":
                    names = strings(val.get("funcname", []))
                    if names:
                        self.seen.function(names[-1])
                self.walk(val, ctes)
            elif kind is list:
                for item in val:
                    if type(item) is dict:
                        self.walk(item, ctes)


def _limited(select: Node) -> bool:
    """LIMIT n / FETCH FIRST n (not LIMIT ALL / LIMIT NULL)."""
    count = select.get("limitCount")
    return count is not None and not count.get("A_Const", {}).get("isnull", False)


def _select(body: Node, seen: Seen, w: _Walker) -> None:
    seen.operation = "select"
    into = body.get("intoClause")
    if into:
        seen.operation = "create"
        w.write(into.get("rel"))
    where = body.get("whereClause")
    seen.has_where = where is not None
    seen.where_is_trivial = where is not None and always_true(to_expr(where))
    seen.has_limit = _limited(body)
    w.walk(body, frozenset())
    seen.settle_effect()


def _statement(kind: str, body: Node, seen: Seen, w: _Walker) -> None:
    """Fill ``seen`` for one top-level statement node."""
    simple = _SIMPLE.get(kind)
    if simple is not None:
        seen.operation = simple
        if kind in _TARGETS:
            for key in _TARGETS[kind]:
                target = body.get(key)
                for rv in target if isinstance(target, list) else [target]:
                    if isinstance(rv, dict):
                        w.write(rv.get("RangeVar", rv))
        w.walk(body, frozenset())
        return
    if kind == "SelectStmt":
        _select(body, seen, w)
    elif kind in _DML:
        w.dml(kind, body, frozenset())
        seen.settle_effect()
    elif kind == "ExplainStmt":
        options = {_opt(o): o["DefElem"].get("arg") for o in body.get("options", ())}
        analyze = "analyze" in options and _truthy_option(options["analyze"])
        ((inner_kind, inner),) = body["query"].items()
        _statement(inner_kind, inner, seen, w)
        if not analyze and not seen.opaque:
            seen.only_plans("explain")
    elif kind == "PrepareStmt":
        ((inner_kind, inner),) = body["query"].items()
        _statement(inner_kind, inner, seen, w)
        if not seen.opaque:
            seen.only_plans("prepare")
    elif kind == "DeclareCursorStmt":
        ((inner_kind, inner),) = body["query"].items()
        _statement(inner_kind, inner, seen, w)
        seen.operation = "declare"
    elif kind == "CopyStmt":
        _copy(body, seen, w)
    elif kind == "CreateTableAsStmt":
        seen.operation = "create"
        w.write(body.get("into", {}).get("rel"))
        ((_q, query),) = body["query"].items()
        w.walk(query, frozenset())
        seen.has_limit = _limited(query)
    elif kind == "DropStmt":
        seen.operation = "drop"
        if body.get("removeType") in _RELATION_OBJECTS:
            for obj in body.get("objects", ()):
                parts = strings(obj.get("List", {}).get("items", []))
                if parts:
                    schema = parts[-2] if len(parts) > 1 else "public"
                    seen.writes.add(f"{schema}.{parts[-1]}")
    elif kind in _ROLE_STMTS:
        seen.operation = _ROLE_STMTS[kind]
        seen.klass = "role"
    elif kind in ("GrantStmt", "GrantRoleStmt"):
        seen.operation = "grant" if body.get("is_grant") else "revoke"
    elif kind == "AlterDefaultPrivilegesStmt":
        seen.operation = "grant" if body.get("action", {}).get("is_grant") else "revoke"
    elif kind == "VariableSetStmt":
        seen.operation = "set"
        if body.get("name") in ("role", "session_authorization"):
            seen.klass = "role"
        w.walk(body, frozenset())
    elif kind == "RenameStmt":
        seen.operation = "alter"
        if body.get("renameType") in _RELATION_OBJECTS or (
            body.get("relationType") in _RELATION_OBJECTS and body.get("relation")
        ):
            w.write(body.get("relation"))
    else:
        seen.operation = "unknown"
        seen.opaque = True
        w.walk(body, frozenset())


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


def _copy(body: Node, seen: Seen, w: _Walker) -> None:
    if body.get("is_program"):
        seen.operation = "copy_program"
    else:
        seen.operation = "copy_from" if body.get("is_from") else "copy_to"
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
    "CreatePolicyStmt": "create",
    "CompositeTypeStmt": "create",
    "CreateEnumStmt": "create",
    "CreateDomainStmt": "create",
    "DefineStmt": "create",
    "RuleStmt": "create",
    "CreatedbStmt": "create",
    "CreateForeignTableStmt": "create",
    "ImportForeignSchemaStmt": "create",
    "AlterTableStmt": "alter",
    "AlterSeqStmt": "alter",
    "AlterObjectSchemaStmt": "alter",
    "AlterOwnerStmt": "alter",
    "AlterEnumStmt": "alter",
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
    "CreateForeignTableStmt": ("relation",),
    "RefreshMatViewStmt": ("relation",),
    "ClusterStmt": ("relation",),
    "CreateTrigStmt": ("relation",),
    "CreatePolicyStmt": ("table",),
    "RuleStmt": ("relation",),
    "LockStmt": ("relations",),
}

# Statements whose relations are neither read nor written (sequences, types).
_NO_WALK = frozenset(
    {
        "CreateSeqStmt",
        "AlterSeqStmt",
        "CompositeTypeStmt",
        "CreateEnumStmt",
        "CommentStmt",
        "SecLabelStmt",
        "ConstraintsSetStmt",
    }
)

_ROLE_STMTS = {
    "CreateRoleStmt": "create",
    "AlterRoleStmt": "alter",
    "AlterRoleSetStmt": "alter",
    "DropRoleStmt": "drop",
}


def _vacuum_targets(body: Node, w: _Walker) -> None:
    for rel in body.get("rels", ()):
        w.write(rel.get("VacuumRelation", {}).get("relation"))


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
    w = _Walker(seen)
    if kind == "VacuumStmt":
        _vacuum_targets(body, w)
        seen.operation = "vacuum" if body.get("is_vacuumcmd") else "analyze"
        w.walk(body, frozenset())
        return seen
    if kind in ("AlterTableStmt", "AlterObjectSchemaStmt", "ReindexStmt"):
        rel = body.get("relation")
        objtype = body.get("objtype") or body.get("objectType")
        if objtype in _RELATION_OBJECTS or body.get("kind") == "REINDEX_OBJECT_TABLE":
            w.write(rel)
        elif rel:
            w.exclude.add(id(rel))
    if kind in _NO_WALK:
        seen.operation = _SIMPLE.get(kind, "create")
        return seen
    _statement(kind, body, seen, w)
    return seen
