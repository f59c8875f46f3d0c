"""The policy's ``masking:`` section: what loads, how it extends the baseline, and
``Policy.masking_for(context)``, which picks the rules that hold for who fetches, where
and when."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from governed_db.identity import Identity
from governed_db.masking import ColumnIdentity, MaskRule, MaskRules, baseline_rules
from governed_db.policy import Context, Policy, baseline, load_policy
from governed_db.policy.masking_section import MaskingSection, MaskingSelection

ROOT = Path(__file__).parent.parent
BASELINE_IDS = tuple(r.id for r in baseline_rules())
ALICE = Identity("human", "alice", email="alice@support.example.com")
BOB = Identity("human", "bob", email="bob@example.com")
CLAUDE = Identity("agent", "claude", on_behalf_of="bob")
NOON = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
NIGHT = datetime(2024, 1, 10, 23, 30, tzinfo=UTC)

POLICY = """\
version: 1
guardrails: []
environments:
  default: dev
  prod: {}
  dev: {}
actors:
  support:
    - email: "*@support.example.com"
masking:
  phone_regions: [us, GB, gb]
  limits: {max_chars: 5000, time_budget_ms: 40}
  rules:
    - id: support-sees-emails-in-dev
      description: support reads real addresses in dev
      when: {environment: dev, actors: [support]}
      columns: [customers.email]
      action: reveal

    - id: customer-ids
      columns: [sales.orders.customer_id]
      method: hash
      options: {prefix: "cust_", length: 12}

    - id: agents-see-no-names
      when: {actor_kind: agent}
      column_names: [full_name]
      method: partial
      options: {keep_first: 1, keep_last: 0}
      category: name

    - id: notes-at-night
      when:
        environments: [prod]
        time: {hours: "22:00-06:00"}
      column_names: ["*_notes"]
      category: notes

    - id: free-text-phones-visible
      when: {actors: [support]}
      column_names: [comment]
      detectors: [phone]
      action: reveal

    - id: computed-pii
      detectors: [pii]
      scope: computed
      method: redact
"""
USER_IDS = (
    "support-sees-emails-in-dev",
    "customer-ids",
    "agents-see-no-names",
    "notes-at-night",
    "free-text-phones-visible",
    "computed-pii",
)


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return load_policy(write(tmp_path, POLICY))


def ids(rules: tuple[MaskRule, ...]) -> tuple[str, ...]:
    return tuple(r.id for r in rules)


# --- loading ---------------------------------------------------------------------------------


def test_a_full_section_loads(policy: Policy, tmp_path: Path) -> None:
    m = policy.masking
    assert (m.enabled, m.baseline, m.detectors_enabled, m.detectors_scope) == (
        True,
        True,
        True,
        "all",
    )
    assert m.phone_regions == ("US", "GB")
    assert (m.max_chars, m.time_budget_ms, m.budget) == (5000, 40, 0.04)
    assert m.mask_rules_options() == {
        "phone_regions": ("US", "GB"),
        "max_chars": 5000,
        "budget": 0.04,
    }
    assert tuple(r.id for r in m.rules) == USER_IDS + BASELINE_IDS
    assert m.uses_time
    first = m.rules[0]
    assert (first.source, first.line, first.description) == (
        str(tmp_path / "policy.yaml"),
        14,
        "support reads real addresses in dev",
    )
    assert first.when.environments == {"dev"}
    assert first.when.actors == {"support"}
    assert m.rules[len(USER_IDS)].source == "<baseline>"


def test_rules_become_the_masking_rooms_rules(policy: Policy) -> None:
    by_id = {m.id: m.rule for m in policy.masking.rules}
    reveal = by_id["support-sees-emails-in-dev"]
    assert (reveal.action, reveal.columns.patterns) == ("reveal", ("customers.email",))
    assert reveal.matches("public.customers.email", "e", "email")
    assert reveal.matches("crm.customers.email", "e", "email")
    hashed = by_id["customer-ids"]
    assert (hashed.method, dict(hashed.options)) == ("hash", {"prefix": "cust_", "length": 12})
    names = by_id["agents-see-no-names"]
    assert (names.method, names.category, names.column_names.patterns) == (
        "partial",
        "name",
        ("full_name",),
    )
    notes = by_id["notes-at-night"]
    assert (notes.action, notes.method, notes.category) == ("mask", "redact", "notes")
    narrowed = by_id["free-text-phones-visible"]
    assert (narrowed.detectors, narrowed.column_names.patterns) == (("phone",), ("comment",))
    computed = by_id["computed-pii"]
    assert computed.scope == "computed"
    assert computed.detectors == ("email", "phone", "credit_card", "iban", "us_ssn")


def test_no_section_means_the_baseline(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "version: 1\nguardrails: []\n"))
    m = policy.masking
    assert (m.enabled, m.baseline, m.phone_regions, m.max_chars, m.time_budget_ms) == (
        True,
        True,
        ("US",),
        1_000_000,
        250,
    )
    assert policy.masking_for(Context("default")) == baseline_rules()
    assert policy.masking_for(Context("default", CLAUDE)) == baseline_rules()


def test_an_empty_section_means_the_baseline(tmp_path: Path) -> None:
    for text in ("masking:\n", "masking: {}\n", "masking:\n  rules: []\n"):
        policy = load_policy(write(tmp_path, "version: 1\nguardrails: []\n" + text))
        assert policy.masking_for(Context("default")) == baseline_rules()


def test_the_baseline_yaml_mirrors_the_masking_room() -> None:
    base = baseline()
    assert tuple(m.rule for m in base.masking.rules) == baseline_rules()
    assert base.masking.baseline is False  # it is the baseline: it extends nothing
    assert all(m.source == "<baseline>" and m.line for m in base.masking.rules)
    text = (ROOT / "governed_db" / "policy_baseline.yaml").read_text()
    for rule in yaml.safe_load(text)["masking"]["rules"]:
        assert "when" not in rule  # in force everywhere
        assert "scope" not in rule  # so that detectors.scope applies to it


def test_baseline_false_keeps_only_the_policy_rules(tmp_path: Path) -> None:
    text = POLICY.replace("masking:\n", "masking:\n  baseline: false\n")
    policy = load_policy(write(tmp_path, text))
    assert not policy.masking.baseline
    assert tuple(m.id for m in policy.masking.rules) == USER_IDS
    # a baseline rule's id is free to use when the baseline is not extended
    text = "version: 1\nguardrails: []\nmasking:\n  baseline: false\n  rules:\n"
    text += "    - {id: baseline-email-columns, column_names: [mail]}\n"
    assert load_policy(write(tmp_path, text)).masking.rules[0].id == "baseline-email-columns"


def test_enabled_false_is_the_explicit_opt_out(tmp_path: Path) -> None:
    text = "version: 1\nguardrails: []\nmasking:\n  enabled: false\n"
    policy = load_policy(write(tmp_path, text))
    assert not policy.masking.enabled
    assert policy.masking.rules == ()
    for env in ("default", "prod"):
        assert policy.masking_for(Context(env, CLAUDE)) == ()


def test_detectors_scope_applies_to_the_baseline_and_rules_without_one(tmp_path: Path) -> None:
    text = POLICY.replace("masking:\n", "masking:\n  detectors: {scope: computed}\n")
    text = text.replace(
        "      detectors: [pii]\n      scope: computed\n", "      detectors: [pii]\n"
    )
    text += "    - {id: secrets-everywhere, detectors: [secrets], scope: all}\n"
    policy = load_policy(write(tmp_path, text))
    scopes = {m.id: m.rule.scope for m in policy.masking.rules if m.rule.detectors}
    assert scopes == {
        "free-text-phones-visible": "computed",
        "computed-pii": "computed",
        "secrets-everywhere": "all",
        "baseline-secrets-detected": "computed",
        "baseline-email-detected": "computed",
        "baseline-card-detected": "computed",
        "baseline-phone-detected": "computed",
        "baseline-pii-detected": "computed",
    }
    assert policy.masking.detectors_scope == "computed"
    # column rules don't scan: their scope stays "all"
    assert {m.rule.scope for m in policy.masking.rules if not m.rule.detectors} == {"all"}


def test_detectors_off_leaves_the_baseline_detectors_out(tmp_path: Path) -> None:
    text = "version: 1\nguardrails: []\nmasking:\n  detectors: {enabled: false}\n"
    policy = load_policy(write(tmp_path, text))
    assert not policy.masking.detectors_enabled
    assert [m.id for m in policy.masking.rules] == [i for i in BASELINE_IDS if "detected" not in i]
    assert all(not m.rule.detectors for m in policy.masking.rules)


def test_a_mapping_policy_loads(tmp_path: Path) -> None:
    policy = load_policy(
        {
            "version": 1,
            "guardrails": [],
            "masking": {"rules": [{"id": "x", "columns": ["a.b"], "method": "null"}]},
        }
    )
    assert [m.id for m in policy.masking.rules][:2] == ["x", BASELINE_IDS[0]]
    assert not policy.masking.rules[0].line  # a mapping has no lines (0, as for guardrails)


def test_hash_loads_without_a_masking_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is read when a value is first hashed, never while a policy loads."""
    monkeypatch.setenv("GOVERNED_DB_HOME", str(tmp_path / "empty-home"))
    monkeypatch.delenv("GOVERNED_DB_MASKING_KEY", raising=False)
    monkeypatch.delenv("GOVERNED_DB_MASKING_KEY_FILE", raising=False)
    text = "version: 1\nguardrails: []\nmasking:\n  rules:\n"
    text += "    - {id: h, columns: [a.b], method: hash}\n"
    assert load_policy(write(tmp_path, text)).masking.rules[0].rule.method == "hash"


def test_a_policy_built_in_code_gets_the_baseline_masking() -> None:
    policy = Policy(version=1, rules=())
    assert policy.masking is baseline().masking
    assert policy.masking_for(Context("default")) == baseline_rules()


def test_the_shipped_policies_load() -> None:
    example = load_policy(ROOT / "policies.example.yaml")
    m = example.masking
    assert (m.enabled, m.baseline, m.detectors_enabled, m.detectors_scope) == (
        True,
        True,
        True,
        "all",
    )
    assert m.phone_regions == ("US", "GB")
    by_id = {r.id: r for r in m.rules}
    reveal = by_id["dba-sees-emails-in-dev"]
    assert reveal.rule.action == "reveal"
    assert (reveal.when.environments, reveal.when.actors) == ({"dev"}, {"dba"})
    assert by_id["pseudonymise-customer-ids"].rule.method == "hash"
    assert by_id["support-notes"].rule.columns.patterns == (
        "support.tickets.internal_notes",
        "public.customers.notes*",
    )
    assert [r.id for r in m.rules][-len(BASELINE_IDS) :] == list(BASELINE_IDS)
    dba = Identity("human", "alice")
    assert "dba-sees-emails-in-dev" in ids(example.masking_for(Context("dev", dba)))
    assert "dba-sees-emails-in-dev" not in ids(example.masking_for(Context("prod", dba)))
    demo = load_policy(ROOT / "governed_db" / "demo_policy.yaml")
    assert demo.masking_for(Context("prod", CLAUDE)) == baseline_rules()


# --- masking_for -----------------------------------------------------------------------------


def test_masking_for_filters_by_environment_and_actor(policy: Policy) -> None:
    def chosen(env: str, who: Identity | None) -> tuple[str, ...]:
        return ids(policy.masking_for(Context(env, who, now=NOON)))[: -len(BASELINE_IDS)]

    everyone = ("customer-ids", "computed-pii")
    assert chosen("dev", ALICE) == (
        "support-sees-emails-in-dev",
        "customer-ids",
        "free-text-phones-visible",
        "computed-pii",
    )
    assert chosen("prod", ALICE) == ("customer-ids", "free-text-phones-visible", "computed-pii")
    assert chosen("dev", BOB) == everyone
    assert chosen("dev", CLAUDE) == ("customer-ids", "agents-see-no-names", "computed-pii")
    assert chosen("dev", None) == everyone


def test_masking_for_judges_time_windows(policy: Policy) -> None:
    day = policy.masking_selection(Context("prod", BOB, now=NOON))
    night = policy.masking_selection(Context("prod", BOB, now=NIGHT))
    assert "notes-at-night" not in day.key
    assert "notes-at-night" in night.key
    assert day.timed
    assert night.timed
    assert night.expires == datetime(2024, 1, 10, 23, 31, tzinfo=UTC).timestamp()
    assert ids(night.rules) == night.key
    # the window is judged only where its other conditions hold: dev never consults it
    dev = policy.masking_selection(Context("dev", BOB, now=NIGHT))
    assert (dev.timed, dev.expires) == (False, None)


def test_masking_for_reads_the_clock_when_now_is_not_given(policy: Policy) -> None:
    before = datetime.now(UTC).timestamp()
    selection = policy.masking_selection(Context("prod", BOB))
    assert selection.timed
    assert selection.expires is not None
    assert before < selection.expires <= before + 61


def test_equal_selections_are_the_same_tuple(policy: Policy) -> None:
    a = policy.masking_for(Context("dev", BOB))
    b = policy.masking_for(Context("dev", Identity("human", "carol")))
    assert a is b
    assert policy.masking_for(Context("dev", BOB)) is a
    noon = policy.masking_selection(Context("prod", BOB, now=NOON))
    again = policy.masking_selection(Context("prod", BOB, now=NOON.replace(hour=13)))
    assert noon.rules is again.rules
    assert noon.key == again.key


def test_selection_key_names_the_rules(policy: Policy) -> None:
    selection = policy.masking_selection(Context("dev", ALICE))
    assert isinstance(selection, MaskingSelection)
    assert selection.key == ids(selection.rules)
    assert selection.key[-len(BASELINE_IDS) :] == BASELINE_IDS
    assert {selection.key: 1}[ids(policy.masking_for(Context("dev", ALICE)))] == 1


def test_the_filtered_rules_drive_a_mask_plan(policy: Policy) -> None:
    """What the governor does with them: MaskRules(rules, **options).plan(columns)."""
    columns = [
        ColumnIdentity("email", "public.customers.email", 25),
        ColumnIdentity("customer_id", "sales.orders.customer_id", 23),
        ColumnIdentity("full_name", "public.customers.full_name", 25),
        ColumnIdentity("api_token", "public.customers.api_token", 25),
        ColumnIdentity("?column?", None, 25),
    ]

    def actions(env: str, who: Identity) -> list[tuple[str, str | None]]:
        rules = MaskRules(
            policy.masking_for(Context(env, who, now=NOON)),
            **policy.masking.mask_rules_options(),
        )
        return [(c.action, c.rule_id) for c in rules.plan(columns).columns]

    assert actions("dev", ALICE) == [
        ("reveal", "support-sees-emails-in-dev"),
        ("mask", "customer-ids"),
        ("scan", "baseline-secrets-detected"),
        ("mask", "baseline-secret-columns"),
        ("scan", "computed-pii"),
    ]
    assert actions("prod", CLAUDE)[:3] == [
        ("mask", "baseline-email-columns"),
        ("mask", "customer-ids"),
        ("mask", "agents-see-no-names"),
    ]


def test_masking_for_is_cheap_after_the_first_call(policy: Policy) -> None:
    import time

    context = Context("dev", ALICE)
    policy.masking_for(context)
    start = time.perf_counter()
    for _ in range(10_000):
        policy.masking_for(context)
    assert (time.perf_counter() - start) / 10_000 < 20e-6  # ~0.3 µs here; generous


def test_section_defaults_are_safe() -> None:
    """A MaskingSection built in code has no rules but says so: nothing is implied."""
    empty = MaskingSection()
    assert (empty.enabled, empty.rules, empty.uses_time) == (True, (), False)
