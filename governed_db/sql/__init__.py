"""What a SQL statement does, read before it runs: ``analyze(query) -> Facts``.

Two backends produce the same Facts: ``pglast`` (PostgreSQL's own parser, the
default where it is installed) and ``sqlparse`` (portable; marks what it cannot
read with certainty as opaque). Analyses are cached by query text.

>>> analyze("WITH d AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM d").primary.operation
'delete'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from governed_db.sql import sqlparse_backend
from governed_db.sql.copy_shape import CopyShape, copy_shape
from governed_db.sql.facts import CLASS_RANK, Facts, StatementFacts
from governed_db.sql.lineage import Lineage
from governed_db.sql.normalize import (
    fingerprint_of,
    normalize_tokens,
    split_statements,
    substitute_placeholders,
)
from governed_db.sql.vocabulary import (
    ALTER_ACTIONS,
    COPY_ENDPOINTS,
    DANGEROUS_FUNCTION_PREFIXES,
    DANGEROUS_FUNCTIONS,
    LOCK_WAITS,
    OBJECT_KINDS,
    OPERATION_CLASS,
    OPERATIONS,
    ROW_LOCKS,
    Seen,
)

__all__ = [
    "ALTER_ACTIONS",
    "CLASS_RANK",
    "COPY_ENDPOINTS",
    "DANGEROUS_FUNCTIONS",
    "DANGEROUS_FUNCTION_PREFIXES",
    "LOCK_WAITS",
    "OBJECT_KINDS",
    "OPERATIONS",
    "OPERATION_CLASS",
    "ROW_LOCKS",
    "STATEMENT_CLASSES",
    "CopyShape",
    "Facts",
    "StatementFacts",
    "analyze",
    "analyze_uncached",
    "available_backends",
    "cache_clear",
    "cache_info",
    "copy_shape",
]

STATEMENT_CLASSES: frozenset[str] = frozenset(CLASS_RANK)
CACHE_SIZE = 4096

_Analyzer = Callable[[str], Seen]
_BACKENDS: dict[str, _Analyzer] = {}
#: Backends that can follow lineage (computed lazily from the statement's parse text).
_LINEAGE: dict[str, Callable[[str], Lineage]] = {}
try:
    from governed_db.sql import pglast_backend
except ImportError:  # pragma: no cover - no pglast wheel (e.g. Windows)
    pass
else:
    _BACKENDS[pglast_backend.NAME] = pglast_backend.analyze_statement
    _LINEAGE[pglast_backend.NAME] = pglast_backend.lineage_statement
_BACKENDS[sqlparse_backend.NAME] = sqlparse_backend.analyze_statement
_DEFAULT = next(iter(_BACKENDS))


def available_backends() -> tuple[str, ...]:
    """Backend names usable here, preferred first (``pglast`` when importable)."""
    return tuple(_BACKENDS)


def analyze(query: str, backend: str | None = None) -> Facts:
    """What every statement in ``query`` does. Never raises for a str; unreadable is opaque.

    ``backend`` forces ``"pglast"`` or ``"sqlparse"``; by default the best available.
    Results are cached by (query, backend).
    """
    if not isinstance(query, str):
        raise TypeError(f"query must be str, not {type(query).__name__}")
    name = _DEFAULT if backend is None else backend
    if name not in _BACKENDS:
        raise ValueError(
            f"unknown or unavailable SQL backend {backend!r}; available: {', '.join(_BACKENDS)}"
        )
    return _analyze_cached(query, name)


def _statement(
    analyzer: _Analyzer, text: str, tokens: list[Any], base: int, backend: str
) -> StatementFacts:
    normalized = normalize_tokens(tokens)
    parse_text = substitute_placeholders(text, tokens, base)
    try:
        seen = analyzer(parse_text)
    except Exception:  # fail closed: a backend bug must never make a statement harmless
        seen = Seen(opaque=True)
    facts = seen.facts(text, normalized, fingerprint_of(normalized))
    lineage = _LINEAGE.get(backend)
    if lineage is not None:
        facts.lineage_cell.append((parse_text, lineage))
    return facts


def analyze_uncached(query: str, backend: str) -> Facts:
    """``analyze`` without the cache (for benchmarks and tests)."""
    analyzer = _BACKENDS[backend]
    statements = tuple(
        _statement(analyzer, text, tokens, tokens[0][2], backend)
        for text, tokens in split_statements(query)
    )
    if not statements:
        statements = (Seen(operation="empty").facts("", "", fingerprint_of("")),)
    whole = "; ".join(s.normalized for s in statements)
    return Facts(
        statements=statements, backend=backend, text=query, fingerprint=fingerprint_of(whole)
    )


_analyze_cached = functools.lru_cache(maxsize=CACHE_SIZE)(analyze_uncached)


def cache_info() -> Any:
    """The analysis cache's statistics (``functools`` CacheInfo: hits, misses, currsize)."""
    return _analyze_cached.cache_info()


def cache_clear() -> None:
    """Empty the analysis cache."""
    _analyze_cached.cache_clear()
