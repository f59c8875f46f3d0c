"""Who is acting: a frozen ``Identity`` and where it comes from.

``detect_identity`` looks, in order, at an explicit identity, the
``GOVERNED_DB_ACTOR*`` variables, CI variables (GitHub Actions, GitLab CI,
Jenkins, Buildkite, generic ``CI``), a Jupyter kernel, and finally the OS user
plus ``git config user.email``. ``acting_as`` sets the identity for the current
context (thread or task) so one pool can serve many agents.

Nothing here guesses who is acting from input it does not understand: an
unknown kind, a string without a kind, an empty name, a set-but-empty or
unknown ``GOVERNED_DB_ACTOR*`` variable all raise ``ValueError`` saying what is
wrong and where it came from. Kinds are case-insensitive (``Agent`` is
``agent``); surrounding whitespace is never part of a kind, name or email.

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
    "ENV_DEFAULT_KIND",
    "ENV_PREFIX",
    "ENV_VARS",
    "KINDS",
    "Identity",
    "acting_as",
    "current_identity",
    "detect_identity",
    "parse_kind",
]

#: The kinds of actor (case-insensitive on input, stored lower-case).
KINDS = frozenset({"human", "agent", "service", "ci"})
#: Prefix of the variables that name the actor explicitly.
ENV_PREFIX = "GOVERNED_DB_ACTOR"
#: The ``GOVERNED_DB_ACTOR*`` variables; any other ``GOVERNED_DB_ACTOR_*`` is an error.
ENV_VARS = tuple(
    ENV_PREFIX + suffix
    for suffix in ("", "_KIND", "_EMAIL", "_ON_BEHALF_OF", "_SESSION_ID", "_ATTRS")
)
#: The kind of a ``GOVERNED_DB_ACTOR`` that names none (and no ``_KIND``).
ENV_DEFAULT_KIND = "agent"
_KNOWN = ", ".join(sorted(KINDS))
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

    ``kind`` is case-insensitive and stored lower-case; an unknown kind raises
    ``ValueError``. ``name`` must hold a visible character; surrounding
    whitespace is stripped from every string field, and an empty ``email``,
    ``on_behalf_of`` or ``session_id`` is None. Control characters (newlines,
    escapes) in any of them raise ``ValueError``: they would forge lines in
    logs and audit views.
    """

    kind: str
    name: str
    email: str | None = None
    on_behalf_of: str | None = None
    session_id: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", parse_kind(self.kind))
        object.__setattr__(self, "name", _name(self.name, "identity name"))
        for attr in ("email", "on_behalf_of", "session_id"):
            object.__setattr__(self, attr, _optional(getattr(self, attr), f"identity {attr}"))
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
        """``"KIND:NAME"`` → an Identity: ``"agent:claude"``, ``"Service:etl"``.

        The kind is case-insensitive and must be one of ``KINDS``; the name is
        everything after the first colon (``"agent:team:bot"`` is the agent
        ``team:bot``). Surrounding whitespace is ignored. A string without a kind
        (``"alice"``), with an unknown kind (``"robot:x"``) or without a name
        (``"agent:"``) raises ``ValueError``: who is acting is never guessed.
        """
        if not isinstance(text, str):
            raise TypeError(f"an identity string must be str, not {type(text).__name__}")
        where = f"identity {text!r}"
        if not text.strip():
            raise ValueError(f"{where} is empty: write KIND:NAME (known kinds: {_KNOWN})")
        kind, sep, name = text.strip().partition(":")
        if not sep:
            example = _example(text)
            raise ValueError(
                f"{where} names no kind: write KIND:NAME, e.g. 'human:{example}' or "
                f"'agent:{example}' (known kinds: {_KNOWN})"
            )
        return cls(kind=parse_kind(kind, where), name=_name(name, f"{where}: the name"))

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


def parse_kind(value: str, where: str = "", *, note: str = "") -> str:
    """``value`` as a known kind: case-insensitive, surrounding whitespace ignored.

    ``ValueError`` names the bad kind, the known ones and ``where`` it came from
    (e.g. a variable's name), then ``note``.
    """
    if not isinstance(value, str):
        raise TypeError(f"identity kind must be a string, not {type(value).__name__}")
    kind = value.strip().lower()
    if kind in KINDS:
        return kind
    prefix = f"{where}: " if where else ""
    what = f"unknown identity kind {value.strip()!r}" if value.strip() else "no identity kind"
    raise ValueError(f"{prefix}{what}; known kinds: {_KNOWN}{f' ({note})' if note else ''}")


def _check_visible(value: str, what: str) -> str:
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ValueError(f"{what} {value!r} contains a control character")
    return value


def _name(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    name = value.strip()
    if not name:
        raise ValueError(f"{what} is empty")
    return _check_visible(name, what)


def _optional(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string or None, not {type(value).__name__}")
    return _check_visible(value.strip(), what) or None


def _example(text: str) -> str:
    name = "".join(c for c in text.strip() if " " < c <= "~" and c != ":")
    return name[:40] or "NAME"


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
        if not isinstance(explicit, Identity):
            raise TypeError(
                f"detect_identity() needs an Identity or None, not {type(explicit).__name__}"
                " (Identity.parse('KIND:NAME') reads a string)"
            )
        return explicit
    env = os.environ if environ is None else environ
    return (
        _from_actor_vars(env)
        or _from_ci(env)
        or _from_jupyter(env, git=git)
        or _from_os_user(env, git=git)
    )


def _from_actor_vars(env: Mapping[str, str]) -> Identity | None:
    """The ``GOVERNED_DB_ACTOR*`` variables, or None if none of them is set.

    ``GOVERNED_DB_ACTOR`` is ``NAME`` (kind from ``_KIND``, default agent) or
    ``KIND:NAME``. A variable that is set must hold a value (an unexpanded
    ``$VAR`` must not quietly hand detection to the OS user); the others need
    ``GOVERNED_DB_ACTOR``; an unknown ``GOVERNED_DB_ACTOR_*`` is a typo.
    """
    given = {k: v for k, v in env.items() if k == ENV_PREFIX or k.startswith(ENV_PREFIX + "_")}
    if not given:
        return None
    for var in sorted(given):
        if var not in ENV_VARS:
            raise ValueError(
                f"unknown variable {var}; the actor variables are {', '.join(ENV_VARS)}"
            )
        if not given[var].strip():
            raise ValueError(f"{var} is set but empty: give it a value, or unset it")
    if ENV_PREFIX not in given:
        others = ", ".join(sorted(given))
        raise ValueError(
            f"{others} {'is' if len(given) == 1 else 'are'} set but {ENV_PREFIX} is not: "
            f"set {ENV_PREFIX} to the actor's NAME or KIND:NAME"
        )
    raw = given[ENV_PREFIX].strip()
    where = f"{ENV_PREFIX}={raw!r}"
    named_kind, sep, rest = raw.partition(":")
    kind_var = f"{ENV_PREFIX}_KIND"
    kind = (
        parse_kind(given[kind_var], f"{kind_var}={given[kind_var].strip()!r}")
        if (kind_var in given)
        else None
    )
    if sep:
        inline = parse_kind(
            named_kind, where, note=f"a name containing ':' needs its kind first: 'agent:{raw}'"
        )
        if kind is not None and kind != inline:
            raise ValueError(f"{where} says kind {inline!r} but {kind_var} says {kind!r}")
        kind, name = inline, _name(rest, f"{where}: the name")
    else:
        name = _name(raw, where)
    return Identity(
        kind=kind or ENV_DEFAULT_KIND,
        name=name,
        email=_optional(given.get(f"{ENV_PREFIX}_EMAIL"), f"{ENV_PREFIX}_EMAIL"),
        on_behalf_of=_optional(
            given.get(f"{ENV_PREFIX}_ON_BEHALF_OF"), f"{ENV_PREFIX}_ON_BEHALF_OF"
        ),
        session_id=_optional(given.get(f"{ENV_PREFIX}_SESSION_ID"), f"{ENV_PREFIX}_SESSION_ID")
        or PROCESS_SESSION_ID,
        attributes=_parse_attrs(given.get(f"{ENV_PREFIX}_ATTRS", "")),
    )


def _parse_attrs(raw: str) -> dict[str, str]:
    """``{"model": "x"}`` (JSON object) or ``model=x,tool=y``; a repeated key is an error."""
    var = f"{ENV_PREFIX}_ATTRS"
    raw = raw.strip()
    if not raw:
        return {}
    if raw.startswith(("{", "[")):
        try:
            value = json.loads(raw, object_pairs_hook=functools.partial(_unique_pairs, var))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{var} is not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(value, dict):
            raise ValueError(f"{var} must be a JSON object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
    pairs = []
    for part in raw.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{var} must be JSON or key=value pairs separated by commas: {part!r}")
        pairs.append((key.strip(), value.strip()))
    return _unique_pairs(var, pairs)


def _unique_pairs(var: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"{var} gives {key!r} twice")
        found[key] = value
    return found


def _pick(env: Mapping[str, str], **names: str) -> dict[str, str]:
    """Attributes from the variables that are set and non-empty."""
    return {attr: env[var] for attr, var in names.items() if env.get(var)}


def _flag(env: Mapping[str, str], var: str) -> bool:
    """A CI marker variable is on: true, 1, yes or on, in any case."""
    return env.get(var, "").strip().lower() in {"true", "1", "yes", "on"}


def _from_ci(env: Mapping[str, str]) -> Identity | None:
    if _flag(env, "GITHUB_ACTIONS"):
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
    if _flag(env, "GITLAB_CI"):
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
    if _flag(env, "BUILDKITE"):
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
    if _flag(env, "CI"):
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
