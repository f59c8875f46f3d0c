"""Guardrails: a YAML policy → a frozen ``Policy``; ``decide`` → a ``Decision``.

    policy = load_policy("policies.yaml")           # or None: $GOVERNED_DB_POLICY / baseline
    env = policy.environment_for(None, {"host": "db.prod.internal", "dbname": "shop"})
    decision = decide(policy, facts, Context(env, identity))
    decision.raise_for(query, facts)                # PolicyViolation / ApprovalRequired
    rules = policy.masking_for(Context(env, identity))  # masking rules for who fetches

This room imports only ``governed_db.sql``, ``governed_db.identity``, ``governed_db.masking``
(to check masking rules at load time) and ``governed_db.errors``.
"""

from governed_db.policy.approvals_section import (
    ApprovalRule,
    ApprovalsSection,
    Approver,
    AutoApproval,
    StoreConfig,
    public_key_from_text,
)
from governed_db.policy.decide import DecisionCache, decide, decide_each
from governed_db.policy.document import ActorGroup, ActorMatcher, Environment, EnvMatcher, Policy
from governed_db.policy.loader import POLICY_ENV_VAR, baseline, load_policy
from governed_db.policy.masking_section import MaskingRule, MaskingSection, MaskingSelection
from governed_db.policy.model import (
    ACTIONS,
    MODES,
    Conditions,
    Context,
    Decision,
    GlobSet,
    Limits,
    Rule,
    Threshold,
    TimeWindow,
    violation,
)
from governed_db.policy.rules import PLACEHOLDERS

__all__ = [
    "ACTIONS",
    "MODES",
    "PLACEHOLDERS",
    "POLICY_ENV_VAR",
    "ActorGroup",
    "ActorMatcher",
    "ApprovalRule",
    "ApprovalsSection",
    "Approver",
    "AutoApproval",
    "Conditions",
    "Context",
    "Decision",
    "DecisionCache",
    "EnvMatcher",
    "Environment",
    "GlobSet",
    "Limits",
    "MaskingRule",
    "MaskingSection",
    "MaskingSelection",
    "Policy",
    "Rule",
    "StoreConfig",
    "Threshold",
    "TimeWindow",
    "baseline",
    "decide",
    "decide_each",
    "load_policy",
    "public_key_from_text",
    "violation",
]
