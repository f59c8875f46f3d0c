"""Seed data and leak search for the masking leak matrix (tests/test_masking_leaks.py).

Every sensitive value here is fake. ``SEEDS`` lists what is stored in the
``vault`` table (columns with names that say nothing: ``c1``, ``notes``,
``payload``, ``tags``, ``doc``), ``CUSTOMERS`` what is stored in ``customers``
(columns named for what they hold). ``NEEDLES`` maps each string that must
never reach the caller to a label; ``leaks(received)`` serialises whatever the
caller got (rows, dicts, objects, bytes, lists, exception text) and returns the
labels of the needles found in it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

__all__ = [
    "CUSTOMERS",
    "CUSTOMER_COLUMNS",
    "NAME_ONLY",
    "NEEDLES",
    "PEM",
    "SEEDS",
    "Seed",
    "exposed_text",
    "leaks",
    "seed_database",
]

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MjQyNDIiLCJuYW1lIjoiTWFsbG9yeSJ9"
    ".q1Xk9vT0m3Zp8wL2cR7yH5nB4sD6fG1jK0aE3uI9oPx"
)
PEM_BODY = (
    "MIIEowIBAAKCAQEAuFakeKeyMaterialForLeakTests0123456789abcdefGHIJ",
    "kLmNoPqRsTuVwXyZ0123456789FakeSecondLineOfKeyMaterialZZ",
)
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END RSA PRIVATE KEY-----"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_SECRET_2 = "Zq8Lm3Np5Rt7Vx9Bc2Df4Gh6Jk1Mn0Pq+Rs/TuVw"
GITHUB = "ghp_R4nd0mT0k3nF0rL3akT3sts0123456789abc"
GITHUB_PAT = "github_pat_11ABCDEFG0123456789abc_" + "Qw3rTy" * 9 + "Zx9Y5"
GITLAB = "glpat-Zx9Yw8Vu7Ts6Rq5Po4Nm"
SLACK = "xoxb-2048123456-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"


@dataclasses.dataclass(frozen=True)
class Seed:
    """One fake sensitive value: the text stored, and the needles it must not leak."""

    label: str
    text: str  # what the vault stores in c1 (and embeds in notes/payload/tags/doc)
    secrets: tuple[str, ...]  # substrings of ``text`` that must never reach the caller
    card_number: int | None = None  # also stored as a JSON number in payload


def _seed(label: str, text: str, *secrets: str, card_number: int | None = None) -> Seed:
    return Seed(label, text, secrets or (text,), card_number)


SEEDS: tuple[Seed, ...] = (
    _seed("email-1", "alice.smith@example.com"),
    _seed("email-2", "bob.jones+vip@corp.example.org"),
    _seed("phone-intl", "+1 415-555-2671"),
    _seed("phone-paren", "(650) 253-0000"),
    _seed("phone-dots", "212.555.0187"),
    _seed("phone-uk", "+44 20 7946 0958"),
    _seed("card-visa-spaced", "4111 1111 1111 1111", card_number=4111111111111111),
    _seed("card-mc-dashed", "5500-0000-0000-0004", card_number=5500000000000004),
    _seed("card-amex", "378282246310005", card_number=378282246310005),
    _seed("card-discover", "6011111111111117", card_number=6011111111111117),
    _seed("ssn-dashed", "536-90-4399"),
    _seed("ssn-spaced", "401 23 4567"),
    _seed("iban-de", "DE89 3704 0044 0532 0130 00"),
    _seed("iban-gb", "GB82WEST12345698765432"),
    _seed("iban-fr", "FR14 2004 1010 0505 0001 3M02 606"),
    _seed("jwt", JWT),
    _seed("aws-access-key", "AKIAIOSFODNN7EXAMPLE"),
    _seed("aws-access-key-sts", "ASIAQWERTY234567ABCD"),
    _seed("aws-secret-assign", f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET),
    _seed("aws-secret-context", f"my aws key {AWS_SECRET_2}", AWS_SECRET_2),
    _seed("github-token", GITHUB),
    _seed("github-pat", GITHUB_PAT),
    _seed("gitlab-token", GITLAB),
    _seed("slack-token", SLACK),
    _seed("pem-private-key", PEM, *PEM_BODY),
    _seed("password-assign", "password=Sup3rS3cretPass!", "Sup3rS3cretPass!"),
    _seed("secret-colon", "secret: hunter2-Blue-Falcon", "hunter2-Blue-Falcon"),
    _seed("api-key-json", '{"api_key": "k3y-Qq81-Zeta-77"}', "k3y-Qq81-Zeta-77"),
)

CUSTOMER_COLUMNS = (
    "id",
    "email",
    "phone",
    "card_number",
    "ssn",
    "iban",
    "api_token",
    "password",
    "client_secret",
)

# Bare values: a column named for what it holds catches forms no detector would.
CUSTOMERS: tuple[tuple[Any, ...], ...] = (
    (
        1,
        "carol.danvers@example.net",
        "+1 312-555-0143",
        "4012 8888 8888 1881",
        "219-09-9998",
        "NL91 ABNA 0417 1643 00",
        "glpat-Cust0merT0kenAAAAAAA",
        "Corr3ct-H0rse-Battery",
        "cs_live_ZZtop1234567890",
    ),
    (
        2,
        "dave.lister@redd.example.com",
        "3125550199",  # bare digits: only the column name catches it
        "5105105105105100",
        "078051121",  # bare digits: only the column name catches it
        "GB29NWBK60161331926819",
        "xoxp-1111111111-2222222222222-ZyXwVuTsRqPoNmLkJiHgFeDc",
        "Tr0ub4dor&3-Zebra",
        "cs_live_QQbottom0987654321",
    ),
    (3, "eve.moneypenny@mi6.example.co.uk", None, None, None, None, None, None, None),
)

_DIGITS = re.compile(r"\D")


def _needles() -> dict[str, str]:
    found: dict[str, str] = {}
    for seed in SEEDS:
        for secret in seed.secrets:
            found[secret] = seed.label
            if seed.label.startswith(("card", "ssn")):
                found[_DIGITS.sub("", secret)] = seed.label + " (digits)"
            if seed.label.startswith("iban"):
                found[secret.replace(" ", "")] = seed.label + " (compact)"
    for row in CUSTOMERS:
        for name, value in zip(CUSTOMER_COLUMNS[1:], row[1:], strict=True):
            if value is None:
                continue
            label = f"customers.{name}#{row[0]}"
            found[value] = label
            if name in {"card_number", "ssn", "phone"}:
                found[_DIGITS.sub("", value)] = label + " (digits)"
            if name == "iban":
                found[value.replace(" ", "")] = label + " (compact)"
    return found


#: needle -> label: every string that must never appear in what the caller receives.
NEEDLES: dict[str, str] = _needles()


#: Labels of values only a column's name identifies (no detector can): bare passwords and
#: secrets, a phone or SSN as bare digits. A result that loses the column loses them.
NAME_ONLY: frozenset[str] = frozenset(
    label
    for label in NEEDLES.values()
    if label.split(" (")[0]
    in {
        "customers.password#1",
        "customers.password#2",
        "customers.client_secret#1",
        "customers.client_secret#2",
        "customers.phone#2",
        "customers.ssn#2",
    }
)


def _walk(obj: Any, seen: set[int]) -> Iterator[str]:
    if obj is None or isinstance(obj, bool | int | float):
        yield str(obj)
        return
    if isinstance(obj, str):
        yield obj
        return
    if isinstance(obj, bytes | bytearray | memoryview):
        yield bytes(obj).decode("utf-8", "replace")
        return
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, BaseException):
        yield str(obj)
        yield repr(obj)
        for attr in ("diag", "__cause__", "__context__"):
            value = getattr(obj, attr, None)
            if isinstance(value, psycopg.errors.Diagnostic):
                for field in ("message_primary", "message_detail", "message_hint", "context"):
                    yield str(getattr(value, field, None))
            elif value is not None:
                yield from _walk(value, seen)
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk(key, seen)
            yield from _walk(value, seen)
        return
    if isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            yield from _walk(item, seen)
        return
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        yield from _walk(dataclasses.asdict(obj), seen)
        return
    if hasattr(obj, "__dict__"):
        yield from _walk(vars(obj), seen)
    yield repr(obj)


def exposed_text(received: Any) -> str:
    """Everything in ``received``, as one string: its strings, its repr, its JSON."""
    parts = list(_walk(received, set()))
    parts.append(repr(received))
    with contextlib.suppress(TypeError, ValueError):  # keys that are not strings, cycles
        parts.append(json.dumps(received, default=repr, ensure_ascii=False))
    return "\x00".join(parts)


def leaks(received: Any) -> dict[str, str]:
    """The needles found in ``received``: {label: needle}."""
    text = exposed_text(received)
    return {label: needle for needle, label in NEEDLES.items() if needle in text}


def _vault_rows(seeds: Iterable[Seed]) -> Iterator[tuple[Any, ...]]:
    for i, seed in enumerate(seeds, start=1):
        nested: dict[str, Any] = {"deep": seed.text, "list": ["ok", seed.text]}
        if seed.card_number is not None:
            nested["num"] = seed.card_number
        payload = {"k": seed.text, "arr": ["x", seed.text], "n": nested}
        yield (
            i,
            seed.label,
            seed.text,
            f"Customer wrote {seed.text} in the ticket, please follow up.",
            Jsonb(payload),
            ["vip", seed.text],
            json.dumps({"v": seed.text}),
            f"ref {seed.text}",
        )


def seed_database(conn: psycopg.Connection[Any]) -> None:
    """Create and fill ``customers``, ``vault`` and two functions (plain psycopg).

    ``leak_notice(text)`` raises a notice quoting its argument; ``customers_fn()``
    returns the rows of ``customers`` (a result with no source table).
    """
    columns = ", ".join(f"{name} text" for name in CUSTOMER_COLUMNS[1:])
    conn.execute(f"create table customers (id int primary key, {columns})")
    with conn.cursor() as cur:
        cur.executemany(
            f"insert into customers values ({', '.join(['%s'] * len(CUSTOMER_COLUMNS))})",
            CUSTOMERS,
        )
        conn.execute(
            "create table vault (id int primary key, label text, c1 text, notes text,"
            " payload jsonb, tags text[], doc json, c2 varchar(400))"
        )
        cur.executemany(
            "insert into vault values (%s, %s, %s, %s, %s, %s, %s, %s)", list(_vault_rows(SEEDS))
        )
    conn.execute(
        "create function leak_notice(v text) returns int language plpgsql as "
        "$$ begin raise notice 'value: %', v; return 1; end $$"
    )
    conn.execute(
        "create function customers_fn() returns setof customers language sql"
        " as 'select * from customers'"
    )
    conn.execute("analyze customers")
    conn.execute("analyze vault")
