"""Property: whatever surrounds it, a sensitive value never survives masking."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import iban, luhn

from governed_db.masking import ColumnIdentity, MaskRules, baseline_rules

PLAN = MaskRules(baseline_rules()).plan(
    [ColumnIdentity("text", None, 25), ColumnIdentity("doc", None, 3802)]
)

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
emails = st.builds(
    lambda user, host, tld: f"{user}@{host}.{tld}",
    _alnum,
    _alnum,
    st.sampled_from(["com", "org", "io", "de", "co.uk"]),
)


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["4", "51", "55", "37", "6011", "3528"]))
    length = 15 if prefix == "37" else 16
    body = prefix + draw(st.text("0123456789", min_size=length - len(prefix) - 1,
                                 max_size=length - len(prefix) - 1))  # fmt: skip
    number = body + luhn.calc_check_digit(body)
    sep = draw(st.sampled_from(["", " ", "-"]))
    if not sep:
        return number
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country, bban = draw(
        st.sampled_from([("DE", "370400440532013000"), ("GB", "WEST12345698765432"),
                         ("FR", "20041010050500013M02606"), ("NL", "ABNA0417164300")])
    )  # fmt: skip
    digits = draw(st.text("0123456789", min_size=4, max_size=4))
    bban = bban[: -len(digits)] + digits if bban[-4:].isdigit() else bban
    check = iban.calc_check_digits(country + "00" + bban)
    return country + check + bban


@st.composite
def ssns(draw: st.DrawFn) -> str:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    group = draw(st.integers(1, 99))
    serial = draw(st.integers(1, 9999))
    sep = draw(st.sampled_from(["-", " "]))
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


_b62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
tokens = st.one_of(
    st.builds(
        lambda p, s: f"gh{p}_{s}", st.sampled_from("pousr"), st.text(_b62, min_size=36, max_size=36)
    ),
    st.builds(lambda s: f"glpat-{s}", st.text(_b62 + "-_", min_size=20, max_size=30)),
    st.builds(lambda s: f"xoxb-{s}", st.text(_b62 + "-", min_size=10, max_size=40)),
    st.builds(
        lambda s: f"AKIA{s}", st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16)
    ),
)
sensitive = st.one_of(emails, cards(), ibans(), ssns(), tokens)
filler = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=30,
)
separators = st.sampled_from([" ", ", ", "\n", " (", ") ", ": ", "; "])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filler, separators, sensitive, separators, filler)
def test_sensitive_value_in_text_never_survives(
    before: str, sep1: str, value: str, sep2: str, after: str
) -> None:
    text = f"{before}{sep1}{value}{sep2}{after}"
    for out in (PLAN.apply((text, None))[0], PLAN.start().apply_rows([(text, None)])[0][0]):
        assert value not in out


def _nest(value: str, shape: int) -> Any:
    if shape == 0:
        return {"note": f"see {value} here"}
    if shape == 1:
        return [{"a": [1, f"{value}"]}, None]
    return {"deep": {"list": ["x", {"k": f"({value})"}]}}


@settings(max_examples=200, deadline=None)
@given(sensitive, st.integers(0, 2))
def test_sensitive_value_in_json_never_survives(value: str, shape: int) -> None:
    doc = _nest(value, shape)
    as_text = json.dumps(doc)
    out_text, out_doc = PLAN.apply((as_text, doc))
    assert value not in out_text
    assert value not in json.dumps(out_doc)
    json.loads(out_text)  # still JSON
    batch = PLAN.start().apply_rows([(as_text, doc)])[0]
    assert value not in batch[0]
    assert value not in json.dumps(batch[1])


# Glue as queries make it: concat_ws('-' | '_', ...), 'x' || value || '1'. Not a digit on
# the left (it would continue another number), one digit at most on the right.
left_glue = st.sampled_from(["-", "_", "x", "Q", "/", "ref-", "id_7_", "#"])
right_glue = st.sampled_from(["-", "_", "x", "1", "-17", "_3", "/b", "."])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filler, left_glue, sensitive, right_glue, filler)
def test_glued_sensitive_value_never_survives(
    before: str, glue1: str, value: str, glue2: str, after: str
) -> None:
    if value.startswith("AKIA") and (glue2[:1].isupper() or not any(c.isdigit() for c in value)):
        glue1 = glue2 = " "  # a glued key id needs a digit (uppercase words hold ASIA, ACCA)
    text = f"{before} {glue1}{value}{glue2} {after}"
    for out in (PLAN.apply((text, None))[0], PLAN.start().apply_rows([(text, None)])[0][0]):
        assert value not in out


@settings(max_examples=200, deadline=None)
@given(sensitive, st.integers(0, 3))
def test_sensitive_value_in_escaped_json_never_survives(value: str, depth: int) -> None:
    """JSON text inside JSON text, as ``payload::text`` and COPY carry it (quotes escaped)."""
    text = json.dumps({"note": f"see {value}", "api_key": value})
    for _ in range(depth):
        text = json.dumps({"k": text})
    (out,) = PLAN.apply((text, None))[:1]
    assert value not in out


BYTEA = MaskRules(baseline_rules()).plan([ColumnIdentity("b", None, 17)])


@settings(max_examples=200, deadline=None)
@given(filler, separators, sensitive, separators, filler)
def test_sensitive_value_in_bytea_never_survives(
    before: str, sep1: str, value: str, sep2: str, after: str
) -> None:
    raw = f"{before}{sep1}{value}{sep2}{after}".encode()
    (out,) = BYTEA.apply((raw,))
    assert value.encode() not in out
    (out,) = BYTEA.apply((b"\xff" + raw,))  # not UTF-8: masked whole
    assert value.encode() not in out
