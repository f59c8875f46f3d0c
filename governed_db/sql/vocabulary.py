"""The words Facts are written in: operations, their classes, dangerous functions.

Both backends fill a ``Seen`` while reading a statement and turn it into a
``StatementFacts`` with ``Seen.facts``, so class rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from governed_db.sql.facts import CLASS_RANK, StatementFacts

__all__ = [
    "ALTER_ACTIONS",
    "COPY_ENDPOINTS",
    "DANGEROUS_FUNCTIONS",
    "DANGEROUS_FUNCTION_PREFIXES",
    "LOCK_WAITS",
    "OBJECT_KINDS",
    "OPERATIONS",
    "OPERATION_CLASS",
    "ROW_LOCKS",
    "WRITE_RANK",
    "Seen",
    "Write",
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

#: Row-locking strengths (``SELECT ... FOR <strength>``) and how a lock waits.
ROW_LOCKS: frozenset[str] = frozenset({"update", "no key update", "share", "key share"})
LOCK_WAITS: frozenset[str] = frozenset({"nowait", "skip locked"})

#: The other end of a COPY (``StatementFacts.copy_endpoint``).
COPY_ENDPOINTS: frozenset[str] = frozenset({"client", "file", "program"})

#: What CREATE / ALTER / DROP can act on (``StatementFacts.objects``).
# fmt: off
OBJECT_KINDS: frozenset[str] = frozenset({
    "access_method", "aggregate", "cast", "collation", "conversion", "database",
    "default_privileges", "domain", "event_trigger", "extension", "foreign_data_wrapper",
    "foreign_table", "function", "index", "language", "large_object", "materialized_view",
    "operator", "operator_class", "operator_family", "parameter", "policy", "procedure",
    "publication", "role", "routine", "rule", "schema", "sequence", "server", "statistics",
    "subscription", "table", "tablespace", "text_search_configuration",
    "text_search_dictionary", "text_search_parser", "text_search_template", "transform",
    "trigger", "type", "user_mapping", "view"
})
# fmt: on

#: What an ALTER does to a table (or view, index, sequence, composite type):
#: ``StatementFacts.alter_actions``. "other" is anything not named here.
# fmt: off
ALTER_ACTIONS: frozenset[str] = frozenset({
    "add_column", "drop_column", "alter_type", "alter_type_using", "set_default",
    "drop_default", "set_not_null", "drop_not_null", "set_expression", "drop_expression",
    "add_identity", "set_identity", "drop_identity", "set_statistics", "set_storage",
    "set_compression", "set_options", "reset_options", "add_constraint", "drop_constraint",
    "alter_constraint", "validate_constraint", "rename", "owner", "set_schema",
    "set_tablespace", "set_access_method", "set_logged", "set_unlogged", "cluster_on",
    "set_without_cluster", "enable_trigger", "disable_trigger", "enable_rule", "disable_rule",
    "enable_row_security", "disable_row_security", "force_row_security",
    "no_force_row_security", "replica_identity", "inherit", "no_inherit", "of_type", "not_of",
    "attach_partition", "detach_partition", "other"
})
# fmt: on

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
        # large objects: server files, and writes outside any table
        "lo_import",
        "lo_export",
        "lo_unlink",
        "lo_put",
        "lo_truncate",
        "lo_truncate64",
        "lowrite",
        "lo_create",
        "lo_creat",
        "lo_from_bytea",
        # data and planner statistics changed outside DML
        "setval",
        "pg_clear_relation_stats",
        "pg_clear_attribute_stats",
        "pg_restore_relation_stats",
        "pg_restore_attribute_stats",
        "pg_set_relation_stats",
        "pg_set_attribute_stats",
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
        "pg_logical_slot_get_changes",
        "pg_logical_slot_get_binary_changes",
        "pg_replication_slot_advance",
        "pg_wal_replay_pause",
        "pg_wal_replay_resume",
        "pg_truncate_visibility_map",
        # monitoring data wiped
        "pg_stat_statements_reset",
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

# Families matched by prefix: dblink, dblink_exec, dblink_connect, ...; pg_stat_reset,
# pg_stat_reset_shared, ...; pg_replication_origin_create, _drop, _advance, ...
DANGEROUS_FUNCTION_PREFIXES: tuple[str, ...] = (
    "dblink",
    "pg_stat_reset",
    "pg_replication_origin_",
)


def dangerous(name: str) -> bool:
    """True if the (lower-case, unqualified) function name is on the list."""
    return name in DANGEROUS_FUNCTIONS or name.startswith(DANGEROUS_FUNCTION_PREFIXES)


@dataclass(slots=True)
class Write:
    """One data-changing statement found inside a statement (possibly in a CTE).

    ``primary`` is False for what a statement does besides its own verb: the
    update of an upsert, the actions of a MERGE.
    """

    operation: str
    has_where: bool
    trivial: bool
    primary: bool = True


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
    effects: set[str] = field(default_factory=set)
    row_locks: set[str] = field(default_factory=set)
    lock_waits: set[str] = field(default_factory=set)
    explain_analyze: bool = False
    prepares: str | None = None
    executes: str | None = None
    deallocates: str | None = None
    settings: set[str] = field(default_factory=set)
    objects: set[str] = field(default_factory=set)
    alter_actions: set[str] = field(default_factory=set)
    copy_endpoint: str | None = None

    def function(self, name: str) -> None:
        """Record a call to ``name`` if it is dangerous."""
        name = name.lower()
        if dangerous(name):
            self.functions.add(name)

    def setting(self, name: str | None) -> None:
        """Record a changed configuration parameter (None: a name not known before it runs)."""
        self.settings.add("*" if name is None else name.lower())

    def settle_effect(self) -> None:
        """Let the most consequential nested write decide operation and WHERE facts.

        Every write found becomes an effect. When any DELETE/UPDATE occurs
        (an upsert's update and a MERGE's actions included), ``has_where`` holds
        only if every one has a WHERE, and ``where_is_trivial`` if any has a
        trivial one.
        """
        if not self.dml:
            return
        primaries = [w for w in self.dml if w.primary] or self.dml
        self.operation = max(primaries, key=lambda w: WRITE_RANK[w.operation]).operation
        self.effects.update(w.operation for w in self.dml)
        risky = [w for w in self.dml if w.operation in ("delete", "update")]
        if not risky:
            risky = [w for w in primaries if w.operation == self.operation]
        self.has_where = all(w.has_where for w in risky)
        self.where_is_trivial = any(w.trivial for w in risky)
        self.has_limit = False
        self.klass = None

    def settle_copy(self) -> None:
        """``COPY (DELETE ... RETURNING ...) TO`` is a delete; a PROGRAM stays copy_program.

        Either way the query's write is an effect, with its WHERE facts.
        """
        copying = self.operation
        self.settle_effect()
        self.effects.add(copying)
        if copying == "copy_program":
            self.operation = copying

    def only_plans(self, operation: str) -> None:
        """The statement is planned, not run (EXPLAIN): what it names is only read."""
        self.reads |= self.writes
        self.writes = set()
        self.dml = []
        self.effects = set()
        self.row_locks = set()
        self.lock_waits = set()
        self.executes = None
        self.operation = operation
        self.klass = None
        self.has_where = self.where_is_trivial = self.has_limit = False

    def facts(self, text: str, normalized: str, fingerprint: str) -> StatementFacts:
        """Freeze into StatementFacts, deriving the class from every effect."""
        operation = self.operation if self.operation in OPERATION_CLASS else "unknown"
        effects = {e for e in self.effects if e in OPERATION_CLASS}
        effects.add(operation)
        if len(effects) > 1:
            effects.discard("select")
        klass = self.klass or max(
            (OPERATION_CLASS[e] for e in effects), key=lambda c: CLASS_RANK[c]
        )
        settings = self.settings
        if any(t.rsplit(".", 1)[-1] == "pg_settings" for t in self.writes):
            settings = {*settings, "*"}  # its UPDATE rule calls set_config()
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
            effects=frozenset(effects),
            row_locks=frozenset(self.row_locks),
            lock_waits=frozenset(self.lock_waits),
            explain_analyze=self.explain_analyze,
            prepares=self.prepares,
            executes=self.executes,
            deallocates=self.deallocates,
            settings=frozenset(settings),
            objects=frozenset(self.objects),
            alter_actions=frozenset(self.alter_actions),
            copy_endpoint=self.copy_endpoint,
            text=text,
            normalized=normalized,
            fingerprint=fingerprint,
        )
