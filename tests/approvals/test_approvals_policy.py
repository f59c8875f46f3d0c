"""The approvals section and rule blocks load strictly: FILE:LINE, did-you-mean, fail closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import governed_db
from governed_db.approvals import public_text

KEY = public_text(Ed25519PrivateKey.generate())
OTHER = public_text(Ed25519PrivateKey.generate())


def _policy(tmp_path: Path, approvals: str, approval: str = "{group: dba}") -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(
        f"""version: 1
environments: {{prod: null}}
actors: {{agents: [{{kind: agent}}]}}
approvals:
{approvals}
guardrails:
  - id: needs-approval
    when: {{environment: prod, operation: delete}}
    action: require_approval
    approval: {approval}
"""
    )
    return path


GOOD = f"""  approvers:
    alice: {{key: "{KEY}", email: alice@example.com}}
    bob: {{key: "{OTHER}"}}
  groups: {{dba: [alice, bob]}}"""


def test_a_full_section_loads(tmp_path: Path) -> None:
    approval = (
        "{group: dba, min_approvals: 2, expires: 2h, uses: 3, self_approval: true, wait: 30s,"
        " requester: agents, pin_policy: false, webhook: 'https://hooks.example.com/x',"
        " auto: {window: {days: mon-fri, hours: '09:00-17:00', timezone: Europe/Paris},"
        " estimated_rows_under: 100, ticket: {env: CHANGE_TICKET, pattern: 'CHG-[0-9]+'}}}"
    )
    policy = governed_db.load_policy(_policy(tmp_path, GOOD, approval))
    rule = policy.rule("needs-approval")
    assert rule is not None
    a = rule.approval
    assert (a.group, a.min_approvals, a.expires, a.uses) == ("dba", 2, 7200.0, 3)
    assert (a.self_approval, a.wait, a.requester, a.pin_policy) == (True, 30.0, "agents", False)
    assert a.auto.estimated_rows_under == 100
    assert policy.approvals.approvers["alice"].email == "alice@example.com"
    assert policy.approvals.members("dba") == ("alice", "bob")
    assert len(policy.digest) == 64


def test_key_from_a_file_relative_to_the_policy(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "carol.pub").write_bytes(pem)
    (tmp_path / "keys" / "dan.pub").write_text(public_text(Ed25519PrivateKey.generate()))
    section = """  approvers:
    carol: {key: "file:keys/carol.pub"}
    dan: {key: "file:keys/dan.pub"}
  groups: {dba: [carol, dan]}"""
    policy = governed_db.load_policy(_policy(tmp_path, section))
    assert policy.approvals.approvers["carol"].key_text == public_text(key)


@pytest.mark.parametrize(
    ("section", "approval", "line", "message"),
    [
        (
            GOOD.replace("[alice, bob]", "[alice, bobb]"),
            "{group: dba}",
            8,
            "unknown approver 'bobb' (did you mean 'bob'?)",
        ),
        (GOOD, "{group: dbas}", 13, "unknown approver group 'dbas' (did you mean 'dba'?)"),
        (GOOD.replace(KEY, "ed25519:AAAA"), "{group: dba}", 6, "is 32 bytes, this one is 3"),
        (GOOD.replace(KEY, "ed25519:not base64!"), "{group: dba}", 6, "not valid base64"),
        (GOOD.replace(KEY, "rsa:abc"), "{group: dba}", 6, "write the key as 'ed25519:BASE64'"),
        (GOOD.replace(KEY, "file:missing.pub"), "{group: dba}", 6, "cannot read approver key file"),
        (GOOD.replace(OTHER, KEY), "{group: dba}", 7, "has the same key as 'alice'"),
        (GOOD.replace("email:", "emial:"), "{group: dba}", 6, "(did you mean 'email'?)"),
        (GOOD, "{group: dba, min_approvals: 3}", 13, "has only 2 approver(s)"),
        (GOOD, "{group: dba, min_approvals: 0}", 13, "must be ≥ 1"),
        (GOOD, "{group: dba, requester: robots}", 13, "unknown requester"),
        (GOOD, "{group: dba, webhook: 'ftp://x'}", 13, "bad webhook URL"),
        (GOOD, "{group: dba, expires: 10}", 13, "needs a unit"),
        (GOOD, "{group: dba, auto: {}}", 13, "give at least one of window"),
        (
            GOOD,
            "{group: dba, auto: {ticket: {env: T, pattern: '('}}}",
            13,
            "bad regular expression",
        ),
        (GOOD, "{group: dba, wiat: 1s}", 13, "(did you mean 'wait'?)"),
        (
            "  store: {type: postgress, dsn: x}\n" + GOOD,
            "{group: dba}",
            5,
            "unknown approval store type 'postgress' (did you mean 'postgres'?)",
        ),
        ("  store: {type: postgres}\n" + GOOD, "{group: dba}", 5, "missing required key 'dsn'"),
        ("  groups: {dba: [alice]}", "{group: dba}", 5, "no approvers are listed"),
    ],
)
def test_bad_sections_fail_with_file_and_line(
    tmp_path: Path, section: str, approval: str, line: int, message: str
) -> None:
    path = _policy(tmp_path, section, approval)
    with pytest.raises(governed_db.PolicyError) as info:
        governed_db.load_policy(path)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}:"), str(info.value)


def test_approval_block_only_on_require_approval_rules(tmp_path: Path) -> None:
    path = _policy(tmp_path, GOOD).read_text().replace("action: require_approval", "action: block")
    (tmp_path / "q.yaml").write_text(path)
    with pytest.raises(governed_db.PolicyError, match="applies only to rules whose action"):
        governed_db.load_policy(tmp_path / "q.yaml")


def test_approval_block_without_a_section_fails(tmp_path: Path) -> None:
    text = _policy(tmp_path, GOOD).read_text()
    text = text.replace("approvals:\n" + GOOD + "\n", "")
    (tmp_path / "q.yaml").write_text(text)
    with pytest.raises(governed_db.PolicyError, match="has no 'approvals' section"):
        governed_db.load_policy(tmp_path / "q.yaml")


def test_example_policy_documents_approvals(tmp_path: Path) -> None:
    """The commented example in policies.example.yaml loads once uncommented."""
    root = Path(__file__).resolve().parents[2]
    text = (root / "policies.example.yaml").read_text()
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("# approvals:"))
    section, rule, into = [], [], None
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        body = line[2:]
        if body.startswith("approvals:"):
            into = section
        elif body.startswith("and on a guardrail"):
            into = rule
            continue
        if into is not None and body.strip():
            into.append(body.split("  #")[0].rstrip() if into is section else body)
    document = "\n".join(section)
    document = document.replace("ONCALL_DBA_PUBLIC_KEY", KEY[len("ed25519:") :])
    document = document.replace("RELEASE_LEAD_PUBLIC_KEY", OTHER[len("ed25519:") :])
    path = tmp_path / "example.yaml"
    path.write_text(
        "version: 1\nenvironments: {prod: null}\n"
        + document
        + "\nguardrails:\n"
        + "\n".join(rule)
        + "\n"
    )
    policy = governed_db.load_policy(path)
    approval = policy.rules[0].approval
    assert approval.min_approvals == 2
    assert approval.auto is not None
    assert approval.auto.ticket_env == "CHANGE_TICKET"
    assert policy.approvals.members("dba") == ("oncall-dba", "release-lead")
