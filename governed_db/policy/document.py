"""``Policy``: a loaded, validated policy, plus its environments and actor groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from governed_db.errors import PolicyError
from governed_db.policy.approvals_section import ApprovalsSection
from governed_db.policy.masking_probes import matches, probing
from governed_db.policy.masking_section import MaskingRule, MaskingSection, MaskingSelection
from governed_db.policy.model import Context, GlobSet, Limits, Rule

if TYPE_CHECKING:
    from governed_db.identity import Identity
    from governed_db.masking import MaskRule
    from governed_db.sql.facts import Facts, StatementFacts

__all__ = ["ActorGroup", "ActorMatcher", "EnvMatcher", "Environment", "Policy"]

#: A cached masking answer: final, or the candidates whose time windows are still to judge.
_Selected = MaskingSelection | tuple[MaskingRule, ...]


@dataclass(frozen=True, slots=True)
class EnvMatcher:
    """Globs on connection parameters; every one given must match."""

    host: GlobSet | None = None
    dbname: GlobSet | None = None
    port: GlobSet | None = None

    def matches(self, params: Mapping[str, str]) -> bool:
        """``host`` may list several hosts (libpq ``h1,h2``): any one matching counts."""
        if self.host is not None:
            hosts = str(params.get("host") or params.get("hostaddr") or "").split(",")
            if not self.host.matches_any(h.strip() for h in hosts):
                return False
        if self.dbname is not None and not self.dbname.matches(str(params.get("dbname") or "")):
            return False
        if self.port is not None:
            ports = str(params.get("port") or "5432").split(",")
            if not self.port.matches_any(p.strip() for p in ports):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Environment:
    """A named environment; it is matched when any of its ``match`` entries matches."""

    name: str
    match: tuple[EnvMatcher, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class ActorMatcher:
    """One way to belong to a group; every given field must match.

    ``who`` (a bare string in the file) matches the name or the email.
    """

    kinds: frozenset[str] | None = None
    name: GlobSet | None = None
    email: GlobSet | None = None
    on_behalf_of: GlobSet | None = None
    who: GlobSet | None = None

    def matches(self, identity: Identity) -> bool:
        """Whether ``identity`` fits this entry."""
        if self.kinds is not None and identity.kind not in self.kinds:
            return False
        if self.name is not None and not self.name.matches(identity.name):
            return False
        if self.email is not None and not self.email.matches(identity.email or ""):
            return False
        if self.on_behalf_of is not None and not self.on_behalf_of.matches(
            identity.on_behalf_of or ""
        ):
            return False
        return self.who is None or self.who.matches_any((identity.name, identity.email or ""))


@dataclass(frozen=True, slots=True)
class ActorGroup:
    """A named group of identities: a member matches any of ``members``."""

    name: str
    members: tuple[ActorMatcher, ...]

    def matches(self, identity: Identity) -> bool:
        """Whether ``identity`` belongs to the group."""
        return any(m.matches(identity) for m in self.members)


def _baseline_masking() -> MaskingSection:
    """The built-in baseline's masking (for a ``Policy`` built without one)."""
    from governed_db.policy.loader import baseline

    return baseline().masking


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """A validated policy. Rules are evaluated in order; the first match wins.

    ``limits`` maps environment names to their resolved limits (the default
    merged in); ``audit`` is the validated ``audit`` section as a read-only
    mapping for the audit room to build sinks from (``audit_enabled`` is False
    for ``audit: false``, audit explicitly turned off). ``masking`` is the
    validated ``masking`` section (the built-in baseline's when not given);
    ``masking_for(context)`` gives the masking rules that hold for a context.
    """

    version: int
    rules: tuple[Rule, ...]
    mode: str = "enforce"
    environments: tuple[Environment, ...] = ()
    default_environment: str = "default"
    actors: tuple[ActorGroup, ...] = ()
    default_limits: Limits = field(default_factory=Limits)
    limits: Mapping[str, Limits] = field(default_factory=lambda: MappingProxyType({}))
    audit: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    audit_enabled: bool = True
    source: str = "<mapping>"
    description: str = ""
    masking: MaskingSection = field(default_factory=_baseline_masking)
    approvals: ApprovalsSection = field(default_factory=ApprovalsSection)
    #: SHA-256 of the policy document (approvals may be pinned to it).
    digest: str = ""
    uses_time: bool = field(init=False, default=False)
    uses_estimates: bool = field(init=False, default=False)
    _groups: dict[Identity | None, frozenset[str]] = field(
        init=False, repr=False, default_factory=dict
    )
    _masking_cache: dict[tuple[str, Identity | None], _Selected] = field(
        init=False, repr=False, default_factory=dict
    )
    _masking_tuples: dict[tuple[str, ...], tuple[MaskRule, ...]] = field(
        init=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "uses_time", any(r.when.time for r in self.rules))
        object.__setattr__(self, "uses_estimates", any(r.when.estimated_rows for r in self.rules))

    @property
    def environment_names(self) -> frozenset[str]:
        """Every environment the policy knows, the default included."""
        return frozenset(e.name for e in self.environments) | {self.default_environment}

    @property
    def rule_ids(self) -> frozenset[str]:
        """The ids of every rule."""
        return frozenset(r.id for r in self.rules)

    def environment_for(
        self, explicit: str | None = None, params: Mapping[str, str] | None = None
    ) -> str:
        """The environment of a connection: ``explicit`` if given, else the first
        environment whose patterns match the DSN ``params``, else the default.

        An explicit name the policy does not know raises ``PolicyError`` (a typo
        must not silently skip the rules written for the real name).
        """
        if explicit is not None:
            if explicit not in self.environment_names:
                known = ", ".join(sorted(self.environment_names))
                raise PolicyError(
                    f"unknown environment {explicit!r}; the policy ({self.source}) knows: {known}"
                )
            return explicit
        values = params or {}
        for env in self.environments:
            if any(m.matches(values) for m in env.match):
                return env.name
        return self.default_environment

    def rule(self, rule_id: str | None) -> Rule | None:
        """The rule with this id, or None."""
        return next((r for r in self.rules if r.id == rule_id), None)

    def limits_for(self, environment: str) -> Limits:
        """The limits for ``environment`` (the default limits if it has none of its own)."""
        return self.limits.get(environment, self.default_limits)

    def actor_groups(self, identity: Identity | None) -> frozenset[str]:
        """The names of the groups ``identity`` belongs to (memoized per identity)."""
        found = self._groups.get(identity)
        if found is None:
            found = frozenset(
                g.name for g in self.actors if identity is not None and g.matches(identity)
            )
            if len(self._groups) > 1024:
                self._groups.clear()
            self._groups[identity] = found
        return found

    def needs_estimate(self, facts: Facts, context: Context) -> bool:
        """True if an ``estimated_rows`` rule could decide some statement of ``facts``.

        The gate then runs EXPLAIN and decides again with ``estimated_rows`` set.
        """
        if not self.uses_estimates:
            return False
        clock: list[datetime] = []
        count = len(facts.statements)
        for s in facts.statements:
            rule, _, _ = self.first_match(s, count, context, clock, stop_at_estimate=True)
            if rule is not None and rule.when.estimated_rows is not None:
                return True
        return False

    def first_match(
        self,
        s: StatementFacts,
        count: int,
        context: Context,
        clock: list[datetime],
        *,
        stop_at_estimate: bool = False,
    ) -> tuple[Rule | None, bool, bool]:
        """The first rule whose conditions hold for statement ``s`` (of ``count``).

        Returns (rule or None, whether a time window was consulted, whether an
        estimate was). ``clock`` holds the time once read (at most once, and only
        if a rule needs it). With ``stop_at_estimate`` the first rule whose other
        conditions hold is returned without judging its ``estimated_rows``.
        """
        identity = context.identity
        kind = identity.kind if identity is not None else None
        groups = self.actor_groups(identity)
        timed = estimated = False
        for rule in self.rules:
            when = rule.when
            if rule.id in context.waived or not when.static_match(
                s, count, context.environment, kind, groups
            ):
                continue
            if when.probing:
                selection = self.masking_selection(context)
                timed = timed or selection.timed
                uses = probing(s, selection.rules)
                every = when.every
                if not (
                    matches(when.filters_on_masked, uses.filters_on_masked, every)
                    and matches(when.probes_masked, uses.probes_masked, every)
                    and matches(when.orders_by_masked, uses.orders_by_masked, every)
                ):
                    continue
            if when.time is not None:
                timed = True
                if not clock:
                    clock.append(context.now or datetime.now(UTC))
                if not when.time.contains(clock[0]):
                    continue
            if when.estimated_rows is not None and not stop_at_estimate:
                estimated = True
                if not when.estimated_rows.matches(context.estimated_rows):
                    continue
            return rule, timed, estimated
        return None, timed, estimated

    def masking_for(self, context: Context) -> tuple[MaskRule, ...]:
        """The masking rules whose ``when`` holds for ``context``, in order.

        Only ``context.environment``, ``context.identity`` and (for rules with a
        ``time`` window) ``context.now`` matter. The same rules come back as the
        same tuple object. See ``masking_selection`` for whether the answer
        depends on the clock.
        """
        return self.masking_selection(context).rules

    def masking_selection(self, context: Context) -> MaskingSelection:
        """``masking_for`` with its cache key and whether it depends on the clock.

        Cheap: the environment and actor conditions are judged once per
        (environment, identity); only rules with a ``time`` window are judged
        again, against ``context.now`` (None: the current time).
        """
        key = (context.environment, context.identity)
        found = self._masking_cache.get(key)
        if found is None:
            identity = context.identity
            kind = identity.kind if identity is not None else None
            groups = self.actor_groups(identity)
            candidates = tuple(
                m for m in self.masking.rules if m.holds(context.environment, kind, groups)
            )
            if any(m.when.time is not None for m in candidates):
                found = candidates
            else:
                ids = tuple(m.id for m in candidates)
                rules = self._interned(tuple(m.rule for m in candidates), ids)
                found = MaskingSelection(rules, ids)
            if len(self._masking_cache) > 1024:
                self._masking_cache.clear()
            self._masking_cache[key] = found
        if isinstance(found, MaskingSelection):
            return found
        now = context.now or datetime.now(UTC)
        rules, ids = self.masking.select(found, now)
        expires = (now.timestamp() // 60 + 1) * 60
        return MaskingSelection(self._interned(rules, ids), ids, True, expires)

    def _interned(self, rules: tuple[MaskRule, ...], ids: tuple[str, ...]) -> tuple[MaskRule, ...]:
        found = self._masking_tuples.get(ids)
        if found is None:
            if len(self._masking_tuples) > 1024:
                self._masking_tuples.clear()
            found = self._masking_tuples[ids] = rules
        return found
