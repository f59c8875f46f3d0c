"""The shared lexer (governed_db/sql/normalize.py) reads text exactly as PostgreSQL does.

Where a statement ends and what is a literal must agree with the server's own
lexer, or a ``;`` hidden from us runs a statement nobody decided on (and a
literal we print verbatim leaks into a redacted audit record). Three checks:

- examples of every lexical rule that differed from the server before;
- hypothesis against libpg_query (PostgreSQL's scanner and grammar, via pglast):
  token boundaries and statement boundaries of arbitrary text;
- hypothesis against a real server: every piece we split off must EXPLAIN on
  its own through the extended protocol (which refuses two statements), and
  the simple protocol must run exactly as many statements as we found.
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governed_db.sql import analyze, available_backends
from governed_db.sql.normalize import split_statements, tokenize

HAS_PGLAST = "pglast" in available_backends()
needs_pglast = pytest.mark.skipif(not HAS_PGLAST, reason="pglast not installed")


@pytest.fixture(params=available_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pieces(text: str) -> list[str]:
    return [t for t, _ in split_statements(text)]


def spans(text: str) -> list[tuple[int, int]]:
    return [(t[2], t[3]) for t in tokenize(text)]


# -- the rules, by example ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # -- comments end at \r as well as \n
        ("select 1 -- x\rdelete from t", ["select 1 -- x\rdelete from t"]),
        ("select 1 -- x\r; delete from t", ["select 1 -- x", "delete from t"]),
        ("select 1 --\r;delete from t", ["select 1 --", "delete from t"]),
        ("select 1 -- a;\r\n; delete from t", ["select 1 -- a;", "delete from t"]),
        # block comments nest
        ("select 1 /* a /* ; */ ; */; select 2", ["select 1 /* a /* ; */ ; */", "select 2"]),
        ("select 1 /*/ ; */; select 2", ["select 1 /*/ ; */", "select 2"]),
        # non-ASCII characters are identifier characters, so x$$ and €$$ open no dollar quote
        ("select 1 as x$$; delete from t; select 1 as y$$", None),
        ("select 1 as €$$; delete from t; select 1 as €$$", None),
        ("select 1 as a\xa0$$; delete from t; select 1 as b\xa0$$", None),
        ("select 1 as ٣$$; delete from t; select 1 as ٣$$", None),
        # ... but a dollar-quote tag may be non-ASCII
        ("select $€$ ; delete from t; $€$", ["select $€$ ; delete from t; $€$"]),
        ("select $é1$;$x$;$é1$", ["select $é1$;$x$;$é1$"]),
        # a string continued after a newline keeps its mode: E'..' escapes go on
        ("select E'a'\n'\\' '; delete from t; --'", ["select E'a'\n'\\' '", "delete from t"]),
        ("select E'a' -- c\n '\\';'; select 2", ["select E'a' -- c\n '\\';'", "select 2"]),
        ("select 'a'\v\n'b;'; select 2", ["select 'a'\v\n'b;'", "select 2"]),
        # ... not without a newline, and not across a block comment
        ("select E'a' '\\'; select 2", ["select E'a' '\\'", "select 2"]),
        ("select E'a' /* */\n'\\'; select 2", ["select E'a' /* */\n'\\'", "select 2"]),
        # B'' and X'' do not double quotes
        ("select B'0'';'; select 2", ["select B'0'';'", "select 2"]),
        # quoted identifiers
        ('select 1 as "a;""b"; select 2', ['select 1 as "a;""b"', "select 2"]),
        # whitespace is [ \t\n\r\f\v] only; the text ends at NUL like libpq's C string
        ("select 1;\x1c;select 2", ["select 1", "\x1c", "select 2"]),
        ("select 1 \x00; delete from t", ["select 1"]),
        ("delete from t \x00where id = 1", ["delete from t"]),
    ],
)
def test_split_like_the_server(text: str, expected: list[str] | None) -> None:
    got = pieces(text)
    if expected is None:
        assert len(got) == 3
        assert got[1] == "delete from t"
    else:
        assert got == expected


def test_operators_split_like_the_server() -> None:
    words = [t[1] for t in tokenize("a=-1 a?-1 a*-+1 a<=>b a||-1 x.5 1..2 :=")]
    assert words == [
        "a", "=", "-", "1", "a", "?-", "1", "a", "*", "-", "+", "1", "a", "<=>", "b",
        "a", "||-", "1", "x", ".5", "1", "..", "2", ":=",
    ]  # fmt: skip


def test_literals_become_placeholders_in_the_normalized_text(backend: str) -> None:
    q = "select E'a'\n'secret', $€$secret$€$, B'1', U&'secret', n'secret', 'x' -- 'c'\r, x$y"
    s = analyze(q, backend=backend).statements[0]
    assert "secret" not in s.normalized
    assert s.normalized == "select ?, ?, ?, ?, n ?, ?, x$y"


@needs_pglast
@pytest.mark.parametrize(
    "text",
    [
        "select 1 as x$$; delete from t; select 1 as y$$",
        "select 1 -- c\r; delete from t",
        "select E'a'\n'\\' '; delete from t; --'",
    ],
)
def test_a_hidden_delete_is_seen(text: str, backend: str) -> None:
    facts = analyze(text, backend=backend)
    assert any(s.operation == "delete" and not s.opaque for s in facts.statements)


# -- hypothesis against libpg_query ------------------------------------------------------------

# Fragments that exercise every lexical rule, glued at random. Most results are not
# valid SQL; whatever libpg_query's scanner accepts, our tokens must match.
SOUP = [
    "'", "E'", "e'", "B'", "X'", "U&'", "u&'", "N'", "\\'", "\\\\", "''", "'\n'", "' -- c\n'",
    "'\r'", "' /*x*/\n'", "'\n -- c\r\n '", "'\v\n\f'", "$$", "$a$", "$€$", "$_1$", "$1", "x$",
    "€", "é", "\xa0", "\u2028", "٣", "--", "-- ;\r", "/*", "*/", "/* /* */", ";", "\n", "\r",
    " ", "\t", "\v", "\f", "a", "E", "U&", "1", "1_0", "0x1f", "0b", ".5", "1e5", "1e", ".", "..",
    ":", "::", ":=", "-", "+", "=", "<", ">", "*", "/", "?", "#", "!", "@", "~", "&", "|", "^",
    "`", '"', 'U&"', '""', "(", ")", "[", "]", ",", "\\", "{", "\x01",
]  # fmt: skip
soup = st.lists(st.sampled_from(SOUP), max_size=24).map("".join)
# Statement-shaped soup: more of it parses, so statement boundaries get compared too.
statement_soup = st.lists(
    st.sampled_from([*SOUP, "select ", " as x", ", ", "; select ", " from t"]), max_size=24
).map("".join)
hypothesis_settings = settings(
    max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck)
)


@needs_pglast
@hypothesis_settings
@given(soup)
def test_tokens_match_postgres_scanner(text: str) -> None:
    from pglast import parser

    try:
        scanned = parser.scan(text)
    except parser.ParseError:
        return  # the server refuses the whole string: nothing of it runs
    theirs = [(t.start, t.end + 1) for t in scanned if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    assert spans(text) == theirs, text


@needs_pglast
@hypothesis_settings
@given(statement_soup)
def test_statements_match_postgres_grammar(text: str) -> None:
    from pglast import parser

    try:
        slices = parser.split(text, with_parser=True, only_slices=True)
    except parser.ParseError:
        return
    # pglast strips its slices with Python's idea of whitespace; compare like with like.
    assert [p.strip() for p in pieces(text)] == [text[s].strip() for s in slices], text


# -- hypothesis against a real server ----------------------------------------------------------


def _standard(body: str) -> str:
    return "'" + body.replace("'", "''") + "'"


def _escaped(body: str) -> str:
    return "E'" + body.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _continued(parts: tuple[str, str, str]) -> str:
    """An E string continued on the next line; the second part still reads escapes."""
    first, gap, second = parts
    return _escaped(first) + gap + "'" + second.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _dollar(parts: tuple[str, str]) -> str:
    tag, body = parts
    delimiter = f"${tag}$"
    return delimiter + body.replace("$", "") + delimiter


def _block(body: str) -> str:
    body = body.replace("/*", "").replace("*/", "").rstrip("/")
    return f"/*{body}*/"


TRICKY = ";'\"$-/*\\\r\n €é\xa0x1"
tricky = st.text(alphabet=TRICKY, max_size=8)
line = st.text(alphabet=TRICKY.replace("\r", "").replace("\n", ""), max_size=8)
newline_gap = st.sampled_from(["\n", " \r", "\t\n ", " -- c;\n", "\n-- ;'\r\n  ", "\r\n\f"])
literal = st.one_of(
    tricky.map(_standard),
    tricky.map(_escaped),
    st.tuples(tricky, newline_gap, tricky).map(_continued),
    st.tuples(st.sampled_from(["", "a", "€", "_x1", "é"]), tricky).map(_dollar),
    st.sampled_from(
        ["B'0101'", "X'1F'", "B'01'\n'10'", "U&'a;b'", "1", "1.5", ".5", "1e3", "0x1F", "1_000"]
    ),
    st.sampled_from(['1 as "a;""b"', "1 as x$$", "1 as €$$", "1 as é", "1 - -1", "1=-1"]),
)
gap = st.one_of(
    st.sampled_from([" ", "\t", "\n", "\r", "\f", "\r\n"]),
    line.map(lambda s: f" --{s}\n"),
    line.map(lambda s: f" --{s}\r"),
    tricky.map(_block),
    st.just("/* a /* ; */ b */"),
)
statement = st.lists(st.tuples(gap, literal), min_size=1, max_size=4).map(
    lambda items: "select" + ",".join(g + lit for g, lit in items)
)
script = st.lists(st.tuples(statement, gap), min_size=1, max_size=4).map(
    lambda items: ";".join(s + g for s, g in items)
)


def _drain(conn: psycopg.Connection) -> list[psycopg.pq.abc.PGresult]:
    results = []
    while (result := conn.pgconn.get_result()) is not None:
        results.append(result)
    return results


def _results(conn: psycopg.Connection, text: str) -> int:
    """How many statements the simple protocol runs for ``text``."""
    conn.pgconn.send_query(text.encode())
    results = _drain(conn)
    errors = [r.error_message for r in results if r.status != psycopg.pq.ExecStatus.TUPLES_OK]
    assert not errors, (text, errors)
    return len(results)


def _explains(conn: psycopg.Connection, piece: str) -> None:
    """EXPLAIN through the extended protocol: one statement or an error."""
    conn.pgconn.send_query_params(b"EXPLAIN " + piece.encode(), None)
    results = _drain(conn)
    assert [r.status for r in results] == [psycopg.pq.ExecStatus.TUPLES_OK], (
        piece,
        [r.error_message for r in results],
    )


@pytest.fixture
def server(pg_dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(pg_dsn, autocommit=True)
    conn.execute("set standard_conforming_strings = on")
    return conn


def test_split_matches_a_real_server(server: psycopg.Connection) -> None:
    vertical_tab = server.info.server_version >= 160000  # \v is whitespace since PostgreSQL 16

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(script)
    def check(text: str) -> None:
        if "\v" in text and not vertical_tab:
            return
        found = pieces(text)
        assert _results(server, text) == len(found), text
        for piece in found:
            _explains(server, piece)

    try:
        check()
    finally:
        server.close()
