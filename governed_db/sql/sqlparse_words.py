"""Word lists the sqlparse backend reads PostgreSQL's grammar with."""

from __future__ import annotations

__all__ = [
    "ACTIONS",
    "CLAUSE_END",
    "COLUMN_ACTIONS",
    "ISOLATION_LEVELS",
    "LOCKS",
    "RESERVED",
    "SET_FORMS",
    "SPECIAL_CALLS",
    "SQL_TYPES",
    "STOP",
    "TRANSACTION_MODES",
    "TRIM_WORDS",
    "VALUE_FUNCTIONS",
]

# Words that end a primary (they belong to the grammar around it).
# fmt: off
STOP = frozenset({
    "and", "or", "not", "is", "in", "between", "like", "ilike", "similar", "then", "else",
    "end", "when", "as", "from", "for", "escape", "isnull", "notnull", "asc", "desc", "nulls",
    "select", "where", "exists", "on", "using", "order", "group", "having", "limit", "offset",
    "union", "intersect", "except", "into", "returning", "default", "with", "values", "table",
    "only", "lateral", "join"
})
# fmt: on
# Words PostgreSQL reads as functions of no argument, not as columns.
# fmt: off
VALUE_FUNCTIONS = frozenset({
    "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
    "current_role", "current_user", "session_user", "user", "current_catalog", "current_schema",
    "system_user"
})
# fmt: on
# Function-call forms with keywords between arguments: the keywords that split them,
# and whether the first part is a keyword (EXTRACT(year FROM x)).
SPECIAL_CALLS = {
    "extract": (frozenset({"from"}), True),
    "substring": (frozenset({"from", "for", "similar", "escape"}), False),
    "position": (frozenset({"in"}), False),
    "overlay": (frozenset({"placing", "from", "for"}), False),
    "trim": (frozenset({"from"}), False),
}
TRIM_WORDS = frozenset({"both", "leading", "trailing"})
# SQL-standard type names PostgreSQL's grammar turns into pg_catalog types.
SQL_TYPES = {
    "int": "int4",
    "integer": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "real": "float4",
    "float": "float8",
    "boolean": "bool",
    "decimal": "numeric",
    "dec": "numeric",
    "numeric": "numeric",
    "char": "bpchar",
    "character": "bpchar",
    "varchar": "varchar",
    "timestamp": "timestamp",
    "time": "time",
    "interval": "interval",
    "bit": "bit",
}


# Words that end a WHERE (or ON) condition at the same level.
# fmt: off
CLAUSE_END = frozenset({
    "group", "having", "window", "order", "limit", "offset", "fetch", "for", "union",
    "intersect", "except", "returning", "join", "inner", "left", "right", "full",
    "cross", "natural", "where", "on",
})
# fmt: on
# Words that are never a table alias (PostgreSQL's reserved words, roughly).
# fmt: off
RESERVED = frozenset({
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both",
    "case", "cast", "check", "collate", "column", "constraint", "create", "cross",
    "current_date", "default", "desc", "distinct", "do", "else", "end", "except", "false",
    "fetch", "for", "foreign", "from", "full", "grant", "group", "having", "in", "inner",
    "intersect", "into", "is", "join", "lateral", "leading", "left", "limit", "natural", "not",
    "null", "offset", "on", "only", "or", "order", "outer", "primary", "references",
    "returning", "right", "select", "set", "some", "table", "tablesample", "then", "to",
    "true", "union", "unique", "user", "using", "values", "when", "where", "window", "with",
})
# fmt: on
LOCKS = {
    ("update",): "update",
    ("share",): "share",
    ("no", "key", "update"): "no key update",
    ("key", "share"): "key share",
}


# ALTER TABLE subcommands that are one action whatever follows their leading words.
# fmt: off
ACTIONS: dict[tuple[str, ...], str] = {
    ("owner", "to"): "owner",
    ("set", "schema"): "set_schema",
    ("set", "tablespace"): "set_tablespace",
    ("set", "logged"): "set_logged",
    ("set", "unlogged"): "set_unlogged",
    ("set", "without", "cluster"): "set_without_cluster",
    ("set", "access", "method"): "set_access_method",
    ("cluster", "on"): "cluster_on",
    ("enable", "trigger"): "enable_trigger",
    ("enable", "replica", "trigger"): "enable_trigger",
    ("enable", "always", "trigger"): "enable_trigger",
    ("disable", "trigger"): "disable_trigger",
    ("enable", "rule"): "enable_rule",
    ("enable", "replica", "rule"): "enable_rule",
    ("enable", "always", "rule"): "enable_rule",
    ("disable", "rule"): "disable_rule",
    ("enable", "row", "level", "security"): "enable_row_security",
    ("disable", "row", "level", "security"): "disable_row_security",
    ("force", "row", "level", "security"): "force_row_security",
    ("no", "force", "row", "level", "security"): "no_force_row_security",
    ("replica", "identity"): "replica_identity",
    ("inherit",): "inherit",
    ("no", "inherit"): "no_inherit",
    ("of",): "of_type",
    ("not", "of"): "not_of",
    ("attach", "partition"): "attach_partition",
    ("detach", "partition"): "detach_partition",
    ("validate", "constraint"): "validate_constraint",
    ("alter", "constraint"): "alter_constraint",
    ("drop", "constraint"): "drop_constraint",
    ("add", "constraint"): "add_constraint",
    ("add", "primary"): "add_constraint",
    ("add", "unique"): "add_constraint",
    ("add", "check"): "add_constraint",
    ("add", "foreign"): "add_constraint",
    ("add", "exclude"): "add_constraint",
}
# ALTER [COLUMN] name <these words>: the action.
COLUMN_ACTIONS: dict[tuple[str, ...], str] = {
    ("set", "default"): "set_default",
    ("drop", "default"): "drop_default",
    ("set", "not", "null"): "set_not_null",
    ("drop", "not", "null"): "drop_not_null",
    ("drop", "expression"): "drop_expression",
    ("set", "expression"): "set_expression",
    ("drop", "identity"): "drop_identity",
    ("add", "generated"): "add_identity",
    ("set", "statistics"): "set_statistics",
    ("set", "storage"): "set_storage",
    ("set", "compression"): "set_compression",
    ("options",): "set_options",
}
# fmt: on
TRANSACTION_MODES = {"isolation": "isolation", "read": "read_only", "deferrable": "deferrable"}
ISOLATION_LEVELS = ("serializable", "repeatable", "read", "committed", "uncommitted")
# SET/RESET forms with a name of their own.
SET_FORMS: dict[tuple[str, ...], str] = {
    ("role",): "role",
    ("session", "authorization"): "session_authorization",
    ("time", "zone"): "timezone",
    ("names",): "client_encoding",
    ("schema",): "search_path",
    ("xml", "option"): "xmloption",
    ("transaction", "snapshot"): "transaction_snapshot",
}
