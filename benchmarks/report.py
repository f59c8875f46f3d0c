"""The one result type every benchmark case produces, and the table that shows them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Measurement:
    """One figure: what was measured, its value, and the target it is held to.

    ``passed`` is None when the case has no target (informational figures).
    Paired database cases also carry each side's process CPU per operation.
    """

    name: str
    value: float
    unit: str
    target: str = ""
    passed: bool | None = None
    detail: str = ""
    cpu_raw: float | None = None
    cpu_governed: float | None = None

    def as_json(self) -> dict[str, Any]:
        """A plain dict for benchmarks/results.json."""
        return asdict(self)
