"""The gate: analyze → decide → settle → audit, over plain values; no cursor code.

The cursor classes call ``Governor.admit`` before anything is sent,
``Governor.settle`` afterwards, and ``Governor.shape_rows`` once per result.
``Governor`` itself allows everything; ``PolicyGovernor`` is the real gate.
"""

from governed_db.governor.base import (
    Call,
    ClientMerged,
    EstimateNeeded,
    Governor,
    Outcome,
    RowMaker,
    Session,
    Ticket,
)
from governed_db.governor.build import build_governor

__all__ = [
    "Call",
    "ClientMerged",
    "EstimateNeeded",
    "Governor",
    "Outcome",
    "RowMaker",
    "Session",
    "Ticket",
    "build_governor",
]
