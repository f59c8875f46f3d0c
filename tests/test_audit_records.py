"""Records: schema, redaction, parameters, signing cadence, settings validation."""

from __future__ import annotations

import pytest

from governed_db.audit import AuditSettings, AuditTrail, MemorySink, Signer, record_hash
from governed_db.errors import PolicyError
from tests.audit_helpers import ALLOW, CONN, FACTS, IDENTITY, session, trail, verify, workload


@pytest.fixture
def signer() -> Signer:
    return Signer.generate()


def test_record_kinds_and_schema(signer: Signer) -> None:
    mem = MemorySink()
    t = trail(None, signer, [mem])
    s = t.session(CONN, IDENTITY, "prod")
    ref = t.intent(
        s,
        "UPDATE orders SET note = 'n' WHERE id = 1",
        facts=FACTS,
        decision={"action": "allow", "rule_id": "r7", "approval_id": "ap-1"},
    )
    t.outcome(ref, rowcount=1, rows_returned=0, duration_ms=1.5, sqlstate=None)
    t.refused(
        s,
        "DELETE FROM orders",
        facts={"operation": "delete", "tables_written": ["public.orders"]},
        decision={"action": "block", "rule_id": "no-unbounded-delete", "reason": "no WHERE"},
    )
    t.end_session(s)
    t.close()
    kinds = [r["kind"] for r in mem.records]
    assert kinds == ["genesis", "session", "intent", "outcome", "refused", "end", "close"]
    genesis, sess, intent, outcome, refused, _end, close = mem.records
    assert genesis["signing"] == "checkpoint"
    assert genesis["kid"] == signer.kid
    assert sess["session.id"] == s.id
    assert sess["db.system"] == "postgresql"
    assert sess["db.namespace"] == "app"
    assert sess["server.address"] == "db.internal"
    assert sess["server.port"] == 5432
    assert sess["identity"] == IDENTITY
    assert sess["deployment.environment.name"] == "prod"
    assert intent["db.query.text"] == "UPDATE orders SET note = 'n' WHERE id = 1"
    assert intent["db.operation.name"] == "update"
    assert intent["db.collection.name"] == "public.orders"
    assert intent["tables_written"] == ["public.orders"]
    assert intent["decision"] == {"action": "allow", "rule_id": "r7", "approval_id": "ap-1"}
    assert intent["db.user"] == "app_rw"
    assert intent["session.id"] == s.id
    assert "parameters" not in intent
    assert "parameters_hmac" not in intent
    assert "text" not in str(intent.get("facts"))  # the analyzer's copy of the SQL is dropped
    assert outcome["intent"] == intent["hash"] == ref.hash
    assert outcome["intent_seq"] == ref.seq
    assert outcome["duration_us"] == 1500
    assert outcome["masking"] is None
    assert refused["decision"]["action"] == "block"
    assert close["sig"]
    assert close["records"] == 7
    for i, r in enumerate(mem.records):
        assert r["seq"] == i
        assert r["hash"] == record_hash(r)
        assert r["prev"] == (mem.records[i - 1]["hash"] if i else "0" * 64)


def test_redact_literals_uses_normalized_text(signer: Signer) -> None:
    mem = MemorySink()
    t = trail(None, signer, [mem], redact_literals=True)
    s = session(t)
    t.intent(
        s,
        "SELECT * FROM users WHERE ssn = '123-45-6789'",
        normalized="SELECT * FROM users WHERE ssn = $1",
        facts=FACTS,
        decision=ALLOW,
    )
    t.close()
    (intent,) = mem.of_kind("intent")
    assert intent["db.query.text"] == "SELECT * FROM users WHERE ssn = $1"
    assert intent["query_redacted"] is True
    assert "123-45-6789" not in repr(mem.lines)


@pytest.mark.parametrize("mode", ["off", "hash", "plain"])
def test_parameters(signer: Signer, mode: str) -> None:
    mem = MemorySink()
    t = trail(None, signer, [mem], parameters=mode)
    s = session(t)
    for params in ({"id": 7}, {"id": 7}, {"id": 8}):
        t.intent(s, "SELECT %(id)s", params=params, decision=ALLOW)
    t.close()
    intents = mem.of_kind("intent")
    if mode == "off":
        assert all("parameters" not in r and "parameters_hmac" not in r for r in intents)
    elif mode == "hash":
        macs = [r["parameters_hmac"] for r in intents]
        assert macs[0] == macs[1] != macs[2]
        assert len(macs[0]) == 64
        assert "7" not in macs[0][:0]
        assert all("parameters" not in r for r in intents)
    else:
        assert [r["parameters"] for r in intents] == [{"id": 7}, {"id": 7}, {"id": 8}]


def test_checkpoints_every_n_and_every_record(signer: Signer) -> None:
    mem = MemorySink()
    t = trail(None, signer, [mem], checkpoint_every=10)
    workload(t, session(t), 25)
    t.close()
    signed = [r for r in mem.records if "sig" in r]
    assert [r["kind"] for r in signed] == ["genesis", *["checkpoint"] * 5, "close"]
    assert signed[1]["covers"] == [1, 10]
    mem2 = MemorySink()
    t2 = trail(None, signer, [mem2], signing="every")
    workload(t2, session(t2), 5)
    t2.close()
    assert all("sig" in r for r in mem2.records)
    assert not mem2.of_kind("checkpoint")


def test_checkpoint_by_time(signer: Signer) -> None:
    mem = MemorySink()
    t = trail(None, signer, [mem], checkpoint_seconds=0.1)
    workload(t, session(t), 1)
    import time

    deadline = time.monotonic() + 5
    while not mem.of_kind("checkpoint") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mem.of_kind("checkpoint")[0]["covers"] == [1, 3]
    t.close()


def test_spool_round_trip_verifies(tmp_path, signer: Signer) -> None:
    t = trail(tmp_path / "spool", signer, durability="strict")
    workload(t, session(t), 50)
    t.close()
    report = verify(tmp_path / "spool", signer)
    assert report.ok, report.problems
    assert report.records == 1 + 1 + 100 + 1  # genesis, session, 50 pairs, close


def test_rotation_by_size_and_age(tmp_path, signer: Signer) -> None:
    t = trail(tmp_path / "s", signer, rotate={"max_bytes": "4KB"})
    workload(t, session(t), 40)
    t.close()
    files = sorted((tmp_path / "s").glob("*.jsonl"))
    assert len(files) > 3
    for f in files[:-1]:  # every sealed segment ends with a signature
        assert b'"sig":' in f.read_bytes().splitlines()[-1]
    assert verify(tmp_path / "s", signer).ok
    t2 = trail(tmp_path / "a", signer, rotate={"max_age": "0.05s"})
    s = session(t2)
    import time

    for _ in range(3):
        workload(t2, s, 1)
        time.sleep(0.06)
    t2.close()
    assert len(list((tmp_path / "a").glob("*.jsonl"))) >= 3
    assert verify(tmp_path / "a", signer).ok


def test_shared_trail_is_one_per_settings(tmp_path, signer: Signer) -> None:
    settings = {"path": str(tmp_path / "x")}
    a = AuditTrail.shared(settings, signer=signer)
    assert AuditTrail.shared(dict(settings), signer=signer) is a
    a.close()
    b = AuditTrail.shared(settings, signer=signer)
    assert b is not a
    b.close()


def test_unsigned_trail_says_so(tmp_path, caplog, monkeypatch) -> None:
    monkeypatch.setenv("GOVERNED_DB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GOVERNED_DB_SIGNING_KEY", raising=False)
    t = AuditTrail.from_settings({"path": str(tmp_path / "u")})
    t.close()
    assert "will NOT be signed" in caplog.text
    assert not verify(tmp_path / "u").ok
    assert verify(tmp_path / "u", allow_unsigned=True).ok


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"durability": "sometimes"}, "audit.durability"),
        ({"parameters": "yes"}, "audit.parameters"),
        ({"signing": "never"}, "audit.signing"),
        ({"fail_closed": "yes"}, "audit.fail_closed"),
        ({"checkpoint_every": 0}, "audit.checkpoint_every"),
        ({"rotate": {"max_age": "soon"}}, "audit.rotate.max_age"),
        ({"rotate": {"max_bytes": "big"}}, "audit.rotate.max_bytes"),
        ({"rotate": {"size": 1}}, "audit.rotate.size"),
        ({"path": "a", "sinks": [{"type": "kafka"}]}, "audit.sinks[0].type"),
        (
            {"path": "a", "sinks": [{"type": "memory"}, {"type": "http", "url": "ftp://x"}]},
            "audit.sinks[1].url",
        ),
        (
            {"path": "a", "sinks": [{"type": "http", "url": "http://x", "verb": "PUT"}]},
            "audit.sinks[0].verb",
        ),
        (
            {"path": "a", "sinks": [{"type": "syslog", "address": "udp://host"}]},
            "audit.sinks[0].address",
        ),
        (
            {"path": "a", "sinks": [{"type": "postgres", "dsn": "x", "table": "a;drop"}]},
            "audit.sinks[0].table",
        ),
        (
            {"path": "a", "sinks": [{"type": "http", "url": "http://x", "batch_size": 0}]},
            "audit.sinks[0].batch_size",
        ),
        ({"path": "a", "sinks": [{"type": "file", "path": "b"}]}, "audit.sinks[0].path"),
        ({"sinks": [{"type": "http", "url": "http://x"}]}, "audit.path"),
        (
            {
                "path": "a",
                "sinks": [
                    {"type": "http", "url": "http://x", "name": "n"},
                    {"type": "http", "url": "http://y", "name": "n"},
                ],
            },
            "audit.sinks[1].name",
        ),
    ],
)
def test_settings_errors_name_the_key(settings: dict[str, object], key: str) -> None:
    with pytest.raises(PolicyError) as info:
        AuditSettings.from_mapping(settings)
    assert info.value.key == key


def test_settings_file_sink_is_the_spool_and_env_secrets(tmp_path, monkeypatch) -> None:
    s = AuditSettings.from_mapping(
        {
            "sinks": [
                {
                    "type": "file",
                    "path": "sp",
                    "durability": "strict",
                    "rotate": {"max_bytes": "1MB"},
                }
            ]
        }
    )
    assert str(s.path) == "sp"
    assert s.durability == "strict"
    assert s.rotate_bytes == 1024**2
    from governed_db.audit.sinks import build_sink

    spec = AuditSettings.from_mapping(
        {
            "path": "p",
            "sinks": [
                {"type": "http", "url": "http://x/", "headers": {"Authorization": "env:HEC_TOKEN"}}
            ],
        }
    ).sinks[0]
    with pytest.raises(PolicyError) as info:
        build_sink(spec, environ={})
    assert info.value.key == "audit.sinks[0].headers.Authorization"
    sink = build_sink(spec, environ={"HEC_TOKEN": "Splunk abc"})
    assert sink.headers == {"Authorization": "Splunk abc"}  # type: ignore[attr-defined]
