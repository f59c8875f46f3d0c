"""Identity: the value, detection order, acting_as, application_name."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import threading
from pathlib import Path

import pytest

from governed_db.identity import (
    PROCESS_SESSION_ID,
    Identity,
    acting_as,
    current_identity,
    detect_identity,
)


def test_identity_is_frozen_hashable_and_equal_by_value() -> None:
    a = Identity("agent", "claude", attributes={"model": "opus", "ticket": 42})
    b = Identity("agent", "claude", attributes={"ticket": "42", "model": "opus"})
    assert a == b
    assert hash(a) == hash(b)
    assert {a: 1}[b] == 1
    assert a.attributes["ticket"] == "42"
    with pytest.raises(AttributeError):
        a.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.attributes["x"] = "y"  # type: ignore[index]
    assert a != Identity("agent", "claude", session_id="s1")


def test_identity_validates_kind_and_name() -> None:
    with pytest.raises(ValueError, match="unknown identity kind 'robot'; known kinds: agent, ci"):
        Identity("robot", "x")
    with pytest.raises(ValueError, match="identity name is empty"):
        Identity("human", " ")


def test_parse() -> None:
    assert Identity.parse("agent:claude") == Identity("agent", "claude")
    assert Identity.parse("human:alice") == Identity("human", "alice")
    assert Identity.parse("agent:team:bot") == Identity("agent", "team:bot")


def test_application_name_is_short_ascii() -> None:
    assert Identity("agent", "claude").application_name() == "governed_db:agent:claude"
    long = Identity("human", "é" * 100).application_name()
    assert len(long.encode()) <= 63
    assert long.isascii()


def test_as_dict() -> None:
    d = Identity("ci", "x", attributes={"a": "b"}).as_dict()
    assert d["kind"] == "ci"
    assert d["attributes"] == {"a": "b"}


def test_explicit_wins() -> None:
    me = Identity("service", "etl")
    assert detect_identity(me, {"GOVERNED_DB_ACTOR": "other", "CI": "true"}) is me


def test_actor_variables() -> None:
    env = {
        "GOVERNED_DB_ACTOR": "claude",
        "GOVERNED_DB_ACTOR_EMAIL": "bot@example.com",
        "GOVERNED_DB_ACTOR_ON_BEHALF_OF": "alice",
        "GOVERNED_DB_ACTOR_SESSION_ID": "sess-1",
        "GOVERNED_DB_ACTOR_ATTRS": '{"model": "opus", "n": 3}',
        "GITHUB_ACTIONS": "true",  # actor variables come before CI
    }
    who = detect_identity(environ=env, git=False)
    assert who.kind == "agent"  # the default kind for GOVERNED_DB_ACTOR
    assert who.name == "claude"
    assert who.email == "bot@example.com"
    assert who.on_behalf_of == "alice"
    assert who.session_id == "sess-1"
    assert dict(who.attributes) == {"model": "opus", "n": "3"}


def test_actor_variables_kind_and_kv_attrs() -> None:
    env = {
        "GOVERNED_DB_ACTOR": "etl",
        "GOVERNED_DB_ACTOR_KIND": "Service",
        "GOVERNED_DB_ACTOR_ATTRS": "tool=airflow, ticket = OPS-1",
    }
    who = detect_identity(environ=env, git=False)
    assert (who.kind, who.name, who.session_id) == ("service", "etl", PROCESS_SESSION_ID)
    assert dict(who.attributes) == {"tool": "airflow", "ticket": "OPS-1"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"GOVERNED_DB_ACTOR_KIND": "robot"}, "GOVERNED_DB_ACTOR_KIND"),
        ({"GOVERNED_DB_ACTOR_ATTRS": "{nope"}, "not valid JSON"),
        ({"GOVERNED_DB_ACTOR_ATTRS": "[1]"}, "JSON object"),
        ({"GOVERNED_DB_ACTOR_ATTRS": "novalue"}, "key=value"),
    ],
)
def test_actor_variables_errors(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect_identity(environ={"GOVERNED_DB_ACTOR": "x", **extra}, git=False)


def test_github_actions() -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_RUN_ID": "123",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": "abc",
        "GITHUB_WORKFLOW": "migrate",
    }
    who = detect_identity(environ=env, git=False)
    assert (who.kind, who.name, who.on_behalf_of) == ("ci", "github-actions", "octocat")
    assert who.session_id == "123.2"
    assert who.attributes["repository"] == "acme/shop"
    assert who.attributes["ref"] == "refs/heads/main"
    assert who.attributes["ci"] == "github-actions"


@pytest.mark.parametrize(
    ("env", "name", "session", "on_behalf_of", "attr"),
    [
        (
            {"GITLAB_CI": "true", "CI_PIPELINE_ID": "77", "GITLAB_USER_LOGIN": "bob",
             "CI_PROJECT_PATH": "acme/shop"},
            "gitlab-ci", "77", "bob", ("repository", "acme/shop"),
        ),
        (
            {"JENKINS_URL": "http://j", "BUILD_TAG": "jenkins-shop-5", "JOB_NAME": "shop"},
            "jenkins", "jenkins-shop-5", None, ("job", "shop"),
        ),
        (
            {"BUILDKITE": "true", "BUILDKITE_BUILD_ID": "b-1",
             "BUILDKITE_BUILD_CREATOR_EMAIL": "c@x.io", "BUILDKITE_BRANCH": "main"},
            "buildkite", "b-1", "c@x.io", ("ref", "main"),
        ),
        ({"CI": "true"}, "ci", PROCESS_SESSION_ID, None, ("ci", "ci")),
    ],
)  # fmt: skip
def test_other_ci(
    env: dict[str, str], name: str, session: str, on_behalf_of: str | None, attr: tuple[str, str]
) -> None:
    who = detect_identity(environ=env, git=False)
    assert (who.kind, who.name, who.session_id, who.on_behalf_of) == (
        "ci", name, session, on_behalf_of
    )  # fmt: skip
    assert who.attributes[attr[0]] == attr[1]


def test_jupyter() -> None:
    who = detect_identity(environ={"JPY_PARENT_PID": "1", "USER": "x"}, git=False)
    assert (who.kind, who.name) == ("human", "x")
    assert who.attributes["notebook"] == "1"


def test_os_user_with_git_email(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\temail = dev@example.com\n")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin:/usr/local/bin", "GIT_CONFIG_NOSYSTEM": "1"}
    who = detect_identity(environ=env)
    assert who.kind == "human"
    assert who.name
    assert who.session_id == PROCESS_SESSION_ID
    has_git = subprocess.run(["git", "--version"], capture_output=True, check=False).returncode == 0
    if has_git:
        assert who.email == "dev@example.com"


def test_os_user_tolerates_missing_git(tmp_path: Path) -> None:
    who = detect_identity(environ={"HOME": str(tmp_path), "PATH": str(tmp_path)})
    assert who.email is None
    assert who.kind == "human"


def test_acting_as_nests_and_resets() -> None:
    a, b = Identity("agent", "a"), Identity("agent", "b")
    assert current_identity() is None
    with acting_as(a):
        assert current_identity() is a
        with acting_as(b) as inner:
            assert inner is b
            assert current_identity() is b
        assert current_identity() is a
    assert current_identity() is None
    with pytest.raises(TypeError):
        with acting_as("a"):  # type: ignore[arg-type]
            pass


def test_acting_as_is_per_thread_and_per_task() -> None:
    seen: dict[str, Identity | None] = {}

    def worker() -> None:
        seen["thread"] = current_identity()

    async def task(name: str) -> Identity | None:
        with acting_as(Identity("agent", name)):
            await asyncio.sleep(0)
            return current_identity()

    async def both() -> list[Identity | None]:
        return list(await asyncio.gather(task("x"), task("y")))

    with acting_as(Identity("agent", "main")):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert seen["thread"] is None
    results = asyncio.run(both())
    assert [r.name for r in results if r] == ["x", "y"]


def test_identity_pickles() -> None:
    a = Identity("agent", "c", attributes={"k": "v"})
    assert pickle.loads(pickle.dumps(a)) == a
