"""YAML that remembers where things are: mappings and lists carry line numbers.

``load_yaml(text, path)`` returns plain dicts/lists (``LineDict``/``LineList``
subclasses) whose keys and items know their 1-based line, and resolves
``env:NAME`` strings from the environment. Duplicate keys, non-string keys,
YAML syntax errors and unset variables raise ``PolicyError`` at file:line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from governed_db.errors import PolicyError

__all__ = ["EnvStr", "LineDict", "LineList", "env_value", "load_yaml"]

ENV_PREFIX = "env:"


class LineDict(dict[str, Any]):
    """A mapping from the file: ``line`` is where it starts, ``key_lines`` where each key is."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """The line of ``key``, else of the mapping itself."""
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence from the file: ``line`` is where it starts, ``item_lines`` where each item is."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        """The line of item ``index``, else of the list itself."""
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class EnvStr(str):
    """A string that came from an ``env:NAME`` reference (may be coerced to int/bool/float)."""

    variable: str = ""


def env_value(text: str, env: Mapping[str, str]) -> str:
    """``text`` itself, or for ``env:NAME`` the variable's value as an ``EnvStr``.

    Raises ``LookupError`` with a message when the variable is missing or unnamed.
    """
    if not text.startswith(ENV_PREFIX):
        return text
    variable = text[len(ENV_PREFIX) :].strip()
    if not variable:
        raise LookupError(f"{text!r} names no variable (write env:NAME)")
    if variable not in env:
        raise LookupError(f"environment variable {variable} is not set (referenced as {text!r})")
    result = EnvStr(env[variable])
    result.variable = variable
    return result


if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:  # libyaml's parser when PyYAML was built with it: same marks, ~10x faster
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):
    """SafeLoader without YAML 1.1 sexagesimal ints: ``17:30`` stays a string."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    value = loader.construct_scalar(node)
    if isinstance(value, str) and ":" in value:
        return value
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str, path: str | None, environ: Mapping[str, str] | None = None) -> Any:
    """Parse one YAML document into line-aware values; see the module docstring."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise PolicyError(f"YAML syntax error: {problem}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"YAML error: {exc}", path=path) from None
    finally:
        loader.dispose()
    if node is None:
        return None
    env = os.environ if environ is None else environ
    return _Converter(loader, path, env).convert(node, "")


class _Converter:
    __slots__ = ("env", "loader", "path")

    def __init__(self, loader: yaml.SafeLoader, path: str | None, env: Mapping[str, str]) -> None:
        self.loader = loader
        self.path = path
        self.env = env

    def fail(self, message: str, node: yaml.Node, key: str) -> PolicyError:
        line = node.start_mark.line + 1
        text = f"{key}: {message}" if key else message
        return PolicyError(text, path=self.path, line=line, key=key or None)

    def convert(self, node: yaml.Node, key: str) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, key)
        if isinstance(node, yaml.SequenceNode):
            result = LineList()
            result.line = node.start_mark.line + 1
            result.item_lines = []
            for i, item in enumerate(node.value):
                result.append(self.convert(item, f"{key}[{i}]"))
                result.item_lines.append(item.start_mark.line + 1)
            return result
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.fail(f"cannot read value: {exc}", node, key) from None
        if isinstance(value, str):
            try:
                return env_value(value, self.env)
            except LookupError as exc:
                raise self.fail(exc.args[0], node, key) from None
        return value

    def _mapping(self, node: yaml.MappingNode, key: str) -> LineDict:
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            name = self.loader.construct_object(key_node, deep=True)
            where = f"{key}.{name}" if key else str(name)
            if not isinstance(name, str):
                raise self.fail(f"keys must be strings, got {name!r} (quote it)", key_node, where)
            if name in result:
                raise self.fail(
                    f"duplicate key {name!r} (first at line {result.key_lines[name]})",
                    key_node,
                    where,
                )
            result[name] = self.convert(value_node, where)
            result.key_lines[name] = key_node.start_mark.line + 1
        return result
