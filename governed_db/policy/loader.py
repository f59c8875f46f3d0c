"""``load_policy``: a policy file (or mapping) → a validated, frozen ``Policy``."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from governed_db.audit.settings import SINK_TYPES, AuditSettings
from governed_db.errors import PolicyError
from governed_db.identity import KINDS
from governed_db.policy.approvals_section import approval_rule_parser, parse_approvals
from governed_db.policy.document import ActorGroup, ActorMatcher, Environment, EnvMatcher, Policy
from governed_db.policy.masking_section import parse_masking
from governed_db.policy.model import MODES, GlobSet, Limits
from governed_db.policy.rules import parse_rules, parse_time_window
from governed_db.policy.schema import Field, Reader, parse_duration, parse_glob_list
from governed_db.policy.yaml_lines import EnvStr, LineDict, LineList, env_value, load_yaml

__all__ = ["BASELINE_SOURCE", "POLICY_ENV_VAR", "baseline", "load_policy", "parse_policy"]

#: The variable naming a policy file when ``load_policy`` gets no source.
POLICY_ENV_VAR = "GOVERNED_DB_POLICY"
BASELINE_SOURCE = "<baseline>"
MAPPING_SOURCE = "<mapping>"
SUPPORTED_VERSIONS = frozenset({1})

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SINK_TYPES = frozenset(SINK_TYPES)  # the audit room validates the rest of each entry
_LIMIT_KEYS = ("max_rows_affected", "statement_timeout", "lock_timeout")


def load_policy(
    source: str | os.PathLike[str] | Policy | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Policy:
    """Load and validate a policy.

    ``source`` is a path, a ``Policy`` (returned as is), an already-parsed mapping,
    or None: then the file named by ``$GOVERNED_DB_POLICY``, else the built-in
    baseline. ``environ`` (default ``os.environ``) resolves ``env:NAME`` values.
    Any problem raises ``PolicyError`` with file, line and key.
    """
    env = os.environ if environ is None else environ
    if isinstance(source, Policy):
        return source
    if source is None:
        named = env.get(POLICY_ENV_VAR, "").strip()
        if not named:
            return baseline()
        source = named
    if isinstance(source, Mapping):
        return parse_policy(_located(source, env), MAPPING_SOURCE)
    if not isinstance(source, (str, os.PathLike)):
        raise PolicyError(f"cannot load a policy from {type(source).__name__}")
    path = os.fspath(source)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError("policy file not found", path=path) from None
    except IsADirectoryError:
        raise PolicyError("policy path is a directory, not a file", path=path) from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"policy file is not UTF-8 text: {exc.reason}", path=path) from None
    except OSError as exc:
        raise PolicyError(f"cannot read policy file: {exc.strerror}", path=path) from None
    return parse_policy(load_yaml(text, path, env), path)


@functools.lru_cache(maxsize=1)
def baseline() -> Policy:
    """The built-in baseline policy (``governed_db/policy_baseline.yaml``)."""
    text = resources.files("governed_db").joinpath("policy_baseline.yaml").read_text("utf-8")
    return parse_policy(load_yaml(text, BASELINE_SOURCE, {}), BASELINE_SOURCE)


def parse_policy(document: Any, source: str) -> Policy:
    """Validate a line-aware document (from ``load_yaml``) into a ``Policy``.

    Its ``masking`` rules extend the built-in baseline's (unless the section
    says ``baseline: false``); the baseline itself (``BASELINE_SOURCE``) extends nothing.
    """
    path = None if source == MAPPING_SOURCE else source
    if not isinstance(document, LineDict):
        Field(document, "", 1, path).fail("a policy must be a mapping of sections")
    r = Reader(document, "", path)
    version_field = r.require("version")
    version = version_field.expect(int)
    if version not in SUPPORTED_VERSIONS:
        version_field.fail(f"unsupported version {version}; this governed_db reads version 1")
    mode = r.map("mode", lambda f: f.choice(MODES, "mode")) or "enforce"
    description = r.get("description", str, "")
    envs, default_env = r.map("environments", _environments) or ((), "default")
    env_names = frozenset(e.name for e in envs) | {default_env}
    actors = r.map("actors", _actors) or ()
    approvals = parse_approvals(r.field("approvals"))
    approval = approval_rule_parser(approvals, [g.name for g in actors], parse_time_window)
    rules = parse_rules(r.require("guardrails"), env_names, [g.name for g in actors], approval)
    default_limits, limits = r.map("limits", lambda f: _limits(f, env_names)) or (Limits(), {})
    audit_on, audit = r.map("audit", _audit) or (True, MappingProxyType({}))
    extends = None if source == BASELINE_SOURCE else baseline().masking
    masking = parse_masking(r.field("masking"), env_names, [g.name for g in actors], extends)
    r.finish()
    return Policy(
        version=version,
        rules=rules,
        mode=mode,
        environments=envs,
        default_environment=default_env,
        actors=actors,
        default_limits=default_limits,
        limits=MappingProxyType(limits),
        audit=audit,
        audit_enabled=audit_on,
        source=source,
        description=description,
        masking=masking,
        approvals=approvals,
        digest=_digest(document),
    )


def _digest(document: Any) -> str:
    """SHA-256 over the validated document's canonical JSON (``approvals`` pin it)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _name(item: Field, name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        item.fail(f"bad {what} name {name!r}: use letters, digits, '-', '_', '.'")
    return name


def _environments(item: Field) -> tuple[tuple[Environment, ...], str]:
    r = item.reader()
    default = "default"
    envs = []
    for name, value in r.entries():
        if name == "default":
            default = _name(value, value.expect(str), "environment")
            continue
        _name(value, name, "environment")
        if value.value is None:
            envs.append(Environment(name))
            continue
        er = value.reader()
        matchers = er.map("match", lambda f: tuple(_env_matcher(m) for m in f.items())) or ()
        envs.append(Environment(name, matchers, er.get("description", str, "")))
        er.finish()
    return tuple(envs), default


def _env_matcher(item: Field) -> EnvMatcher:
    r = item.reader()

    def globs(key: str) -> GlobSet | None:
        return r.map(key, lambda f: GlobSet(parse_glob_list(f)))

    matcher = EnvMatcher(host=globs("host"), dbname=globs("dbname"), port=globs("port"))
    r.finish()
    if matcher == EnvMatcher():
        item.fail("give at least one of host, dbname, port")
    return matcher


def _actors(item: Field) -> tuple[ActorGroup, ...]:
    groups = []
    for name, value in item.reader().entries():
        _name(value, name, "actor group")
        if value.value is None:
            value.fail("an actor group needs at least one member entry")
        groups.append(ActorGroup(name, tuple(_actor_matcher(m) for m in value.items())))
    return tuple(groups)


def _actor_matcher(item: Field) -> ActorMatcher:
    if isinstance(item.value, str):
        return ActorMatcher(who=GlobSet(parse_glob_list(item)))
    r = item.reader()

    def globs(key: str) -> GlobSet | None:
        return r.map(key, lambda f: GlobSet(parse_glob_list(f)))

    kinds = r.map("kind", lambda f: f.choices(KINDS, "actor kind"))
    matcher = ActorMatcher(kinds, globs("name"), globs("email"), globs("on_behalf_of"))
    r.finish()
    if matcher == ActorMatcher():
        item.fail("give at least one of kind, name, email, on_behalf_of")
    return matcher


def _limits(item: Field, env_names: frozenset[str]) -> tuple[Limits, dict[str, Limits]]:
    r = item.reader()
    default = r.map("default", lambda f: _limit_values(f, Limits())) or Limits()
    result: dict[str, Limits] = {}
    for name, value in r.entries():
        if name != "default":
            Field(name, value.key, value.line, value.path).choice(env_names, "environment")
            result[name] = _limit_values(value, default)
    return default, result


def _limit_values(item: Field, base: Limits) -> Limits:
    if item.value is None:
        return base
    r = item.reader()
    values: dict[str, Any] = {}
    for key in _LIMIT_KEYS:
        if key in r.data and r.data[key] is None:  # explicit null: no limit here
            r.field(key)
            values[key] = None
            continue
        found: float | None = r.map(
            key, _positive_int if key == "max_rows_affected" else parse_duration
        )
        values[key] = getattr(base, key) if found is None else found
    r.finish()
    return Limits(**values)


def _positive_int(item: Field) -> int:
    value = item.expect(int)
    if value < 0:
        item.fail(f"must be ≥ 0, got {value}")
    return value


def _audit(item: Field) -> tuple[bool, Mapping[str, Any]]:
    """``audit: false`` (off), or the section, validated by the audit room's own rules."""
    if isinstance(item.value, bool):
        if item.value:
            item.fail("write `audit: false` to turn audit off, or give the audit settings")
        return False, MappingProxyType({})
    r = item.reader()
    out: dict[str, Any] = {}

    def keep(key: str, convert: Any) -> None:
        found = r.field(key)
        if found is not None:
            out[key] = convert(found)

    keep("path", lambda f: str(f.expect(str)))
    keep("durability", lambda f: f.choice({"strict", "batch", "none"}, "durability"))
    keep("batch_ms", _positive_int)
    keep("fail_closed", lambda f: f.expect(bool))
    keep("redact_literals", lambda f: f.expect(bool))
    keep("parameters", _parameters)
    keep("signing", lambda f: f.choice({"every", "checkpoint"}, "signing mode"))
    keep("checkpoint_every", _positive_int)
    keep("checkpoint_seconds", _positive_number)
    keep("rotate", _rotate)
    keep("sinks", lambda f: tuple(_sink(s) for s in f.items()))
    r.finish()
    try:  # what the loader can't see (sink options, cross-checks) is the audit room's
        AuditSettings.from_mapping(out, item.key)
    except PolicyError as exc:
        line = _line_of(item, exc.key or item.key)
        raise PolicyError(str(exc), path=item.path, line=line, key=exc.key) from None
    return True, MappingProxyType(out)


def _line_of(item: Field, key: str) -> int | None:
    """The line of a dotted key (``audit.sinks[1].url``) under ``item``, or the nearest above."""
    node: Any = item.value
    line = item.line
    for name, index in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", key[len(item.key) :]):
        if isinstance(node, LineDict) and name and name in node:
            line, node = node.line_of(name), node[name]
        elif isinstance(node, LineList) and index and int(index) < len(node):
            line, node = node.line_of(int(index)), node[int(index)]
        else:
            break
    return line or None


def _parameters(item: Field) -> str:
    if item.value is False:  # YAML 1.1 reads a bare `off` as false
        return "off"
    return item.choice({"off", "hash", "plain"}, "parameters mode")


def _positive_number(item: Field) -> float:
    value = item.expect(float)
    if value <= 0:
        item.fail(f"must be > 0, got {value}")
    return value


def _rotate(item: Field) -> Mapping[str, Any]:
    r = item.reader()
    out: dict[str, Any] = {}
    max_bytes = r.map("max_bytes", _positive_int)
    if max_bytes is not None:
        out["max_bytes"] = max_bytes
    age = r.field("max_age")
    if age is not None:
        out["max_age"] = parse_duration(age)  # seconds: the audit room takes a number
    r.finish()
    return MappingProxyType(out)


def _sink(item: Field) -> Mapping[str, Any]:
    r = item.reader()
    r.require("type").choice(_SINK_TYPES, "sink type")
    for _ in r.entries():  # other keys are the audit room's to validate
        pass
    sink: Mapping[str, Any] = _frozen(r.data)
    return sink


def _frozen(value: Any) -> Any:
    """Read-only copy: mappings → MappingProxyType, lists → tuples, env strings → str."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, EnvStr):
        return str(value)
    return value


def _located(value: Any, env: Mapping[str, str], key: str = "") -> Any:
    """A plain mapping/list as line-less LineDict/LineList, ``env:`` strings resolved."""
    if isinstance(value, Mapping):
        result = LineDict()
        result.line, result.key_lines = 0, {}
        for k, v in value.items():
            where = f"{key}.{k}" if key else str(k)
            if not isinstance(k, str):
                raise PolicyError(f"{where}: keys must be strings, got {k!r}", key=where)
            result[k] = _located(v, env, where)
        return result
    if isinstance(value, (list, tuple)):
        items = LineList(_located(v, env, f"{key}[{i}]") for i, v in enumerate(value))
        items.line, items.item_lines = 0, []
        return items
    if isinstance(value, str):
        try:
            return env_value(value, env)
        except LookupError as exc:
            raise PolicyError(f"{key}: {exc.args[0]}", key=key) from None
    return value
