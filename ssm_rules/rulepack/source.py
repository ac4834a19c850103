"""Reading a rule file: YAML (safe loader only) composed to nodes, turned into data with the line
of every key and value (`Source`), and `Problems`, every authoring mistake as `FILE:LINE: ...`;
the small checks every reader uses (`check_keys`, `required_text`, ...)."""

from __future__ import annotations

import errno
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from ssm_rules.rulepack.model import GUIDANCE_FILE, MAX_NESTING, MAX_RULE_FILE_BYTES
from ssm_rules.suggestions import did_you_mean


class Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._order: list[tuple[int, int, int]] = []  # (file's first appearance, line, index in lines)
        self._files: dict[str, int] = {}

    def add(self, file: str, line: int, message: str, column: int | None = None) -> None:
        where = f"{line}:{column}" if column else f"{line}"
        self._order.append((self._files.setdefault(file, len(self._files)), line, len(self.lines)))
        self.lines.append(f"{file}:{where}: {message}")

    def in_order(self) -> list[str]:
        """The problems file by file (in the order the files were read), each file's by line;
        lines added as text (`lines.extend`) come last."""
        placed = sorted(self._order)
        ranked = {index for _, _, index in placed}
        return [self.lines[index] for _, _, index in placed] + \
            [line for index, line in enumerate(self.lines) if index not in ranked]

    def __bool__(self) -> bool:
        return bool(self.lines)

    def __len__(self) -> int:
        return len(self.lines)


class _YamlProblem(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


@dataclass
class Source:
    """A parsed file: its data, and the line of every key and value by path."""

    file: str
    data: Any = None
    key_lines: dict[tuple, int] = field(default_factory=dict)
    value_lines: dict[tuple, int] = field(default_factory=dict)

    def line(self, path: tuple, *, key: bool = True) -> int:
        """Line of the key at `path` (or of its value), else of its nearest ancestor."""
        while path:
            found = (self.key_lines if key else self.value_lines).get(path) or \
                self.key_lines.get(path) or self.value_lines.get(path)
            if found:
                return found
            path = path[:-1]
        return self.value_lines.get((), 1)


class _RuleLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The safe loader, reading every number a person writes as a number: YAML 1.1 reads `1e6`
    and `1.5e6` (an exponent without a sign) as text, which a rule would then compare with
    numbers as text."""


_RuleLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))
_SAFE_LOADER = _RuleLoader
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def read_yaml(path: str, problems: Problems) -> Source | None:
    from ssm_rules.atomic import read_regular_file

    source = Source(path)
    try:
        raw = read_regular_file(path, MAX_RULE_FILE_BYTES)  # a FIFO is refused, not waited on
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            expected = "a guidance catalogue" if os.path.basename(path) == GUIDANCE_FILE else "a rule file holds one rule"
            problems.add(path, 1, f"the file is larger than {MAX_RULE_FILE_BYTES // 1024} KiB; {expected}")
        else:
            problems.add(path, 1, f"cannot read the file: {exc.strerror or exc}")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        problems.add(path, line, "the file is not UTF-8 text")
        return None
    try:
        node = yaml.compose(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        # The plan loader's wording: a tab, an unclosed quote, a stray control character are
        # named, with line and column, the same way in rule files as in plans.
        from ssm_rules.loader import _stream_problem, _syntax_problem

        found = (_syntax_problem(exc, text, MAX_NESTING) if isinstance(exc, yaml.MarkedYAMLError)
                 else _stream_problem(exc, text))
        message = found.message.replace("the plan is", "the file is", 1)
        problems.add(path, found.line or 1, f"YAML syntax error: {message}", found.column)
        return None
    if node is None:
        problems.add(path, 1, "the file is empty")
        return None
    try:
        source.data = _to_python(node, (), source, set())
    except _YamlProblem as problem:
        problems.add(path, problem.line, str(problem))
        return None
    return source


def _to_python(node: yaml.Node, path: tuple, source: Source, seen: set[int]) -> Any:
    line = node.start_mark.line + 1
    if len(path) > MAX_NESTING:  # each level is a Python call: stop long before the recursion limit
        raise _YamlProblem(line, f"nested more than {MAX_NESTING} levels deep; a rule is far flatter")
    if id(node) in seen:  # an alias: point at the key that uses it
        raise _YamlProblem(source.key_lines.get(path, line),
                           "anchors and aliases (`&name`, `*name`) are not supported in rule files")
    seen.add(id(node))
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        raise _YamlProblem(line, f"cannot read the tag `{node.tag}`: rule files hold plain data")
    source.value_lines[path] = line
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                raise _YamlProblem(key_line, "merge keys (`<<`) are not supported in rule files")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _YamlProblem(key_line, "a key must be plain text")
            key = _scalar(key_node)
            if not isinstance(key, str):
                key = key_node.value  # `1:` or `true:` as a key: keep the text as written
            if key in result:
                raise _YamlProblem(key_line, f"duplicate key `{key}` (already given on line "
                                             f"{source.key_lines[path + (key,)]})")
            source.key_lines[path + (key,)] = key_line
            result[key] = _to_python(value_node, path + (key,), source, seen)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            source.key_lines[path + (index,)] = item.start_mark.line + 1
            items.append(_to_python(item, path + (index,), source, seen))
        return items
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    try:
        return _CONSTRUCTOR.construct_object(node)
    except yaml.YAMLError as exc:
        raise _YamlProblem(node.start_mark.line + 1,
                           f"cannot read `{node.value}` ({getattr(exc, 'problem', None) or exc})") from None


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def check_keys(mapping: dict, allowed: Sequence[str], path: tuple, source: Source, problems: Problems,
               what: str) -> None:
    for key in mapping:
        if key not in allowed:
            problems.add(source.file, source.line(path + (key,)),
                         f"unknown key `{key}` in {what}{did_you_mean(str(key), allowed)}; "
                         f"allowed: {', '.join(allowed)}")


def required_text(mapping: dict, key: str, path: tuple, source: Source, problems: Problems) -> str | None:
    if key not in mapping:
        problems.add(source.file, source.line(path), f"missing required key `{key}`")
        return None
    return optional_text(mapping, key, path, source, problems)


def optional_text(mapping: dict, key: str, path: tuple, source: Source, problems: Problems) -> str | None:
    if key not in mapping:
        return None
    value = mapping[key]
    if not isinstance(value, str) or not value.strip():
        problems.add(source.file, source.line(path + (key,)), f"`{key}` must be non-empty text")
        return None
    return value.strip()


def is_plain_value(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool, date))


def plain_value(value: Any) -> str | int | float | bool:
    """Dates become ISO text: facts carry dates as ISO strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
