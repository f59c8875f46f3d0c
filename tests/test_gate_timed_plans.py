"""A statement whose decision depends on the clock reuses its plan only while the decision holds."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from governed_db import Identity, PolicyGovernor, PolicyViolation, Session, load_policy

POLICY = """\
version: 1
actors:
  agents:
    - kind: agent
guardrails:
  - id: agents-any-time
    description: every hour of every day, so the decision is timed but always the same
    when:
      actors: [agents]
      time: {days: [mon-sun], hours: "00:00-24:00", timezone: UTC}
    action: observe
"""
QUERY = "select id from customers where id = %s"


@pytest.fixture
def gate(tmp_path: Path) -> tuple[PolicyGovernor, Session]:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    governor = PolicyGovernor(load_policy(path), identity=Identity(kind="agent", name="a"))
    return governor, governor.open_session(Session("s", {"host": "h", "dbname": "d"}))


def test_a_timed_decision_is_reused_until_it_expires(
    gate: tuple[PolicyGovernor, Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    governor, session = gate
    first = governor.admit(session, "execute", QUERY, (1,), None)
    assert first.decision.timed
    assert first.decision.rule_id == "agents-any-time"
    again = governor.admit(session, "execute", QUERY, (2,), None)
    assert again.planned is first.planned  # the cache handed back the same decision
    assert QUERY not in session.plans  # timed: never kept for the session as if permanent

    # whatever the cache hands back decides: a different decision is never given the old plan
    ((key, (decision, expires)),) = governor.cache._data.items()
    governor.cache._data[key] = (replace(decision, action="block", rule_id="now-blocked"), expires)
    with pytest.raises(PolicyViolation) as refused:
        governor.admit(session, "execute", QUERY, (2,), None)
    assert refused.value.rule_id == "now-blocked"
    governor.cache._data[key] = (decision, expires)

    later = time.time() + 120  # past the minute the cached decision was good for
    monkeypatch.setattr(time, "time", lambda: later)
    fresh = governor.admit(session, "execute", QUERY, (3,), None)
    assert fresh.planned is not first.planned
    assert fresh.decision is not first.decision
    assert fresh.decision.rule_id == "agents-any-time"
