"""Ways to get an approval (wait, webhook, automatic) and what the audit trail says."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db.audit import AuditTrail, Signer
from governed_db.audit.reader import iter_records
from tests.approvals.conftest import ROWS
from tests.approvals.helpers import DELETE, approval_policy, count, prod


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def test_webhook_posts_a_slack_compatible_payload(dsn: str, home: Path, hook) -> None:
    url, handler = hook
    setup = approval_policy(home, approval={"webhook": url})
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute(DELETE)
    (payload,) = handler.received
    assert payload["approval_id"] == info.value.approval_id
    assert payload["statement"] == DELETE
    assert DELETE in payload["text"]
    assert payload["facts"] == {"operation": "delete", "tables_written": ["public.orders"]}
    assert payload["estimated_rows"] is not None
    assert payload["approve_command"] == info.value.approve_command
    # asking again for the pending request does not announce it twice
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired):
        conn.execute(DELETE)
    assert len(handler.received) == 1


def test_failing_webhook_is_reported_and_changes_nothing(dsn: str, home: Path, hook) -> None:
    url, handler = hook
    handler.status = 500
    setup = approval_policy(home, approval={"webhook": url})
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute(DELETE)
    assert "webhook answered HTTP 500" in str(info.value)
    assert count(dsn) == ROWS


def test_wait_blocks_until_an_approver_grants(dsn: str, home: Path) -> None:
    setup = approval_policy(home, approval={"wait": "60s"})
    store = setup.store()

    def approver() -> None:
        while True:
            pending = store.all()
            if pending:
                setup.decide(pending[0].request.id, "bob", max_rows=20)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=approver)
    thread.start()
    with prod(dsn, setup) as conn:
        conn.execute(DELETE)
    thread.join()
    assert count(dsn) == ROWS - 11


def test_wait_gives_up_on_a_denial(dsn: str, home: Path) -> None:
    setup = approval_policy(home, approval={"wait": "60s"})
    store = setup.store()

    def approver() -> None:
        while not store.all():
            time.sleep(0.05)
        setup.decide(store.all()[0].request.id, "bob", "deny", reason="no")

    thread = threading.Thread(target=approver)
    thread.start()
    with prod(dsn, setup) as conn, pytest.raises(governed_db.ApprovalRequired):
        conn.execute(DELETE)
    thread.join()
    assert count(dsn) == ROWS


@pytest.mark.parametrize(
    ("auto", "env", "runs"),
    [
        ({"estimated_rows_under": 1000}, {}, True),
        ({"estimated_rows_under": 2}, {}, False),
        (
            {"ticket": {"env": "CHANGE_TICKET", "pattern": "CHG-[0-9]+"}},
            {"CHANGE_TICKET": "CHG-42"},
            True,
        ),
        (
            {"ticket": {"env": "CHANGE_TICKET", "pattern": "CHG-[0-9]+"}},
            {"CHANGE_TICKET": "CHG-42x"},
            False,
        ),
        ({"ticket": {"env": "CHANGE_TICKET", "pattern": "CHG-[0-9]+"}}, {}, False),
        ({"window": {"hours": "00:00-24:00"}}, {}, True),
        ({"window": {"hours": "00:00-24:00", "outside": True}}, {}, False),
        (
            {"window": {"hours": "00:00-24:00"}, "estimated_rows_under": 2},
            {},
            False,
        ),
    ],
)
def test_automatic_approval(
    dsn: str, home: Path, monkeypatch: pytest.MonkeyPatch, auto, env, runs
) -> None:
    monkeypatch.delenv("CHANGE_TICKET", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    setup = approval_policy(home, approval={"auto": auto})
    with prod(dsn, setup) as conn:
        if runs:
            conn.execute(DELETE)
        else:
            with pytest.raises(governed_db.ApprovalRequired):
                conn.execute(DELETE)
    assert count(dsn) == (ROWS - 11 if runs else ROWS)


def test_every_step_is_in_the_audit_trail(dsn: str, home: Path, tmp_path: Path) -> None:
    setup = approval_policy(home, approval={"min_approvals": 2})
    key = Signer.generate()
    spool = tmp_path / "audit"
    trail = AuditTrail.from_settings({"path": str(spool), "durability": "strict"}, signer=key)
    with prod(dsn, setup, audit=trail) as conn:
        with pytest.raises(governed_db.ApprovalRequired) as info:
            conn.execute(DELETE)
        approval_id = info.value.approval_id
        assert approval_id
        setup.decide(approval_id, "alice", max_rows=11)
        setup.decide(approval_id, "bob", max_rows=12)
        conn.execute(DELETE)
        with pytest.raises(governed_db.ApprovalRequired):
            conn.execute(DELETE)
    trail.close()
    records = list(iter_records(spool))
    refused = [r for r in records if r["kind"] == "refused"]
    assert refused[0]["decision"]["approval_id"] == approval_id
    assert refused[0]["decision"]["action"] == "require_approval"
    (intent,) = [r for r in records if r["kind"] == "intent" and "orders" in r["db.query.text"]]
    assert intent["decision"]["approval_id"] == approval_id
    assert intent["decision"]["action"] == "allow"
    assert "granted by alice, bob" in intent["decision"]["reason"]
    assert "max_rows 11" in intent["decision"]["reason"]
    assert refused[-1]["decision"]["approval_id"] != approval_id
    assert f"{approval_id} was used" in refused[-1]["decision"]["reason"]


def test_policy_without_approvers_refuses_as_before(dsn: str, home: Path) -> None:
    with (
        governed_db.connect(
            dsn, environment="prod", identity="agent:x", audit=False, autocommit=True
        ) as conn,
        pytest.raises(governed_db.ApprovalRequired) as info,
    ):
        conn.execute("alter table orders drop column note")
    assert info.value.approval_id is None
