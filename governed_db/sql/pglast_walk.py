"""The pglast backend's tree walker: tables, writes, row locks, settings and calls.

Every node of a statement is visited, so a write, a row lock, a setting or a
dangerous call hidden in a CTE, a subquery or an EXPLAIN is found.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from governed_db.sql.pglast_where import from_items, scan_of, strings, to_expr
from governed_db.sql.scope import Scope, ScopeItem
from governed_db.sql.vocabulary import Seen, Write
from governed_db.sql.where import Expr, trivial

__all__ = ["DML", "RELATION_OBJECTS", "Walker", "setting_names"]

Node = dict[str, Any]

DML = {
    "InsertStmt": "insert",
    "UpdateStmt": "update",
    "DeleteStmt": "delete",
    "MergeStmt": "merge",
}
RELATION_OBJECTS = frozenset(
    {"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE"}
)
# Keys whose subtrees never hold a relation, a call, a statement or a setting: not walked.
# fmt: off
_LEAVES = frozenset({
    "String", "A_Const", "ColumnRef", "ParamRef", "typeName", "TypeName", "Integer", "Float",
    "Boolean", "A_Star", "name", "funcname", "alias", "Alias", "colnames", "lockedRels"
})
# fmt: on
_LOCK_STRENGTHS = {
    "LCS_FORUPDATE": "update",
    "LCS_FORNOKEYUPDATE": "no key update",
    "LCS_FORSHARE": "share",
    "LCS_FORKEYSHARE": "key share",
}
_LOCK_WAITS = {"LockWaitError": "nowait", "LockWaitSkip": "skip locked"}
_MERGE_ACTIONS = {"CMD_UPDATE": "update", "CMD_DELETE": "delete", "CMD_INSERT": "insert"}


def _all(condition: Expr, joined: list[Expr]) -> Expr:
    return ("and", (condition, *joined)) if joined else condition


def _name(rv: Node) -> str:
    return f"{rv.get('schemaname', 'public')}.{rv.get('relname', '')}"


def setting_names(body: Node) -> list[str | None]:
    """The parameters a VariableSetStmt changes (None: all of them)."""
    kind = body.get("kind")
    name = str(body.get("name", ""))
    if kind == "VAR_RESET_ALL":
        return [None]
    if kind == "VAR_SET_MULTI":
        defnames = [str(a["DefElem"]["defname"]) for a in body.get("args", ()) if "DefElem" in a]
        if name == "TRANSACTION":
            return list(defnames)
        if name == "SESSION CHARACTERISTICS":
            return [f"default_{d}" for d in defnames]
        if name == "TRANSACTION SNAPSHOT":
            return ["transaction_snapshot"]
        return [None]
    return [name]


def _set_config_name(call: Node) -> str | None:
    """The literal first argument of set_config(), else None (any parameter)."""
    args = call.get("args") or []
    if not args:
        return None
    first = args[0]
    if "TypeCast" in first:
        first = first["TypeCast"]["arg"]
    value = first.get("A_Const", {}).get("sval")
    return None if value is None else str(value.get("sval", ""))


class Walker:
    """Collects tables, writes, locks, settings and functions from every node of a statement."""

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
        op = DML[kind]
        if "withClause" in body:
            ctes = self.with_clause(body["withClause"], ctes)
        target = body.get("relation")
        self.write(target)
        seen = self.seen
        if op == "insert":
            seen.dml.append(Write("insert", False, False))
            conflict = body.get("onConflictClause")
            if conflict and conflict.get("action") == "ONCONFLICT_UPDATE":
                # Only the rows that conflict are updated: a WHERE of its own kind, wide
                # when the rows inserted are the table's own.
                wide = self.upsert_overwrites(body, conflict, ctes)
                seen.dml.append(Write("update", True, wide, primary=False))
        else:
            others = body.get("sourceRelation") if op == "merge" else None
            others = [others] if others else body.get("usingClause") or body.get("fromClause")
            items = from_items([{"RangeVar": target}], target=True, ctes=frozenset())
            filters: list[tuple[Node, ScopeItem]] = []
            bodies = {
                c["CommonTableExpr"]["ctename"]: c["CommonTableExpr"]["ctequery"]
                for c in body.get("withClause", {}).get("ctes", ())
                if "SelectStmt" in c["CommonTableExpr"].get("ctequery", {})
                and not body["withClause"].get("recursive")
            }
            sources = from_items(others, ctes=ctes, filters=filters, bodies=bodies)
            scope = Scope().push([*items, *sources])
            table = scope.target_table()
            joined = [  # what a renaming subquery in USING keeps: its rows' own WHERE
                to_expr(where, Scope().push([replace(item, target=item.table == table)]))
                for where, item in filters
            ]
            if op == "merge":
                self.merge(body, scope, joined)
            else:
                where = body.get("whereClause")
                wide = where is not None and bool(trivial(_all(to_expr(where, scope), joined)))
                seen.dml.append(Write(op, where is not None, wide))
        for key, val in body.items():
            if key not in ("relation", "withClause"):
                self.walk(val, ctes)

    def upsert_overwrites(self, body: Node, conflict: Node, ctes: frozenset[str]) -> bool:
        """Could ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` update every row?

        Yes when the rows it inserts are read from the target table itself: each
        one conflicts with the row it was read from. ``SELECT ... FROM target
        WHERE w`` updates the rows ``w`` keeps; any other source that reads the
        target (a join, a CTE, a subquery) may keep them all. A ``DO UPDATE ...
        WHERE`` on the target's own columns narrows it.
        """
        rv = body["relation"]
        table = _name(rv)
        probe = Walker(Seen())
        inner = probe.with_clause(body["withClause"], ctes) if "withClause" in body else ctes
        source = body.get("selectStmt")
        probe.walk(source, inner)
        if table not in probe.seen.reads:
            return False
        select = (source or {}).get("SelectStmt", {})
        found = scan_of(select, inner)
        if found is None or found[1] != table:
            wide = True
        else:
            item = replace(found[2], target=True)
            where = select.get("whereClause")
            wide = where is None or bool(trivial(to_expr(where, Scope().push([item]))))
        condition = conflict.get("whereClause")
        if wide and condition is not None:
            items = [*from_items([{"RangeVar": rv}], target=True, ctes=frozenset())]
            scope = Scope().push([*items, ScopeItem("excluded")])
            wide = bool(trivial(to_expr(condition, scope)))
        return wide

    def merge(self, body: Node, scope: Scope, joined: list[Expr]) -> None:
        """Each WHEN action is an effect; ON (and the action's AND) is its WHERE."""
        on = _all(to_expr(body["joinCondition"], scope), joined)
        matched = bool(trivial(on))
        unmatched = matched or bool(trivial(("not", on)))
        any_wide = False
        for clause in body.get("mergeWhenClauses", ()):
            when = clause["MergeWhenClause"]
            action = _MERGE_ACTIONS.get(when.get("commandType", ""))
            if action is None:
                continue
            wide = False
            if action != "insert":
                by_source = when.get("matchKind") == "MERGE_WHEN_NOT_MATCHED_BY_SOURCE"
                condition = when.get("condition")
                extra = condition is None or bool(trivial(to_expr(condition, scope)))
                wide = (unmatched if by_source else matched) and extra
                any_wide = any_wide or wide
            self.seen.dml.append(Write(action, True, wide, primary=False))
        self.seen.dml.append(Write("merge", True, any_wide))

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
                special = _SPECIAL.get(key)
                if special is not None:
                    if special(self, val, ctes):
                        continue
                elif key == "withClause":
                    continue
                self.walk(val, ctes)
            elif kind is list:
                for item in val:
                    if type(item) is dict:
                        self.walk(item, ctes)

    # -- nodes with something to record (return True when their subtree is done) ---------------
    def _dml_node(self, val: Node, ctes: frozenset[str], kind: str) -> bool:
        self.dml(kind, val, ctes)
        return True

    def _call(self, val: Node, ctes: frozenset[str]) -> bool:
        names = strings(val.get("funcname", []))
        if names:
            name = names[-1].lower()
            self.seen.function(name)
            if name == "set_config":
                self.seen.setting(_set_config_name(val))
        return False

    def _lock(self, val: Node, ctes: frozenset[str]) -> bool:
        self.seen.row_locks.add(_LOCK_STRENGTHS.get(val.get("strength", ""), "update"))
        wait = _LOCK_WAITS.get(val.get("waitPolicy", ""))
        if wait:
            self.seen.lock_waits.add(wait)
        return True

    def _set(self, val: Node, ctes: frozenset[str]) -> bool:
        for name in setting_names(val):
            self.seen.setting(name)
        return False


_SPECIAL: dict[str, Any] = {
    "InsertStmt": lambda w, v, c: w._dml_node(v, c, "InsertStmt"),
    "UpdateStmt": lambda w, v, c: w._dml_node(v, c, "UpdateStmt"),
    "DeleteStmt": lambda w, v, c: w._dml_node(v, c, "DeleteStmt"),
    "MergeStmt": lambda w, v, c: w._dml_node(v, c, "MergeStmt"),
    "FuncCall": Walker._call,
    "LockingClause": Walker._lock,
    "VariableSetStmt": Walker._set,
    "setstmt": Walker._set,  # ALTER SYSTEM / ROLE / DATABASE ... SET: the bare node
}
