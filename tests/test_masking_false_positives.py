"""Ordinary business data must come back untouched by the baseline detectors.

The corpus mixes hand-picked look-alikes (numbers shaped like phones, cards
or SSNs that are not) with generated values of every common business kind.
The false-positive rate is printed (``-s``) and must stay at zero.
"""

from __future__ import annotations

import random
import uuid

from governed_db.masking import ColumnIdentity, MaskRules, baseline_rules

LOOKALIKES = [
    "Order #100234567 shipped",
    "ref 123456789",
    "customer id 987654321",
    "4155552671",
    "2024-03-05T12:34:56.789Z",
    "2024-03-05 12:34:56+01",
    "05/03/2024 10:15",
    "1700000000000",
    "tracking 1Z999AA10123456784",
    "UPS 1Z 999 AA1 01 2345 6784",
    "invoice INV-2024-000123",
    "SKU-4411-B2 restocked",
    "part no. 555-1234-AB",
    "model X-200-300-4000",
    "version 10.2.3 build 4567",
    "v1.2.3-rc.4+build.5",
    "10.0.0.1 and 192.168.100.200",
    "2001:db8::ff00:42:8329",
    "$1,234.56 (EUR 1.234,56)",
    "Total: 12.345.678,90",
    "qty 12 @ 3.50 each",
    "ISBN 978-3-16-148410-0",
    "EAN 4006381333931",
    "call center opens 9-5",
    "room 101-202-3030",
    "zip 94105-1234",
    "postcode SW1A 1AA",
    "lot 2024-03-001234",
    "serial 0012-3456-7890",
    "GTIN 00012345600012",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "md5 d41d8cd98f00b204e9800998ecf8427e",
    "git da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "https://example.com/orders/123456789?page=2",
    "/var/lib/app/2024/03/05/report-000123.csv",
    "The password policy requires 12 characters.",
    "Reset token sent to the customer (see ticket 4411).",
    "Key account manager: Maria Rossi",
    "Secret Santa draw on 2024-12-01",
    "AWS region eu-west-1, bucket reports-2024",
    "Coordinates 52.520008, 13.404954",
    "Temperature -12.5 to +30.2 C",
    "+5% uplift on 1200 units",
    "Score 3-2-1 in extra time",
    "Chapter 12.3.4.5 section 6",
    "BIC DEUTDEFF500",
    "VAT DE123456789",
    "Flight LH 400 FRA-JFK 2024-03-05",
    "Mon-Fri 08:00-18:00",
    "Widget Pro x3 @ $12.40",
    "user at example dot com",
    "meeting @ 10am in room B",
    "Price: 1499.99; Discount: 10%",
    "account 12345678 sort code 12-34-56",
    "Phone extension 4711",
    "ISO 8601: P1Y2M10DT2H30M",
    "Hex color #FF5733 and #00FF00",
]

FIRST = ["Maria", "John", "Aiko", "Lars", "Priya", "Chen", "Olga", "Ahmed", "Lucia", "Tom"]
LAST = ["Schmidt", "Smith", "Tanaka", "Nilsen", "Patel", "Wei", "Ivanova", "Hassan", "Rossi"]
WORDS = [
    "the",
    "order",
    "was",
    "shipped",
    "late",
    "due",
    "to",
    "weather",
    "please",
    "refund",
    "partial",
    "amount",
    "thanks",
]


def _generated(n: int) -> list[str]:
    rnd = random.Random(1234)
    makers = [
        lambda: f"ORD-{rnd.randint(10**5, 10**9)}",
        lambda: str(rnd.randint(10**8, 10**9 - 1)),
        lambda: f"{rnd.randint(2000, 2030)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
        lambda: (
            f"{rnd.randint(2000, 2030)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} "
            f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}"
        ),
        lambda: str(uuid.UUID(int=rnd.getrandbits(128))),
        lambda: f"${rnd.randint(0, 99999)}.{rnd.randint(0, 99):02d}",
        lambda: f"SKU-{rnd.randint(1000, 9999)}-{rnd.choice('ABCDEFG')}{rnd.randint(1, 9)}",
        lambda: f"{rnd.randint(0, 20)}.{rnd.randint(0, 99)}.{rnd.randint(0, 999)}",
        lambda: ".".join(str(rnd.randint(0, 255)) for _ in range(4)),
        lambda: f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
        lambda: f"{rnd.randint(1, 9999)} Main St, Springfield {rnd.randint(10000, 99999)}",
        lambda: " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 15))),
        lambda: f"{rnd.randint(100, 999)}-{rnd.randint(1000, 9999)}-{rnd.choice('XYZ')}",
        lambda: f"batch {rnd.randint(10**11, 10**12 - 1)}",
        lambda: f"{rnd.randint(1, 12)}/{rnd.randint(1, 28)}/{rnd.randint(2000, 2030)}",
        lambda: "".join(rnd.choice("0123456789abcdef") for _ in range(40)),
    ]
    return [rnd.choice(makers)() for _ in range(n)]


def _changed(values: list[str]) -> list[str]:
    plan = MaskRules(baseline_rules()).plan([ColumnIdentity("note", None, 25)])
    masker = plan.start()
    rows = masker.apply_rows([(v,) for v in values])
    return [v for v, (out,) in zip(values, rows, strict=True) if out != v]


def test_lookalikes_stay_untouched() -> None:
    assert _changed(LOOKALIKES) == []


def test_false_positive_rate_on_generated_business_data() -> None:
    values = LOOKALIKES + _generated(20_000)
    changed = _changed(values)
    rate = len(changed) / len(values)
    print(f"\nmasking false positives: {len(changed)} of {len(values)} ({rate:.4%})")
    assert changed == []


def test_json_business_documents_stay_untouched() -> None:
    plan = MaskRules(baseline_rules()).plan([ColumnIdentity("doc", None, 3802)])
    doc = {"order": "ORD-123456789", "items": [{"sku": "SKU-1234-A", "qty": 2}], "ts": LOOKALIKES}
    assert plan.start().apply_rows([(doc,)]) == [(doc,)]
