"""Restart: forwarding resumes from the persisted spool position, nothing lost or repeated."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from governed_db.audit import Signer
from tests.audit_helpers import session, trail, workload


def test_resume_after_restart(tmp_path: Path, httpserver: HTTPServer) -> None:
    received: list[dict[str, object]] = []
    state = {"up": True}

    def handler(request: Request) -> Response:
        if not state["up"]:
            return Response("down", status=503)
        received.extend(json.loads(request.get_data())["records"])
        return Response("{}")

    httpserver.expect_request("/a").respond_with_handler(handler)
    signer = Signer.generate()
    sink = {
        "type": "http",
        "name": "collector",
        "url": httpserver.url_for("/a"),
        "backoff_initial": 0.02,
        "backoff_max": 0.05,
    }
    spool = tmp_path / "spool"

    first = trail(spool, signer, sinks=[sink])
    workload(first, session(first), 20)
    assert first.flush(10)
    delivered_before = len(received)
    state["up"] = False
    workload(first, session(first), 20)
    first.close(timeout=0.3)  # the collector is down: the rest stays in the spool
    assert (spool / ".locks" / f"{first.chain.id}.lock").exists()
    assert json.loads((spool / ".forward" / f"collector.{first.chain.id}.json").read_text())

    state["up"] = True
    second = trail(spool, signer, sinks=[sink])  # a new process, later
    workload(second, session(second), 5)
    second.close(timeout=10)

    by_chain: dict[object, list[dict[str, object]]] = {}
    for r in received:
        by_chain.setdefault(r["chain"], []).append(r)
    old, new = by_chain[first.chain.id], by_chain[second.chain.id]
    assert len(old) == first.chain.last_seq + 1  # every record exactly once: resumed, not replayed
    assert [r["seq"] for r in old] == list(range(len(old)))
    assert len(old) > delivered_before
    assert [r["seq"] for r in new] == list(range(second.chain.last_seq + 1))
    assert not list((spool / ".locks").iterdir())
    assert not list((spool / ".forward").iterdir())
