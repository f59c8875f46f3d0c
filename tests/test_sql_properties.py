"""Property tests: analyze never raises on text, and what it cannot read is opaque."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governed_db.sql import OPERATIONS, STATEMENT_CLASSES, analyze, available_backends

SQLISH = st.lists(
    st.sampled_from(
        [
            "select",
            "delete",
            "from",
            "where",
            "t",
            "(",
            ")",
            ";",
            "'",
            '"',
            "$$",
            "$a$",
            "--",
            "/*",
            "*/",
            "1",
            "=",
            "or",
            "and",
            "with",
            "as",
            "%s",
            "%(x)s",
            "$1",
            "\n",
            " ",
            "insert",
            "into",
            "values",
            "update",
            "set",
            "explain",
            "analyze",
            "copy",
            "program",
            "e'\\'",
            "::",
            "not",
            "true",
            "in",
            "begin",
            "atomic",
            "end",
            "case",
            "do",
            "pg_sleep",
        ]
    ),
    max_size=30,
).map(" ".join)

settings_ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(st.one_of(st.text(max_size=200), SQLISH))
def test_never_raises_and_stays_in_vocabulary(text: str) -> None:
    for backend in available_backends():
        facts = analyze(text, backend=backend)
        assert facts.statement_count >= 1
        for s in facts.statements:
            assert s.operation in OPERATIONS
            assert s.statement_class in STATEMENT_CLASSES
            assert s.opaque == (s.statement_class == "opaque")
            if s.operation == "unknown":
                assert s.opaque


@settings_
@given(st.text(alphabet="!#&)]}|~^`\\?@", min_size=1, max_size=40))
def test_garbage_is_opaque(text: str) -> None:
    for backend in available_backends():
        assert analyze(text, backend=backend).opaque


@settings_
@given(SQLISH)
def test_sqlparse_never_less_risky_than_pglast(text: str) -> None:
    """On SQL PostgreSQL accepts, sqlparse is exactly right or opaque.

    sqlparse does not validate syntax: text the server would reject (pglast:
    ``unknown``) may be read as what it looks like, which is harmless because
    nothing of it runs.
    """
    if "pglast" not in available_backends():
        return
    exact = analyze(text, backend="pglast")
    portable = analyze(text, backend="sqlparse")
    assert exact.statement_count == portable.statement_count
    for a, b in zip(exact.statements, portable.statements, strict=True):
        if not b.opaque and a.operation != "unknown":
            assert a == b, text
