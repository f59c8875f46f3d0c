"""Where governed_db may (DIVERGENCES) or currently does (KNOWN_BUGS) differ from psycopg.

Keys are ``"test_file.py::test_name"`` (every parametrization) or
``"test_file.py::test_name[ids]"`` (one; the ids without ``governed``). A value
is the reason, or ``(reason, exception class)`` when the failure must be that
exception. Each entry turns the ``governed`` run of its tests into
``xfail(strict=True)``: a test that starts passing (or fails some other way,
when a class is given) fails the run until its entry is updated.
"""

from __future__ import annotations

from governed_db import GovernanceError, PolicyViolation

Expected = str | tuple[str, type[BaseException]]

# Accepted, by design. Keep short; say why (and where it is documented).
DIVERGENCES: dict[str, Expected] = {
    # Subclass, don't proxy (DESIGN.md): our classes are subclasses of psycopg's, and
    # report the public module governed_db.
    "test_divergent.py::test_cursor_type_is_psycopgs": "cursors are governed_db subclasses",
    "test_divergent.py::test_server_cursor_type_is_psycopgs": "cursors are governed_db subclasses",
    "test_divergent.py::test_repr_names_psycopg": "repr shows governed_db.Connection/Cursor",
    # A user's cursor class is combined with the gate, never replaced (README): the
    # factory reads back as the governed subclass of the class that was set.
    "test_connection.py::test_cursor_factory_identity_reads_back": (
        "cursor_factory reads back as the governed subclass of the psycopg class set"
    ),
    # application_name is set to governed_db:KIND:NAME unless the user sets one (README).
    "test_connection.py::test_info_application_name_is_the_users": (
        "application_name defaults to governed_db:KIND:NAME"
    ),
    # conn.pgconn is a read-through view without libpq's senders (README, "Trust each call").
    "test_connection.py::test_pgconn_is_libpqs_handle": (
        "conn.pgconn is governed_db's GuardedPGconn view, without exec_/send_*"
    ),
    # One snapshot (README): a bytearray query is copied to bytes and runs; psycopg itself
    # fails on it (its prepared-statement cache hashes the query).
    "test_cursor.py::test_bytearray_query": "a bytearray query is snapshotted and runs",
    # A query governed_db cannot read is refused with UnreadableQueryError (rule_id
    # unreadable-query, README), a subclass of the TypeError psycopg raises.
    "test_cursor.py::test_query_of_bad_type": (
        "raises UnreadableQueryError, a GovernanceError and TypeError subclass",
        AssertionError,
    ),
    # Masking is on by default (README, "Masking"): a baseline email column is masked
    # before any row maker sees it.
    "test_rows.py::test_row_maker_sees_raw_values": (
        "the baseline masks the email column before the row maker sees it",
        AssertionError,
    ),
    # Bounded caches (catalog of result columns, mask plans) grow on first use.
    "test_connection.py::test_gc_objects_stable_across_connections": (
        "governed_db's bounded per-connection caches are new objects",
        AssertionError,
    ),
    # Binary COPY ... TO STDOUT cannot be masked: refused on a masking connection (README).
    "test_copy.py::test_copy_to_binary": (
        "binary COPY TO STDOUT is refused when the connection masks",
        GovernanceError,
    ),
    "test_async.py::test_copy_binary": (
        "binary COPY TO STDOUT is refused when the connection masks",
        GovernanceError,
    ),
    # A plain psycopg.ClientCursor made on a governed connection merges parameters where
    # governed_db cannot check what is sent: refused (README, "Trust each call").
    "test_divergent.py::test_psycopg_cursor_class_on_the_connection[ClientCursor]": (
        "a plain ClientCursor with parameters is refused (plain-cursor-client-merge)",
        GovernanceError,
    ),
    # psycopg's Transaction and Pipeline objects keep libpq's handle as .pgconn: governed
    # subclasses show the guarded view instead (README, "Trust each call").
    "test_pipeline.py::test_pipeline_is_supported": (
        "conn.pipeline() is a governed subclass of psycopg.Pipeline",
        AssertionError,
    ),
    # The baseline guardrails (dev): DELETE/UPDATE need a WHERE that is not always true.
    "test_divergent.py::test_delete_without_where_runs": (
        "baseline rule delete-needs-where refuses it",
        PolicyViolation,
    ),
    "test_divergent.py::test_update_with_always_true_where_runs": (
        "baseline rule trivial-where refuses it",
        PolicyViolation,
    ),
}

# governed_db bugs: empty this list as they are fixed (issue 7, section 6).
KNOWN_BUGS: dict[str, Expected] = {}
