"""The memory of emitted masked values that lets the governor refuse writing them back."""

from __future__ import annotations

from typing import Any

from governed_db.masking import MaskedValues


class Json:  # stands in for psycopg.types.json.Json
    def __init__(self, obj: Any) -> None:
        self.obj = obj


def filled() -> MaskedValues:
    memory = MaskedValues()
    memory.update(["j***@example.com", "************1111", None, "[REDACTED:secret]"])
    memory.add("Call ************71 or write to j***@corp.io.")
    memory.add_fragments(["j***@corp.io", "**** **** **** 1111"])
    return memory


def test_empty_memory_finds_nothing() -> None:
    memory = MaskedValues()
    assert not memory
    assert memory.find_in_params(["j***@example.com"]) is None
    assert memory.find_in_text("update t set a = 'j***@example.com'") is None


def test_params_exact_and_inside_text() -> None:
    memory = filled()
    assert memory.find_in_params(("j***@example.com", 1)) == "j***@example.com"
    assert memory.find_in_params({"c": ["x", ("************1111",)]}) == "************1111"
    assert memory.find_in_params([Json({"note": "reach me: j***@corp.io."})]) == "j***@corp.io"
    assert memory.find_in_params(["card **** **** **** 1111 on file"]) == "**** **** **** 1111"
    assert memory.find_in_params(["[REDACTED:secret]"]) == "[REDACTED:secret]"
    assert memory.find_in_params(["john@example.com", 1111, None, b"x"]) is None
    assert memory.find_in_params(["1111", "****"]) is None


def test_sql_literals() -> None:
    memory = filled()
    sql = "UPDATE customers SET email = 'j***@example.com' WHERE id = 1"
    assert memory.find_in_text(sql) == "j***@example.com"
    multi = "insert into n values ('Call ************71 or write to j***@corp.io.')"
    assert memory.find_in_text(multi) == "Call ************71 or write to j***@corp.io."
    assert memory.find_in_text("update n set t = $$x <j***@corp.io>$$") == "j***@corp.io"
    assert memory.find_in_text("update n set t = $q$[REDACTED:secret]$q$") == "[REDACTED:secret]"
    assert memory.find_in_text("update n set t = 'it''s j***@corp.io'") == "j***@corp.io"
    assert memory.find_in_text("update n set t = 'john@example.com' -- j***@example.com") is None


def test_memory_is_bounded() -> None:
    memory = MaskedValues(capacity=100)
    for i in range(1000):
        memory.add(f"v{i}***")
    assert len(memory) <= 100
    assert "v999***" in memory
    assert "v0***" not in memory
    memory.update(f"w{i}***" for i in range(10_000))
    assert "w9999***" in memory
    memory.update(["x***"])
    assert len(memory) <= 10_000 + 100


def test_only_text_is_remembered() -> None:
    memory = MaskedValues()
    memory.add(5)
    memory.add(None)
    assert not memory
    assert 5 not in memory
