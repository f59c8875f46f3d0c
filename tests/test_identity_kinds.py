"""Identity kinds and names: nothing is guessed (issue 7 §5, "no fail-open configuration").

A kind is case-insensitive; an unknown kind, a string without a kind, an empty
name and a set-but-empty, orphaned or misspelt ``GOVERNED_DB_ACTOR*`` variable
are errors that say what is wrong and where it came from, on every path: the
``Identity`` constructor, ``Identity.parse``, ``connect(identity=...)`` and the
environment.
"""

from __future__ import annotations

import pickle
import re

import pytest

import governed_db
from governed_db.identity import (
    ENV_VARS,
    KINDS,
    PROCESS_SESSION_ID,
    Identity,
    detect_identity,
    parse_kind,
)

KNOWN = "known kinds: agent, ci, human, service"


# -- kinds are case-insensitive ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "name"),
    [
        ("Agent:claude", "agent", "claude"),
        ("AGENT:claude", "agent", "claude"),
        ("aGeNt:claude", "agent", "claude"),
        ("Human:alice", "human", "alice"),
        ("SERVICE:etl", "service", "etl"),
        ("Ci:github-actions", "ci", "github-actions"),
        ("  agent : claude  ", "agent", "claude"),
        ("agent:\tclaude\n", "agent", "claude"),
        ("agent:team:bot", "agent", "team:bot"),  # the name is all after the first colon
        ("ci:gitlab:ci:job", "ci", "gitlab:ci:job"),
        ("human:Alice Smith", "human", "Alice Smith"),
        ("agent:é-claude", "agent", "é-claude"),
    ],
)
def test_parse_known_kinds_any_case(text: str, kind: str, name: str) -> None:
    who = Identity.parse(text)
    assert (who.kind, who.name) == (kind, name)
    assert who == Identity(kind, name)
    assert hash(who) == hash(Identity(kind, name))


@pytest.mark.parametrize("kind", ["Agent", "AGENT", " agent ", "Human", "SERVICE", "Ci", "cI"])
def test_constructor_kind_is_case_insensitive(kind: str) -> None:
    who = Identity(kind, "x")
    assert who.kind == kind.strip().lower()
    assert who == Identity(kind.strip().lower(), "x")
    assert who.kind in KINDS
    assert pickle.loads(pickle.dumps(who)) == who
    assert who.application_name() == f"governed_db:{who.kind}:x"


# -- unknown kinds are errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("robot:x", "robot"),
        ("Robot:x", "Robot"),
        ("bot:claude", "bot"),
        ("agents:claude", "agents"),  # a policy's group name is not a kind
        ("humans:alice", "humans"),
        ("user:alice", "user"),
        ("admin:root", "admin"),
        ("team:alice", "team"),  # used to become the human "team:alice"
        ("a gent:x", "a gent"),
        ("agent-x:y", "agent-x"),
        ("ágent:x", "ágent"),
        ("claude:opus", "claude"),
    ],
)
def test_parse_unknown_kind_is_an_error(text: str, bad: str) -> None:
    message = f"identity {text!r}: unknown identity kind {bad!r}; {KNOWN}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Identity.parse(text)


@pytest.mark.parametrize("kind", ["robot", "Bot", "agents", "user", "root", "AI", "llm"])
def test_constructor_unknown_kind_is_an_error(kind: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"unknown identity kind {kind!r}; {KNOWN}")):
        Identity(kind, "x")


@pytest.mark.parametrize("kind", ["", " ", "\t"])
def test_constructor_empty_kind_is_an_error(kind: str) -> None:
    with pytest.raises(ValueError, match=f"no identity kind; {KNOWN}"):
        Identity(kind, "x")


@pytest.mark.parametrize("kind", [None, 1, b"agent", ["agent"]])
def test_constructor_kind_must_be_a_string(kind: object) -> None:
    with pytest.raises(TypeError, match="identity kind must be a string"):
        Identity(kind, "x")  # type: ignore[arg-type]


def test_parse_kind_names_where() -> None:
    assert parse_kind(" Service ") == "service"
    with pytest.raises(ValueError, match=re.escape(f"--actor: unknown identity kind 'x'; {KNOWN}")):
        parse_kind("x", "--actor")
    with pytest.raises(ValueError, match=re.escape(f"'x'; {KNOWN} (a note)")):
        parse_kind("x", note="a note")


# -- a string without a kind, or without a name -----------------------------------------------


@pytest.mark.parametrize("text", ["alice", "claude", "agent", "Human", "alice smith", "a@b.io"])
def test_parse_without_kind_is_an_error(text: str) -> None:
    start = re.escape(f"identity {text!r} names no kind: write KIND:NAME, e.g. 'human:")
    with pytest.raises(ValueError, match=f"^{start}.*{re.escape(f'({KNOWN})')}$"):
        Identity.parse(text)


@pytest.mark.parametrize("text", ["", " ", "\t\n"])
def test_parse_empty_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"identity {text!r} is empty: write KIND:NAME")):
        Identity.parse(text)


@pytest.mark.parametrize("text", ["agent:", "agent: ", "human:\t", "ci:  \n"])
def test_parse_without_name_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"identity {text!r}: the name is empty")):
        Identity.parse(text)


@pytest.mark.parametrize("text", [":x", " :x", ":", "  :  "])
def test_parse_empty_kind_is_an_error(text: str) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"identity {text!r}: no identity kind; {KNOWN}")
    ):
        Identity.parse(text)


@pytest.mark.parametrize("text", [None, b"agent:x", 42, Identity("agent", "x")])
def test_parse_needs_a_string(text: object) -> None:
    with pytest.raises(TypeError, match="an identity string must be str"):
        Identity.parse(text)  # type: ignore[arg-type]


# -- names and the other fields ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["", " ", "\t", "\n"])
def test_constructor_empty_name_is_an_error(name: str) -> None:
    with pytest.raises(ValueError, match="identity name is empty"):
        Identity("agent", name)


@pytest.mark.parametrize("name", [None, 3, b"x"])
def test_constructor_name_must_be_a_string(name: object) -> None:
    with pytest.raises(TypeError, match="identity name must be a string"):
        Identity("agent", name)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "a\x1b[31mb", "a\x00b", "a\x7fb", "a\x85b"])
def test_control_characters_are_errors(name: str) -> None:
    with pytest.raises(ValueError, match="contains a control character"):
        Identity("agent", name)
    with pytest.raises(ValueError, match="contains a control character"):
        Identity.parse(f"agent:{name}")
    with pytest.raises(ValueError, match=r"identity email .* contains a control character"):
        Identity("agent", "x", email=name)
    with pytest.raises(ValueError, match=r"identity on_behalf_of .* contains a control character"):
        Identity("agent", "x", on_behalf_of=name)


def test_surrounding_whitespace_is_not_part_of_a_value() -> None:
    who = Identity(" Agent ", "  claude ", email=" c@x.io ", on_behalf_of=" alice", session_id="s ")
    assert (who.kind, who.name, who.email, who.on_behalf_of, who.session_id) == (
        "agent", "claude", "c@x.io", "alice", "s"
    )  # fmt: skip
    assert who == Identity("agent", "claude", "c@x.io", "alice", "s")


@pytest.mark.parametrize("field", ["email", "on_behalf_of", "session_id"])
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_optional_fields_are_none(field: str, value: str) -> None:
    who = Identity("agent", "x", **{field: value})  # type: ignore[arg-type]
    assert getattr(who, field) is None
    assert who == Identity("agent", "x")


@pytest.mark.parametrize("field", ["email", "on_behalf_of", "session_id"])
def test_optional_fields_must_be_strings(field: str) -> None:
    with pytest.raises(TypeError, match=f"identity {field} must be a string or None"):
        Identity("agent", "x", **{field: 7})  # type: ignore[arg-type]


def test_detect_identity_refuses_a_string() -> None:
    with pytest.raises(TypeError, match=re.escape("Identity.parse('KIND:NAME')")):
        detect_identity("agent:x", {}, git=False)  # type: ignore[arg-type]


# -- connect(identity=...) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("robot:x", f"identity 'robot:x': unknown identity kind 'robot'; {KNOWN}"),
        ("Robot:claude", f"identity 'Robot:claude': unknown identity kind 'Robot'; {KNOWN}"),
        ("alice", "identity 'alice' names no kind: write KIND:NAME"),
        ("agent:", "identity 'agent:': the name is empty"),
        ("", "identity '' is empty"),
    ],
)
def test_connect_refuses_bad_identity_before_connecting(text: str, message: str) -> None:
    # Nothing listens there: an identity that got through would fail to connect instead.
    dsn = "host=/nonexistent-governed-db-socket-dir port=1 connect_timeout=1"
    with pytest.raises(ValueError, match=re.escape(message)):
        governed_db.connect(dsn, identity=text)


@pytest.mark.parametrize("text", ["Agent:claude", "AGENT:claude", " agent:claude "])
def test_connect_identity_kind_any_case(pg_dsn: str, text: str) -> None:
    with governed_db.connect(pg_dsn, identity=text) as conn:
        assert conn.session.identity == Identity("agent", "claude")
        row = conn.execute("show application_name").fetchone()
        assert row == ("governed_db:agent:claude",)


def test_agent_rules_hold_for_any_spelling_of_agent(pg_dsn: str) -> None:
    policy = {
        "version": 1,
        "actors": {"agents": [{"kind": "agent"}]},
        "guardrails": [
            {"id": "no-agent-ddl", "action": "block", "when": {"actor": "agents", "class": "ddl"}}
        ],
    }
    for text in ("agent:claude", "Agent:claude", "AGENT:claude"):
        with governed_db.connect(pg_dsn, identity=text, policy=policy) as conn:
            with pytest.raises(governed_db.PolicyViolation, match="no-agent-ddl"):
                conn.execute("create table t (i int)")


# -- the GOVERNED_DB_ACTOR* variables ------------------------------------------------------------


def _detect(env: dict[str, str]) -> Identity:
    return detect_identity(environ=env, git=False)


@pytest.mark.parametrize(
    ("env", "kind", "name"),
    [
        ({"GOVERNED_DB_ACTOR": "claude"}, "agent", "claude"),  # documented default: agent
        ({"GOVERNED_DB_ACTOR": "claude", "GOVERNED_DB_ACTOR_KIND": "AGENT"}, "agent", "claude"),
        ({"GOVERNED_DB_ACTOR": "etl", "GOVERNED_DB_ACTOR_KIND": " Service "}, "service", "etl"),
        ({"GOVERNED_DB_ACTOR": "bob", "GOVERNED_DB_ACTOR_KIND": "Human"}, "human", "bob"),
        ({"GOVERNED_DB_ACTOR": "Agent:claude"}, "agent", "claude"),
        ({"GOVERNED_DB_ACTOR": "human:alice"}, "human", "alice"),
        ({"GOVERNED_DB_ACTOR": "CI:deploy"}, "ci", "deploy"),
        ({"GOVERNED_DB_ACTOR": "agent:claude:opus"}, "agent", "claude:opus"),
        ({"GOVERNED_DB_ACTOR": "Human:x", "GOVERNED_DB_ACTOR_KIND": "HUMAN"}, "human", "x"),
        ({"GOVERNED_DB_ACTOR": "  claude  "}, "agent", "claude"),
    ],
)
def test_actor_variables_read(env: dict[str, str], kind: str, name: str) -> None:
    who = _detect(env)
    assert (who.kind, who.name, who.session_id) == (kind, name, PROCESS_SESSION_ID)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GOVERNED_DB_ACTOR": "x", "GOVERNED_DB_ACTOR_KIND": "robot"},
            f"GOVERNED_DB_ACTOR_KIND='robot': unknown identity kind 'robot'; {KNOWN}",
        ),
        (
            {"GOVERNED_DB_ACTOR": "x", "GOVERNED_DB_ACTOR_KIND": " Robot "},
            f"GOVERNED_DB_ACTOR_KIND='Robot': unknown identity kind 'Robot'; {KNOWN}",
        ),
        (
            {"GOVERNED_DB_ACTOR": "x", "GOVERNED_DB_ACTOR_KIND": "agents"},
            f"GOVERNED_DB_ACTOR_KIND='agents': unknown identity kind 'agents'; {KNOWN}",
        ),
        (
            {"GOVERNED_DB_ACTOR": "robot:x"},
            f"GOVERNED_DB_ACTOR='robot:x': unknown identity kind 'robot'; {KNOWN}"
            " (a name containing ':' needs its kind first: 'agent:robot:x')",
        ),
        (
            {"GOVERNED_DB_ACTOR": "claude:opus", "GOVERNED_DB_ACTOR_KIND": "agent"},
            f"GOVERNED_DB_ACTOR='claude:opus': unknown identity kind 'claude'; {KNOWN}",
        ),
        (
            {"GOVERNED_DB_ACTOR": "human:alice", "GOVERNED_DB_ACTOR_KIND": "agent"},
            "GOVERNED_DB_ACTOR='human:alice' says kind 'human' but GOVERNED_DB_ACTOR_KIND"
            " says 'agent'",
        ),
        ({"GOVERNED_DB_ACTOR": "agent:"}, "GOVERNED_DB_ACTOR='agent:': the name is empty"),
        (
            {"GOVERNED_DB_ACTOR": ":claude"},
            f"GOVERNED_DB_ACTOR=':claude': no identity kind; {KNOWN}",
        ),
        (
            {"GOVERNED_DB_ACTOR": "cla\x1bude"},
            "GOVERNED_DB_ACTOR='cla\\x1bude' 'cla\\x1bude' contains a control character",
        ),
        (
            {"GOVERNED_DB_ACTOR": "x", "GOVERNED_DB_ACTOR_EMAIL": "a@b\nX-Forged: 1"},
            "GOVERNED_DB_ACTOR_EMAIL 'a@b\\nX-Forged: 1' contains a control character",
        ),
    ],
)
def test_actor_variables_bad_kind_or_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _detect(env)


@pytest.mark.parametrize("var", ENV_VARS)
@pytest.mark.parametrize("value", ["", "   ", "\t"])
def test_actor_variable_set_but_empty_is_an_error(var: str, value: str) -> None:
    # An unexpanded $VAR must not hand detection over to the OS user (a human).
    env = {"GOVERNED_DB_ACTOR": "claude", var: value}
    with pytest.raises(ValueError, match=f"^{var} is set but empty: give it a value, or unset it$"):
        _detect(env)


@pytest.mark.parametrize("var", [v for v in ENV_VARS if v != "GOVERNED_DB_ACTOR"])
def test_actor_sub_variable_without_actor_is_an_error(var: str) -> None:
    value = "agent" if var.endswith("_KIND") else "x=1" if var.endswith("_ATTRS") else "v"
    message = (
        f"{var} is set but GOVERNED_DB_ACTOR is not: set GOVERNED_DB_ACTOR to the actor's"
        " NAME or KIND:NAME"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _detect({var: value, "USER": "someone"})


def test_several_sub_variables_without_actor() -> None:
    env = {"GOVERNED_DB_ACTOR_KIND": "agent", "GOVERNED_DB_ACTOR_ON_BEHALF_OF": "alice"}
    with pytest.raises(ValueError, match="GOVERNED_DB_ACTOR_KIND, GOVERNED_DB_ACTOR_ON_BEHALF_OF "
                       "are set but GOVERNED_DB_ACTOR is not"):  # fmt: skip
        _detect(env)


@pytest.mark.parametrize(
    "var",
    [
        "GOVERNED_DB_ACTOR_KND",
        "GOVERNED_DB_ACTOR_NAME",
        "GOVERNED_DB_ACTOR_ONBEHALFOF",
        "GOVERNED_DB_ACTOR_kind",
        "GOVERNED_DB_ACTOR_",
    ],
)
def test_unknown_actor_variable_is_an_error(var: str) -> None:
    with pytest.raises(ValueError, match=f"^unknown variable {var}; the actor variables are "):
        _detect({"GOVERNED_DB_ACTOR": "claude", var: "x"})


def test_variables_that_only_share_the_prefix_are_not_ours() -> None:
    env = {"GOVERNED_DB_ACTORS": "x", "GOVERNED_DB_ACTORKIND": "y", "USER": "u"}
    who = _detect(env)
    assert (who.kind, who.name) == ("human", "u")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("a=1,a=2", "GOVERNED_DB_ACTOR_ATTRS gives 'a' twice"),
        ("a=1, a =2", "GOVERNED_DB_ACTOR_ATTRS gives 'a' twice"),
        ('{"a": 1, "a": 2}', "GOVERNED_DB_ACTOR_ATTRS gives 'a' twice"),
        ("a=1,", "key=value pairs separated by commas: ''"),
        ("a=1,,b=2", "key=value pairs separated by commas: ''"),
        ("=1", "key=value pairs separated by commas: '=1'"),
        ('"just a string"', "key=value pairs separated by commas"),
    ],
)
def test_actor_attrs_errors(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _detect({"GOVERNED_DB_ACTOR": "x", "GOVERNED_DB_ACTOR_ATTRS": raw})


# -- CI markers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1", "yes", "on", " true "])
def test_ci_marker_spellings(value: str) -> None:
    assert _detect({"CI": value, "USER": "u"}).kind == "ci"
    github = _detect({"GITHUB_ACTIONS": value, "USER": "u"})
    assert (github.kind, github.name) == ("ci", "github-actions")


@pytest.mark.parametrize("value", ["false", "0", "no", "off", ""])
def test_ci_marker_off(value: str) -> None:
    who = _detect({"CI": value, "USER": "u"})
    assert (who.kind, who.name) == ("human", "u")
