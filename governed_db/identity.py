"""Who is acting: a frozen ``Identity`` and where it comes from.

``detect_identity`` looks, in order, at an explicit identity, the
``GOVERNED_DB_ACTOR*`` variables, CI variables (GitHub Actions, GitLab CI,
Jenkins, Buildkite, generic ``CI``), a Jupyter kernel, and finally the OS user
plus ``git config user.email``. ``acting_as`` sets the identity for the current
context (thread or task) so one pool can serve many agents.

This module imports nothing else from governed_db.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "ENV_PREFIX",
    "KINDS",
    "Identity",
    "acting_as",
    "current_identity",
    "detect_identity",
]

#: The kinds of actor, from most to least supervised.
KINDS = frozenset({"human", "agent", "service", "ci"})
#: Prefix of the variables that name the actor explicitly.
ENV_PREFIX = "GOVERNED_DB_ACTOR"
#: PostgreSQL truncates ``application_name`` to NAMEDATALEN - 1 bytes.
_APP_NAME_MAX = 63
#: One id per process, for identities that have no natural session/run id.
PROCESS_SESSION_ID = uuid.uuid4().hex[:16]


@dataclass(frozen=True, slots=True)
class Identity:
    """An actor: ``kind`` (human, agent, service, ci), ``name`` and context.

    ``on_behalf_of`` names the person an agent or pipeline acts for;
    ``session_id`` the run or session; ``attributes`` free strings such as
    model, tool or ticket. Equal identities hash equal (usable in cache keys);
    the hash is computed once.
    """

    kind: str
    name: str
    email: str | None = None
    on_behalf_of: str | None = None
    session_id: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"identity kind must be one of {', '.join(sorted(KINDS))}, not {self.kind!r}"
            )
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("identity name must be a non-empty string")
        attrs = MappingProxyType({str(k): str(v) for k, v in dict(self.attributes).items()})
        object.__setattr__(self, "attributes", attrs)
        key = (self.kind, self.name, self.email, self.on_behalf_of, self.session_id)
        object.__setattr__(self, "_hash", hash((*key, tuple(sorted(attrs.items())))))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        fields = (self.kind, self.name, self.email, self.on_behalf_of, self.session_id)
        return (Identity, (*fields, dict(self.attributes)))

    @classmethod
    def parse(cls, text: str) -> Identity:
        """``"agent:claude"`` → an agent named claude; a bare ``"alice"`` is a human."""
        kind, sep, name = text.partition(":")
        if sep and kind in KINDS:
            return cls(kind=kind, name=name)
        return cls(kind="human", name=text)

    def application_name(self) -> str:
        """A PostgreSQL ``application_name``: ``governed_db:KIND:NAME``, ≤ 63 ASCII bytes."""
        raw = f"governed_db:{self.kind}:{self.name}"
        safe = "".join(c if " " <= c <= "~" else "?" for c in raw)
        return safe[:_APP_NAME_MAX]

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (for audit records and JSON)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "email": self.email,
            "on_behalf_of": self.on_behalf_of,
            "session_id": self.session_id,
            "attributes": dict(self.attributes),
        }


_acting: ContextVar[Identity | None] = ContextVar("governed_db_acting_as", default=None)


@contextlib.contextmanager
def acting_as(identity: Identity) -> Iterator[Identity]:
    """Within the block, statements run on behalf of ``identity`` (per thread/task)."""
    if not isinstance(identity, Identity):
        raise TypeError(f"acting_as() needs an Identity, not {type(identity).__name__}")
    token = _acting.set(identity)
    try:
        yield identity
    finally:
        _acting.reset(token)


def current_identity() -> Identity | None:
    """The identity set by the innermost ``acting_as`` block, or None."""
    return _acting.get()


def detect_identity(
    explicit: Identity | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    git: bool = True,
) -> Identity:
    """Work out who is acting; see the module docstring for the order.

    ``environ`` defaults to ``os.environ``; ``git=False`` skips asking git for an
    email (the only step that starts a process). Malformed ``GOVERNED_DB_ACTOR*``
    values raise ``ValueError`` naming the variable.
    """
    if explicit is not None:
        return explicit
    env = os.environ if environ is None else environ
    return (
        _from_actor_vars(env)
        or _from_ci(env)
        or _from_jupyter(env, git=git)
        or _from_os_user(env, git=git)
    )


def _from_actor_vars(env: Mapping[str, str]) -> Identity | None:
    name = env.get(ENV_PREFIX, "").strip()
    if not name:
        return None
    kind = env.get(f"{ENV_PREFIX}_KIND", "").strip().lower() or "agent"
    if kind not in KINDS:
        raise ValueError(
            f"{ENV_PREFIX}_KIND must be one of {', '.join(sorted(KINDS))}, not {kind!r}"
        )
    return Identity(
        kind=kind,
        name=name,
        email=env.get(f"{ENV_PREFIX}_EMAIL") or None,
        on_behalf_of=env.get(f"{ENV_PREFIX}_ON_BEHALF_OF") or None,
        session_id=env.get(f"{ENV_PREFIX}_SESSION_ID") or PROCESS_SESSION_ID,
        attributes=_parse_attrs(env.get(f"{ENV_PREFIX}_ATTRS", "")),
    )


def _parse_attrs(raw: str) -> dict[str, str]:
    """``{"model": "x"}`` (JSON object) or ``model=x,tool=y``."""
    var = f"{ENV_PREFIX}_ATTRS"
    raw = raw.strip()
    if not raw:
        return {}
    if raw.startswith(("{", "[")):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{var} is not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(value, dict):
            raise ValueError(f"{var} must be a JSON object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
    attrs: dict[str, str] = {}
    for part in raw.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{var} must be JSON or key=value pairs separated by commas: {part!r}")
        attrs[key.strip()] = value.strip()
    return attrs


def _pick(env: Mapping[str, str], **names: str) -> dict[str, str]:
    """Attributes from the variables that are set and non-empty."""
    return {attr: env[var] for attr, var in names.items() if env.get(var)}


def _from_ci(env: Mapping[str, str]) -> Identity | None:
    if env.get("GITHUB_ACTIONS") == "true":
        run = env.get("GITHUB_RUN_ID", "")
        attempt = env.get("GITHUB_RUN_ATTEMPT")
        attrs = _pick(
            env,
            repository="GITHUB_REPOSITORY",
            ref="GITHUB_REF",
            sha="GITHUB_SHA",
            workflow="GITHUB_WORKFLOW",
            job="GITHUB_JOB",
            event="GITHUB_EVENT_NAME",
        )
        session = f"{run}.{attempt}" if run and attempt else run
        return _ci("github-actions", env.get("GITHUB_ACTOR"), session, attrs)
    if env.get("GITLAB_CI") == "true":
        attrs = _pick(
            env,
            repository="CI_PROJECT_PATH",
            ref="CI_COMMIT_REF_NAME",
            sha="CI_COMMIT_SHA",
            job="CI_JOB_NAME",
            job_id="CI_JOB_ID",
            user_email="GITLAB_USER_EMAIL",
        )
        return _ci("gitlab-ci", env.get("GITLAB_USER_LOGIN"), env.get("CI_PIPELINE_ID"), attrs)
    if env.get("JENKINS_URL"):
        attrs = _pick(
            env,
            job="JOB_NAME",
            build="BUILD_NUMBER",
            url="BUILD_URL",
            ref="GIT_BRANCH",
            sha="GIT_COMMIT",
            repository="GIT_URL",
        )
        return _ci("jenkins", env.get("BUILD_USER_ID"), env.get("BUILD_TAG"), attrs)
    if env.get("BUILDKITE") == "true":
        attrs = _pick(
            env,
            repository="BUILDKITE_REPO",
            ref="BUILDKITE_BRANCH",
            sha="BUILDKITE_COMMIT",
            pipeline="BUILDKITE_PIPELINE_SLUG",
            job_id="BUILDKITE_JOB_ID",
        )
        creator = env.get("BUILDKITE_BUILD_CREATOR_EMAIL") or env.get("BUILDKITE_BUILD_CREATOR")
        return _ci("buildkite", creator, env.get("BUILDKITE_BUILD_ID"), attrs)
    if env.get("CI", "").lower() in {"true", "1"}:
        return _ci("ci", None, None, {})
    return None


def _ci(
    system: str, on_behalf_of: str | None, session: str | None, attrs: dict[str, str]
) -> Identity:
    return Identity(
        kind="ci",
        name=system,
        on_behalf_of=on_behalf_of or None,
        session_id=session or PROCESS_SESSION_ID,
        attributes={"ci": system, **attrs},
    )


def _from_jupyter(env: Mapping[str, str], *, git: bool) -> Identity | None:
    if "ipykernel" not in sys.modules and not env.get("JPY_PARENT_PID"):
        return None
    user = _from_os_user(env, git=git)
    notebook = env.get("JPY_SESSION_NAME") or "1"
    return Identity(
        kind="human",
        name=user.name,
        email=user.email,
        session_id=user.session_id,
        attributes={"notebook": notebook},
    )


def _from_os_user(env: Mapping[str, str], *, git: bool) -> Identity:
    user = next((env[v] for v in ("LOGNAME", "USER", "LNAME", "USERNAME") if env.get(v)), "")
    if not user:
        try:
            user = getpass.getuser()  # the password database
        except (OSError, KeyError):
            user = "unknown"
    email = _git_email(_git_env_key(env)) if git else None
    return Identity(kind="human", name=user, email=email, session_id=PROCESS_SESSION_ID)


_GIT_VARS = ("HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "PATH")


def _git_env_key(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, env[k]) for k in _GIT_VARS if k in env)


@functools.lru_cache(maxsize=8)
def _git_email(env_key: tuple[tuple[str, str], ...]) -> str | None:
    """``git config user.email``, or None if git is missing, slow or unset (cached)."""
    try:
        done = subprocess.run(
            ["git", "config", "user.email"],
            capture_output=True,
            text=True,
            timeout=1.0,
            env=dict(env_key),
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    email = done.stdout.strip()
    return email if done.returncode == 0 and email else None
