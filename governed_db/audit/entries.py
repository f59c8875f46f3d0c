"""Queue entries: what a caller hands the writer, and how the writer renders it.

An entry is a plain tuple ``(kind, ts_ns, ...)`` so that making one costs the
caller next to nothing; the writer turns it into the record's fragments (see
``canonical``) and, when inline sinks want them, its fields. Shapes::

    ("session", ts, AuditSession)
    ("end", ts, session_id, reason)
    ("intent" | "refused", ts, AuditSession, Prepared, text, extra | None, IntentRef | None)
    ("outcome", ts, IntentRef, rowcount, rows_returned, duration_us, sqlstate, error, masking)
    ("masked", ts, IntentRef, ((column, source, rule_id, method, values), ...))
    ("body", ts, fields, sign)        # genesis and other ready-made bodies
    ("checkpoint", ts)                # covers the chain's unsigned tail at sealing time
    ("close", ts, reason)             # the last record; counts the chain at sealing time
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from governed_db.audit.canonical import (
    CanonicalJSON,
    encode_value,
    fragment,
    fragments,
    timestamp_ns,
)
from governed_db.audit.chain import Chain
from governed_db.audit.records import AuditSession, IntentRef, Prepared, masked_fields

__all__ = ["KIND_FRAGMENTS", "REDACTED", "Entry", "Rendered", "render"]

Entry = tuple[Any, ...]
#: (fragments or None, fields or None, sign). Fields are given when asked for,
#: or when the fragments are None (a key the fast encoder can't take).
Rendered = tuple[list[str] | None, dict[str, Any] | None, bool]

KIND_FRAGMENTS = {
    k: f'"kind":"{k}"' for k in ("session", "end", "intent", "refused", "outcome", "masked")
}
REDACTED = '"query_redacted":true'


def _ts(ns: int) -> str:
    return f'"ts":"{timestamp_ns(ns)}"'


def _statement(entry: Entry, redact: bool, need: bool) -> Rendered:
    kind, ns, session, prepared, text, extra, _ = entry
    session_: AuditSession = session
    prepared_: Prepared = prepared
    if session_.frags is not None and prepared_.frags is not None and not need:
        frags = [*session_.frags, *prepared_.frags, KIND_FRAGMENTS[kind], _ts(ns)]
        frags.append('"db.query.text":' + encode_value(text))
        if redact:
            frags.append(REDACTED)
        if extra:
            frags.extend(fragment(k, v) for k, v in extra.items())
        return frags, None, False
    fields: dict[str, Any] = {"kind": kind, "session.id": session_.id, **session_.fields}
    fields["db.query.text"] = text
    if redact:
        fields["query_redacted"] = True
    if extra:
        fields.update(extra)
    fields.update(prepared_.fields)
    fields["ts"] = timestamp_ns(ns)
    return _from_fields(fields, False, need)


def outcome_values(entry: Entry, intent: tuple[int, str]) -> dict[str, Any]:
    """The fields of an outcome entry, given its intent's (seq, hash)."""
    _, _, ref, rowcount, rows_returned, duration_us, sqlstate, error, masking = entry
    iref: IntentRef = ref
    if type(masking) is CanonicalJSON:  # the reference path encodes values itself
        masking = json.loads(masking)
    return {
        "kind": "outcome",
        "session.id": iref.session_id,
        "intent": intent[1],
        "intent_seq": intent[0],
        "rowcount": rowcount if rowcount is None or rowcount >= 0 else None,
        "db.response.returned_rows": rows_returned,
        "duration_us": duration_us,
        "db.response.status_code": sqlstate,
        "error.type": error,
        "masking": masking,
    }


def _outcome(entry: Entry, intents: Mapping[int, tuple[int, str]], need: bool) -> Rendered:
    ref: IntentRef = entry[2]
    intent = _intent_of(ref, intents)
    if need:
        fields = outcome_values(entry, intent)
        fields["ts"] = timestamp_ns(entry[1])
        return _from_fields(fields, False, True)
    _, ns, _, rowcount, rows_returned, duration_us, sqlstate, error, masking = entry
    if rowcount is not None and rowcount < 0:
        rowcount = None
    return (
        [
            '"kind":"outcome"',
            '"session.id":' + encode_value(ref.session_id),
            '"intent":' + encode_value(intent[1]),
            '"intent_seq":' + encode_value(intent[0]),
            '"rowcount":' + encode_value(rowcount),
            '"db.response.returned_rows":' + encode_value(rows_returned),
            '"duration_us":' + encode_value(duration_us),
            '"db.response.status_code":' + encode_value(sqlstate),
            '"error.type":' + encode_value(error),
            '"masking":' + encode_value(masking),
            f'"ts":"{timestamp_ns(ns)}"',
        ],
        None,
        False,
    )


def _intent_of(ref: IntentRef, intents: Mapping[int, tuple[int, str]]) -> tuple[int, str]:
    """(seq, hash) of the intent ``ref`` points at: sealed in this batch, or written before."""
    intent = intents.get(id(ref))
    if intent is None:
        intent = (ref._seq, ref._hash or "")
    return intent


def _masked(entry: Entry, intents: Mapping[int, tuple[int, str]], need: bool) -> Rendered:
    _, ns, ref, counts = entry
    iref: IntentRef = ref
    intent = _intent_of(iref, intents)
    fields = {
        "kind": "masked",
        "session.id": iref.session_id,
        "intent": intent[1],
        "intent_seq": intent[0],
        "counts": masked_fields(counts),
        "ts": timestamp_ns(ns),
    }
    return _from_fields(fields, False, need)


def _from_fields(fields: dict[str, Any], sign: bool, need: bool) -> Rendered:
    frags = fragments(fields)
    if frags is None:
        return None, fields, sign
    return list(frags), (fields if need else None), sign


def render(
    entry: Entry,
    chain: Chain,
    *,
    redact: bool,
    intents: Mapping[int, tuple[int, str]],
    need_fields: bool,
) -> Rendered:
    """An entry's fragments (and fields if ``need_fields``).

    ``intents`` maps ``id(IntentRef)`` to (seq, hash) for intents sealed in
    the batch being written but not yet resolved on their ref.
    """
    kind = entry[0]
    if kind in ("intent", "refused"):
        return _statement(entry, redact, need_fields)
    if kind == "outcome":
        return _outcome(entry, intents, need_fields)
    if kind == "masked":
        return _masked(entry, intents, need_fields)
    if kind == "session":
        session: AuditSession = entry[2]
        if session.frags is not None and not need_fields:
            return [*session.frags, KIND_FRAGMENTS["session"], _ts(entry[1])], None, False
        fields = {"kind": "session", "session.id": session.id, **session.fields}
    elif kind == "end":
        fields = {"kind": "end", "session.id": entry[2], "reason": entry[3]}
    elif kind == "body":
        fields = dict(entry[2])
        fields.setdefault("ts", timestamp_ns(entry[1]))
        return _from_fields(fields, bool(entry[3]), need_fields)
    elif kind == "checkpoint":
        fields = chain.checkpoint_body()
        fields["ts"] = timestamp_ns(entry[1])
        return _from_fields(fields, True, need_fields)
    elif kind == "close":
        fields = {"kind": "close", "reason": entry[2], "records": chain.last_seq + 2}
        fields["ts"] = timestamp_ns(entry[1])
        return _from_fields(fields, True, need_fields)
    else:  # pragma: no cover - entries are made in this package
        raise ValueError(f"unknown audit entry {kind!r}")
    fields["ts"] = timestamp_ns(entry[1])
    return _from_fields(fields, False, need_fields)
