"""The lists in divergences.py name real tests."""

from __future__ import annotations

import importlib

import pytest

from .divergences import DIVERGENCES, KNOWN_BUGS


@pytest.mark.parametrize("key", sorted({**DIVERGENCES, **KNOWN_BUGS}))
def test_entry_names_a_test(key: str) -> None:
    file, _, name = key.partition("::")
    func = name.split("[", 1)[0]
    module = importlib.import_module(f"{__package__}.{file.removesuffix('.py')}")
    assert callable(getattr(module, func, None)), f"{key}: no such test"


def test_no_entry_in_both_lists() -> None:
    assert not set(DIVERGENCES) & set(KNOWN_BUGS)
