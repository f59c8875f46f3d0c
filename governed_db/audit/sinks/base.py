"""The sink interface and the two inline sinks: memory (tests) and stdout (notebooks)."""

from __future__ import annotations

import abc
import sys
import threading
from collections.abc import Sequence
from typing import Any, ClassVar, TextIO

from rich.markup import escape

from governed_db.audit.records import AuditRecord

__all__ = ["AuditSink", "MemorySink", "StdoutSink"]


class AuditSink(abc.ABC):
    """Where records go.

    ``remote`` sinks are fed by the background forwarder from the local spool,
    in batches of up to ``batch_size``, at least once (the record ``hash`` is
    the idempotency key); ``emit`` raises to have the batch retried with
    exponential backoff. Inline sinks (``remote = False``) get each record as
    it is written, in chain order, on the writing thread.
    """

    remote: ClassVar[bool] = False

    def __init__(
        self,
        name: str | None = None,
        *,
        batch_size: int = 200,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.name = name or type(self).__name__.removesuffix("Sink").lower()
        self.batch_size = batch_size
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

    @abc.abstractmethod
    def emit(self, records: Sequence[AuditRecord]) -> None:
        """Deliver records (raise to have them retried)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or sockets."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class MemorySink(AuditSink):
    """Keeps every record in memory: ``records`` (dicts) and ``lines`` (canonical bytes)."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name or "memory")
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.lines: list[bytes] = []

    def emit(self, records: Sequence[AuditRecord]) -> None:
        """Append."""
        with self._lock:
            for record in records:
                self.records.append(dict(record.data))
                self.lines.append(record.line)

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        """The records of the given kinds (intent, outcome, refused, session, ...)."""
        with self._lock:
            return [r for r in self.records if r["kind"] in kinds]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self.records.clear()
            self.lines.clear()


class StdoutSink(AuditSink):
    """Prints records: ``json`` lines, or a one-line ``rich`` summary for notebooks."""

    def __init__(
        self, name: str | None = None, *, format: str = "json", stream: TextIO | None = None
    ) -> None:
        super().__init__(name or "stdout")
        self.format = format
        self.stream = stream
        self._lock = threading.Lock()

    def emit(self, records: Sequence[AuditRecord]) -> None:
        """Print."""
        stream = self.stream or sys.stdout
        with self._lock:
            if self.format == "json":
                for record in records:
                    stream.write(record.line.decode("utf-8") + "\n")
                stream.flush()
                return
            from rich.console import Console

            console = Console(file=stream, soft_wrap=True)
            for record in records:
                console.print(summary(record.data), highlight=False)


def summary(data: dict[str, Any] | Any) -> str:
    """One rich-markup line describing a record."""
    kind = data.get("kind", "?")
    head = f"[dim]{data.get('ts', '')}[/dim] [bold]{kind}[/bold] #{data.get('seq')}"
    if kind in ("intent", "refused"):
        decision = (data.get("decision") or {}).get("action", "")
        colour = "red" if kind == "refused" else "green"
        text = " ".join(str(data.get("db.query.text") or "").split())[:120]
        return f"{head} [{colour}]{escape(str(decision))}[/{colour}] {escape(text)}"
    if kind == "outcome":
        return (
            f"{head} rows={data.get('rowcount')} returned={data.get('db.response.returned_rows')}"
            f" {data.get('duration_us')}µs {data.get('db.response.status_code') or ''}"
        )
    if kind == "masked":
        counts = data.get("counts") or []
        items = ", ".join(
            f"{c.get('column')}:{c.get('method')}×{c.get('values')}"
            for c in counts
            if isinstance(c, dict)
        )
        return f"{head} intent #{data.get('intent_seq')} {escape(items)}"
    return head
