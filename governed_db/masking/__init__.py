"""Masking: detectors, methods and the mask plan. Pure code, no connection.

The driver gives each result's column identities to :meth:`MaskRules.plan`
(once per result shape), starts a :class:`RowMasker` per result with the
connection's :class:`MaskedValues`, and masks rows with its ``wrap(make_row)``
(one row at a time) or ``apply_rows(rows)`` (many). See docs/masking.md.
"""

from governed_db.masking.apply import MaskCount, RowMasker
from governed_db.masking.baseline import BASELINE_MASKING, baseline_rules
from governed_db.masking.detectors import (
    DETECTOR_GROUPS,
    DETECTOR_NAMES,
    Detector,
    UnknownDetectorError,
    detector,
    expand,
)
from governed_db.masking.engine import ENGINE
from governed_db.masking.keys import MaskingKey, init_masking_key, load_masking_key
from governed_db.masking.memory import MaskedValues
from governed_db.masking.methods import (
    BUILTIN_METHODS,
    MaskingError,
    UnknownMethodError,
    bind,
    method,
    methods,
    register,
    unregister,
)
from governed_db.masking.plan import ColumnIdentity, ColumnPlan, MaskPlan, MaskRules
from governed_db.masking.rules import Globs, MaskRule
from governed_db.masking.scan import Scanner

__all__ = [
    "BASELINE_MASKING",
    "BUILTIN_METHODS",
    "DETECTOR_GROUPS",
    "DETECTOR_NAMES",
    "ENGINE",
    "ColumnIdentity",
    "ColumnPlan",
    "Detector",
    "Globs",
    "MaskCount",
    "MaskPlan",
    "MaskRule",
    "MaskRules",
    "MaskedValues",
    "MaskingError",
    "MaskingKey",
    "RowMasker",
    "Scanner",
    "UnknownDetectorError",
    "UnknownMethodError",
    "baseline_rules",
    "bind",
    "detector",
    "expand",
    "init_masking_key",
    "load_masking_key",
    "method",
    "methods",
    "register",
    "unregister",
]
