"""The words Facts are written in: operations, their classes, dangerous functions.

Both backends fill a ``Seen`` while reading a statement and turn it into a
``StatementFacts`` with ``Seen.facts``, so class rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from governed_db.sql.facts import CLASS_RANK, StatementFacts

__all__ = [
    "DANGEROUS_FUNCTIONS",
    "DANGEROUS_FUNCTION_PREFIXES",
    "OPERATIONS",
    "OPERATION_CLASS",
    "WRITE_RANK",
    "Seen",
    "dangerous",
]

# operation -> default statement class (pgaudit-like). Some statements override
# it: CREATE/ALTER/DROP ROLE and SET ROLE are "role"; see Seen.klass.
OPERATION_CLASS: dict[str, str] = {
    # read
    "select": "read",
    "explain": "read",  # EXPLAIN without ANALYZE plans but does not run
    "copy_to": "read",
    "declare": "read",
    # write
    "insert": "write",
    "update": "write",
    "delete": "write",
    "merge": "write",
    "truncate": "write",
    "copy_from": "write",
    "refresh": "write",
    # ddl
    "create": "ddl",
    "alter": "ddl",
    "drop": "ddl",
    "comment": "ddl",
    "security_label": "ddl",
    # role
    "grant": "role",
    "revoke": "role",
    # function: runs code outside SQL's view
    "copy_program": "function",
    # misc
    "set": "misc",
    "show": "misc",
    "transaction": "misc",
    "lock": "misc",
    "listen": "misc",
    "notify": "misc",
    "vacuum": "misc",
    "analyze": "misc",
    "reindex": "misc",
    "cluster": "misc",
    "checkpoint": "misc",
    "discard": "misc",
    "prepare": "misc",
    "deallocate": "misc",
    "fetch": "misc",
    "empty": "misc",
    # opaque: cannot be seen through
    "call": "opaque",
    "do": "opaque",
    "execute": "opaque",
    "load": "opaque",
    "unknown": "opaque",
}

OPERATIONS: frozenset[str] = frozenset(OPERATION_CLASS)

# Which write wins when one statement does several (WITH ... DELETE ... INSERT).
WRITE_RANK: dict[str, int] = {"insert": 1, "update": 2, "merge": 3, "delete": 4}

# Functions that read/write server files, run programs, reach other servers,
# signal backends, change settings, stall the server or dump whole queries.
DANGEROUS_FUNCTIONS: frozenset[str] = frozenset(
    {
        # server files
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_ls_logdir",
        "pg_ls_waldir",
        "pg_ls_tmpdir",
        "pg_ls_archive_statusdir",
        "pg_stat_file",
        "pg_file_write",
        "pg_file_rename",
        "pg_file_unlink",
        "pg_file_sync",
        "pg_logdir_ls",
        # large objects <-> server files
        "lo_import",
        "lo_export",
        # other backends / server control
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_start_backup",
        "pg_stop_backup",
        "pg_drop_replication_slot",
        "pg_create_logical_replication_slot",
        "pg_create_physical_replication_slot",
        "pg_logical_emit_message",
        # settings
        "set_config",
        # stalls
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        # run arbitrary queries from a string
        "query_to_xml",
        "query_to_xml_and_xmlschema",
        "query_to_xmlschema",
        "cursor_to_xml",
        "table_to_xml",
        "table_to_xml_and_xmlschema",
        "schema_to_xml",
        "database_to_xml",
    }
)

# Families matched by prefix: dblink, dblink_exec, dblink_connect, ...
DANGEROUS_FUNCTION_PREFIXES: tuple[str, ...] = ("dblink",)


def dangerous(name: str) -> bool:
    """True if the (lower-case, unqualified) function name is on the list."""
    return name in DANGEROUS_FUNCTIONS or name.startswith(DANGEROUS_FUNCTION_PREFIXES)


@dataclass(slots=True)
class Write:
    """One data-changing statement found inside a statement (possibly in a CTE)."""

    operation: str
    has_where: bool
    trivial: bool


@dataclass(slots=True)
class Seen:
    """What a backend saw in one statement, before it becomes StatementFacts."""

    operation: str = "unknown"
    klass: str | None = None
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    dml: list[Write] = field(default_factory=list)
    has_where: bool = False
    where_is_trivial: bool = False
    has_limit: bool = False
    functions: set[str] = field(default_factory=set)
    opaque: bool = False

    def function(self, name: str) -> None:
        """Record a call to ``name`` if it is dangerous."""
        name = name.lower()
        if dangerous(name):
            self.functions.add(name)

    def settle_effect(self) -> None:
        """Let the most consequential nested write decide operation and WHERE facts.

        When any DELETE/UPDATE occurs, ``has_where`` holds only if every one has
        a WHERE, and ``where_is_trivial`` if any has a trivial one.
        """
        if not self.dml:
            return
        self.operation = max(self.dml, key=lambda w: WRITE_RANK[w.operation]).operation
        risky = [w for w in self.dml if w.operation in ("delete", "update")]
        if not risky:
            risky = [w for w in self.dml if w.operation == self.operation]
        self.has_where = all(w.has_where for w in risky)
        self.where_is_trivial = any(w.trivial for w in risky)
        self.has_limit = False
        self.klass = None

    def settle_copy(self) -> None:
        """``COPY (DELETE ... RETURNING ...) TO`` is a delete; a PROGRAM stays copy_program."""
        if self.operation != "copy_program":
            self.settle_effect()

    def only_plans(self, operation: str) -> None:
        """The statement is planned, not run (EXPLAIN, PREPARE): what it names is only read."""
        self.reads |= self.writes
        self.writes = set()
        self.dml = []
        self.operation = operation
        self.klass = None
        self.has_where = self.where_is_trivial = self.has_limit = False

    def facts(self, text: str, normalized: str, fingerprint: str) -> StatementFacts:
        """Freeze into StatementFacts, deriving the class."""
        operation = self.operation if self.operation in OPERATION_CLASS else "unknown"
        klass = self.klass or OPERATION_CLASS[operation]
        opaque = self.opaque or klass == "opaque"
        if opaque:
            klass = "opaque"
        elif self.functions and CLASS_RANK[klass] < CLASS_RANK["function"]:
            klass = "function"
        return StatementFacts(
            operation=operation,
            statement_class=klass,
            tables_read=frozenset(self.reads),
            tables_written=frozenset(self.writes),
            has_where=self.has_where,
            where_is_trivial=self.where_is_trivial,
            has_limit=self.has_limit,
            functions=frozenset(self.functions),
            opaque=opaque,
            text=text,
            normalized=normalized,
            fingerprint=fingerprint,
        )
