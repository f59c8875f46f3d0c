"""Record templates: a record's constant members encoded and sorted once, the rest filled in.

Most records are intents and outcomes. An intent's session, facts and decision
members are the same for every execution of one statement plan by one
session; an outcome's member *names* never change. A :class:`Template` holds
the canonical text of such a record with slots where the changing values go,
already in canonical key order, split where ``hash`` belongs::

    left  = '{"chain":"…","db.query.text":' TEXT ',…,"facts":{…}'     # keys before "hash"
    right = '"identity":{…},"kind":"intent","prev":' PREV ',"seq":' SEQ … '"v":1}'

so sealing a record is one call of a generated function: two joins, one
SHA-256 and one concatenation:
``hash = sha256(left + "," + right)``, ``line = left + ',"hash":"…",' + right``.
The values filled in are encoded exactly as :func:`canonical.encode_value`
does, so the bytes are those of ``canonical_json`` of the whole record
(tests/test_audit_canonical.py checks it).

Keys sort as their fragments do (see ``canonical.fragments``): every key is
made of characters above ``"``, so ``'"k":'`` sorts where ``k`` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = ["Template"]

_sha256 = hashlib.sha256
#: ``fill(*values)``: (hash, line) of a record from its encoded dynamic values.
Fill = Callable[..., tuple[str, bytes]]


def _join(pieces: list[str | int], consts: dict[str, str]) -> str:
    """A Python expression joining constant text and the value ``v<i>`` for each int."""
    items = []
    for piece in pieces:
        if isinstance(piece, int):
            items.append(f"v{piece}")
        else:
            name = f"c{len(consts)}"
            consts[name] = piece
            items.append(name)
    if len(items) == 1:
        return items[0]
    return f"''.join(({', '.join(items)},))"


def _filler(left: list[str | int], right: list[str | int], count: int) -> Fill:
    """One function that fills both halves, hashes the body and inserts the hash.

    Generated like ``dataclasses`` generates methods: the source holds only
    value indexes and the names of the constants (bound as default arguments),
    never any record text. One call per record, one ``str.join`` of a tuple per
    half (a ``%`` format re-parses the whole template each time).
    """
    consts: dict[str, str] = {}
    left_expr = _join(left, consts)
    right_expr = _join(right, consts)
    args = "".join(f"v{i}, " for i in range(count))
    defaults = "".join(f", {name}={name}" for name in consts)
    source = (
        f"def fill({args}*, sha=sha{defaults}):\n"
        f"    left = {left_expr}\n"
        f"    right = {right_expr}\n"
        "    digest = sha(f'{left},{right}'.encode()).hexdigest()\n"
        '    return digest, f\'{left},"hash":"{digest}",{right}\'.encode()\n'
    )
    namespace: dict[str, object] = {**consts, "sha": _sha256}
    exec(source, namespace)  # indexes and names only, see the docstring
    fill: Fill = namespace["fill"]  # type: ignore[assignment]
    return fill


class Template:
    """The canonical text of a record with slots for ``dynamic`` members (unsigned records).

    ``static`` holds the constant members as fragments (``'"key":value'``);
    ``dynamic`` names the members filled in per record, in the order their
    encoded values are passed to :meth:`seal` (or, one argument each, to :attr:`fill`).
    """

    __slots__ = ("dynamic", "fill")

    def __init__(self, static: Iterable[str], dynamic: Sequence[str]) -> None:
        self.dynamic = tuple(dynamic)
        items: list[tuple[str, int]] = [(frag, -1) for frag in static]
        items += [(f'"{name}":', i) for i, name in enumerate(self.dynamic)]
        items.append(('"hash":', -2))
        items.sort()
        cut = next(i for i, (_, slot) in enumerate(items) if slot == -2)
        left, right = items[:cut], items[cut + 1 :]
        if not left or not right:  # pragma: no cover - "chain" < "hash" < "v" always
            raise ValueError("a record template needs members on both sides of hash")
        #: ``fill(*values)`` -> (hash, line); raises UnicodeEncodeError for a lone surrogate.
        self.fill = _filler(_pieces(left, "{", ""), _pieces(right, "", "}"), len(self.dynamic))

    def seal(self, values: Sequence[str]) -> tuple[str, bytes]:
        """(hash, line) of the record with these encoded ``values`` (``dynamic`` order).

        Raises UnicodeEncodeError for a lone surrogate in a value.
        """
        return self.fill(*values)


def _pieces(items: list[tuple[str, int]], start: str, end: str) -> list[str | int]:
    """Members joined by commas: constant text merged, each slot an index into the values."""
    out: list[str | int] = []
    text = start
    for n, (fragment, slot) in enumerate(items):
        text += "," if n else ""
        if slot < 0:
            text += fragment
        else:
            out += [text + fragment, slot]
            text = ""
    out.append(text + end)
    return [p for p in out if p != ""]


def outcome_template(head: Sequence[str], *, succeeded: bool = False) -> Template:
    """The template of the outcome records of one chain (``head``: its chain and v).

    ``succeeded``: the one for statements without an SQLSTATE or error, whose
    ``db.response.status_code`` and ``error.type`` are constant nulls.
    """
    static = [*head, '"kind":"outcome"']
    if succeeded:
        static += ['"db.response.status_code":null', '"error.type":null']
        return Template(static, OUTCOME_DYNAMIC)
    return Template(static, (*OUTCOME_DYNAMIC, *OUTCOME_ERROR))


#: The members of an outcome record that change, in the order ``seal`` takes them.
OUTCOME_DYNAMIC = (
    "session.id",
    "intent",
    "intent_seq",
    "rowcount",
    "db.response.returned_rows",
    "duration_us",
    "masking",
    "ts",
    "seq",
    "prev",
)
#: ... and, for a statement that failed, these two after them.
OUTCOME_ERROR = ("db.response.status_code", "error.type")

#: The members of a masked record that change, in the order ``seal`` takes them.
MASKED_DYNAMIC = ("session.id", "intent", "intent_seq", "counts", "ts", "seq", "prev")


def masked_template(head: Sequence[str]) -> Template:
    """The template of the masked records of one chain (``head``: its chain and v)."""
    return Template([*head, '"kind":"masked"'], MASKED_DYNAMIC)


#: The members of an intent/refused record that change (then any extra ones).
STATEMENT_DYNAMIC = ("db.query.text", "ts", "seq", "prev")


def statement_template(
    head: Sequence[str], static: Sequence[str], extra: Sequence[str]
) -> Template:
    """An intent/refused template: ``static`` fragments (session, plan, kind) + chain head."""
    return Template([*head, *static], (*STATEMENT_DYNAMIC, *extra))
