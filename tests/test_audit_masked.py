"""``masked`` records: what masking did to a fetched result, counted, linked, verifiable.

Real trails on real spool files; the governor's side against the real database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

import governed_db
from governed_db.audit import (
    AuditTrail,
    MemorySink,
    PublicKeys,
    Signer,
    Verifier,
    canonical_json,
    record_hash,
    spool_files,
)
from governed_db.audit.reader import RecordFilter, iter_records
from governed_db.audit.sinks.base import summary
from governed_db.governor.base import Governor
from governed_db.masking import MaskCount
from tests.audit_helpers import FACTS, cli, kinds, only_file, session, trail, verify

ALLOW = {"action": "allow", "rule_id": "default"}
EMAIL = MaskCount("email", "public.customers.email", "baseline-email-columns", "email", 3)
LAST4 = MaskCount("card", "public.customers.card", "cards", "last4", 2)
COMPUTED = MaskCount("upper", None, "baseline-detectors", "redact", 1)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


def records(path: Path) -> list[dict[str, Any]]:
    return list(iter_records(path))


def intent(t: AuditTrail, s: Any, n: int) -> Any:
    return t.intent(s, f"SELECT email FROM customers WHERE id = {n}", facts=FACTS, decision=ALLOW)


@pytest.mark.parametrize("durability", ["strict", "batch", "none"])
def test_masked_record_is_written_linked_and_verifies(
    tmp_path: Path, signer: Signer, durability: str
) -> None:
    spool = tmp_path / "spool"
    t = trail(spool, signer, durability=durability, checkpoint_every=7)
    s = session(t)
    ref = intent(t, s, 1)
    t.outcome(ref, rowcount=3, rows_returned=3, duration_ms=0.5)
    t.masked(ref, [EMAIL, LAST4, COMPUTED])
    t.close()
    assert verify(spool, signer).ok

    recs = records(spool)
    (the_intent,) = [r for r in recs if r["kind"] == "intent"]
    (masked,) = [r for r in recs if r["kind"] == "masked"]
    outcome = next(r for r in recs if r["kind"] == "outcome")
    assert masked["seq"] > outcome["seq"]
    assert masked["session.id"] == s.id == the_intent["session.id"]
    assert masked["intent"] == the_intent["hash"] == ref.hash
    assert masked["intent_seq"] == the_intent["seq"] == ref.seq
    assert masked["counts"] == [
        {
            "column": "email",
            "source": "public.customers.email",
            "rule": "baseline-email-columns",
            "method": "email",
            "values": 3,
        },
        {
            "column": "card",
            "source": "public.customers.card",
            "rule": "cards",
            "method": "last4",
            "values": 2,
        },
        {
            "column": "upper",
            "source": "computed",
            "rule": "baseline-detectors",
            "method": "redact",
            "values": 1,
        },
    ]
    assert set(masked) == {
        "v", "kind", "chain", "seq", "ts", "prev", "hash", "session.id", "intent",
        "intent_seq", "counts",
    }  # fmt: skip
    assert masked["hash"] == record_hash(masked)


def test_plain_tuples_are_counts_too_and_bad_counts_are_refused(
    tmp_path: Path, signer: Signer
) -> None:
    mem = MemorySink()
    t = trail(None, signer, [mem])
    s = session(t)
    ref = intent(t, s, 1)
    t.masked(ref, [("note", "public.t.note", "r1", "hash", 0), ("x", None, "r2", "null", 7)])
    for bad in [
        [("note", "public.t.note", "r1", "hash")],  # four items
        [("note", "public.t.note", "r1", "hash", "7")],  # the count as text
        [("note", "public.t.note", "r1", "hash", -1)],
        [("note", "public.t.note", "r1", "hash", True)],
        [(b"note", "public.t.note", "r1", "hash", 1)],
        [("note", 5, "r1", "hash", 1)],
        [("note", "public.t.note", None, "hash", 1)],
    ]:
        with pytest.raises(TypeError, match="masked count"):
            t.masked(ref, bad)
    t.close()
    (masked,) = mem.of_kind("masked")
    assert [(c["column"], c["source"], c["values"]) for c in masked["counts"]] == [
        ("note", "public.t.note", 0),
        ("x", "computed", 7),
    ]
    assert masked["intent"] == ref.hash


def test_refs_link_to_the_right_intents_when_interleaved(tmp_path: Path, signer: Signer) -> None:
    spool = tmp_path / "spool"
    t = trail(spool, signer, durability="batch", checkpoint_every=5)
    a, b = session(t), t.session({"dbname": "app"}, {"user": "bob"}, "test")
    refs = [intent(t, a, 1), intent(t, b, 2), intent(t, a, 3)]
    # ended, and fetched, in another order than they started
    for n, ref in ((2, refs[2]), (1, refs[1]), (0, refs[0])):
        t.outcome(ref, rowcount=n + 1, rows_returned=n + 1)
        t.masked(ref, [MaskCount("email", "public.customers.email", "r", "email", n + 1)])
    # a second result of the same statement
    t.masked(refs[1], [MaskCount("email", "public.customers.email", "r", "email", 10)])
    t.close()
    assert verify(spool, signer).ok
    recs = records(spool)
    intents = {r["hash"]: r for r in recs if r["kind"] == "intent"}
    linked = []
    for m in (r for r in recs if r["kind"] == "masked"):
        target = intents[m["intent"]]
        assert m["intent_seq"] == target["seq"]
        assert m["session.id"] == target["session.id"]
        linked.append((target["db.query.text"][-1], m["counts"][0]["values"]))
    assert linked == [("3", 3), ("2", 2), ("1", 1), ("2", 10)]


def test_masked_records_never_hold_a_value(tmp_path: Path, signer: Signer) -> None:
    spool = tmp_path / "spool"
    t = trail(spool, signer)
    ref = intent(t, session(t), 1)
    t.masked(ref, [EMAIL])
    t.close()
    (masked,) = [r for r in records(spool) if r["kind"] == "masked"]
    assert [set(c) for c in masked["counts"]] == [{"column", "source", "rule", "method", "values"}]
    assert all(type(c["values"]) is int for c in masked["counts"])


# -- tampering -----------------------------------------------------------------------------


def masked_spool(path: Path, signer: Signer, n: int = 12) -> Path:
    t = trail(path, signer, checkpoint_every=10)
    s = session(t)
    for i in range(n):
        ref = intent(t, s, i)
        t.outcome(ref, rowcount=1, rows_returned=1)
        t.masked(ref, [MaskCount("email", "public.customers.email", "r", "email", i + 1)])
    t.close()
    return path


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in only_file(path).read_bytes().splitlines()]


def save(path: Path, recs: list[dict[str, Any]]) -> None:
    only_file(path).write_bytes(b"".join(canonical_json(r) + b"\n" for r in recs))


def rechain(recs: list[dict[str, Any]], start: int, signer: Signer | None) -> None:
    """Re-link, re-hash (and with ``signer``, re-sign) from ``start`` on."""
    for i in range(start, len(recs)):
        r = recs[i]
        r["prev"] = recs[i - 1]["hash"]
        r["hash"] = record_hash(r)
        if signer is not None and "sig" in r:
            r["sig"] = signer.sign(r["hash"])


def first_masked(recs: list[dict[str, Any]]) -> int:
    return next(i for i, r in enumerate(recs) if r["kind"] == "masked")


def test_modified_count_is_detected(tmp_path: Path, signer: Signer) -> None:
    spool = masked_spool(tmp_path / "s", signer)
    recs = load(spool)
    i = first_masked(recs)
    recs[i]["counts"][0]["values"] = 0
    save(spool, recs)
    assert ("modified", recs[i]["seq"]) in kinds(verify(spool, signer))


@pytest.mark.parametrize(
    ("field", "value"),
    [("counts", []), ("intent_seq", 0), ("session.id", "someone-else"), ("intent", "0" * 64)],
)
def test_rehashed_masked_record_is_detected_by_the_signature(
    tmp_path: Path, signer: Signer, field: str, value: Any
) -> None:
    spool = masked_spool(tmp_path / "s", signer)
    recs = load(spool)
    i = first_masked(recs)
    recs[i][field] = value
    rechain(recs, i, None)  # a forger without the key
    save(spool, recs)
    report = verify(spool, signer)
    assert not report.ok
    assert {k for k, _ in kinds(report)} & {"bad-signature", "modified"}


def test_deleted_masked_record_is_detected(tmp_path: Path, signer: Signer) -> None:
    spool = masked_spool(tmp_path / "s", signer)
    recs = load(spool)
    i = first_masked(recs)
    seq = recs[i]["seq"]
    del recs[i]
    save(spool, recs)
    assert kinds(verify(spool, signer)) == {("deleted", seq)}


@pytest.mark.parametrize("kind", ["Masked", "masked ", "mask", "x", "outcomes"])
def test_unknown_kind_is_rejected_even_when_signed(
    tmp_path: Path, signer: Signer, kind: str
) -> None:
    spool = masked_spool(tmp_path / "s", signer)
    recs = load(spool)
    i = first_masked(recs)
    recs[i]["kind"] = kind
    rechain(recs, i, signer)  # even the key holder cannot add kinds a verifier doesn't know
    save(spool, recs)
    report = verify(spool, signer)
    assert kinds(report) == {("unknown-kind", recs[i]["seq"])}
    assert kind.strip() in report.errors[0].message or kind in report.errors[0].message


def test_parallel_verifier_sees_masked_records_and_unknown_kinds(
    tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from governed_db.audit import verify_parallel

    monkeypatch.setattr(verify_parallel, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(verify_parallel, "CHUNK", 3000)
    monkeypatch.setattr(verify_parallel, "_start_method", lambda: "fork")
    spool = masked_spool(tmp_path / "s", signer, n=40)
    keys = PublicKeys([signer.public_key])
    assert Verifier(keys).verify(spool_files(spool)).ok
    recs = load(spool)
    hit = [i for i, r in enumerate(recs) if r["kind"] == "masked"][20]
    recs[hit]["kind"] = "unmasked"
    rechain(recs, hit, signer)
    save(spool, recs)
    parallel = Verifier(keys).verify(spool_files(spool))
    serial = Verifier(keys, parallel=False).verify(spool_files(spool))
    assert kinds(parallel) == kinds(serial) == {("unknown-kind", recs[hit]["seq"])}


# -- reading -------------------------------------------------------------------------------


def test_reader_filters_masked_and_refuses_unknown_kinds(
    tmp_path: Path, signer: Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = masked_spool(tmp_path / "s", signer, n=3)
    wanted = RecordFilter(kinds=("masked",))
    assert [r["counts"][0]["values"] for r in iter_records(spool) if wanted(r)] == [1, 2, 3]
    with pytest.raises(ValueError, match="unknown record kind"):
        RecordFilter(kinds=("masks",))
    assert cli(["audit", "tail", str(spool), "--kind", "masked"]) == 0
    out = capsys.readouterr().out
    assert out.count("masked") >= 3
    line = next(r for r in iter_records(spool) if r["kind"] == "masked")
    assert "email:email×1" in summary(line)


# -- the governor's side -------------------------------------------------------------------


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("create table customers (id int, email text)")
        conn.execute("insert into customers values (1, 'ann@example.com')")
    return pg_dsn


def test_policy_governor_forwards_masked_counts(dsn: str, tmp_path: Path, signer: Signer) -> None:
    spool = tmp_path / "audit"
    t = AuditTrail.from_settings({"path": str(spool), "durability": "strict"}, signer=signer)
    with governed_db.connect(dsn, audit=t, autocommit=True) as conn:
        gov, sess = conn.governor, conn.session
        ticket = gov.admit(sess, "execute", "select id, email from customers", None, None)
        assert ticket is not None
        gov.settle(ticket, 1, None, 1)
        gov.masked(ticket, [EMAIL])
        gov.masked(ticket, [])  # nothing masked: no record
    t.close()
    assert verify(spool, signer).ok
    recs = records(spool)
    (masked,) = [r for r in recs if r["kind"] == "masked"]
    (the_intent,) = [r for r in recs if r["kind"] == "intent"]
    assert masked["intent"] == the_intent["hash"]
    assert masked["session.id"] == the_intent["session.id"]
    assert masked["counts"][0]["rule"] == "baseline-email-columns"
    assert "ann@example.com" not in json.dumps(recs)


def test_masked_is_a_no_op_without_audit(dsn: str) -> None:
    with governed_db.connect(dsn, audit=False, autocommit=True) as conn:
        gov, sess = conn.governor, conn.session
        ticket = gov.admit(sess, "execute", "select id from customers", None, None)
        assert ticket is not None
        gov.masked(ticket, [EMAIL])  # no trail for statements: nothing written, nothing raised
        off = gov._audit_off._trail  # type: ignore[attr-defined]  # the 'audit off' spool
    assert off is not None
    assert off.settings.path is not None
    off.flush()
    mine = [r for r in iter_records(off.settings.path) if r.get("session.id") == sess.session_id]
    assert [r["kind"] for r in mine] == ["session", "end"]
    assert mine[0]["audit"] == "off"
    Governor().masked(ticket, [EMAIL])  # the allow-all gate records nothing either


@pytest.mark.parametrize("column", ["ö-ä", "tab\there", 'quo"te', "line\u2028sep", "lone\udcff"])
def test_any_column_name_is_written_canonically(
    tmp_path: Path, signer: Signer, column: str
) -> None:
    spool = tmp_path / "spool"
    t = trail(spool, signer)
    ref = intent(t, session(t), 1)
    t.masked(ref, [MaskCount(column, None, "r", "redact", 1)])
    t.close()
    assert verify(spool, signer).ok
    (masked,) = [r for r in records(spool) if r["kind"] == "masked"]
    assert masked["counts"][0]["column"] == column.replace("\udcff", "?")  # as jsonable replaces it
