"""Read one plan file into plain Python data plus an index of where every value was written.

Every later stage (validation, references, rules) reports problems by plan path
(`opportunities[0].buying_unit.sponsor[0]`); `Document.locate` turns such a path into the line
and column the user must look at. That is why the YAML is composed into nodes and walked here
instead of being handed to `yaml.safe_load`, which forgets positions.

Plan files come from many hands, so the loader treats them as hostile: only PyYAML's safe
loader is used, the file size, nesting depth and the number of values after alias expansion
are bounded, and anything that goes wrong becomes a `PlanError` rather than a traceback.

This is the hot path of a portfolio run (thousands of files): the common case (plain strings,
no aliases, no merge keys) is kept to a few operations per value, everything unusual is pushed
to slower helpers that only run when needed.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import date

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ssm_rules.errors import PlanError, PlanProblem

__all__ = ["DEFAULT_MAX_BYTES", "Document", "load_bytes", "load_path", "read_path"]

DEFAULT_MAX_BYTES = 5 * 1024 * 1024

# The walk recurses once per nesting level; a cap well below Python's recursion limit means a
# caller-chosen max_depth can never turn into a RecursionError. libyaml itself stops at 1000.
_HARD_MAX_DEPTH = 500
# A hostile file can hold 100k duplicate keys; nobody reads past the first screenful.
_MAX_PROBLEMS = 100

# A scalar's tag (is `2026-10-02` a date, `yes` a boolean, `12` a number?) is decided by PyYAML's
# resolver, in Python, for every value libyaml composes: a third of the time of composing a plan.
# For a plain scalar the answer depends on its text alone, and plans repeat the same keys and
# short values (`id`, `name`, `supporter`, `true`, dates) thousands of times, so it is memoised.
_TAGS: dict[str, str] = {}
_TAGS_MAX_ENTRIES = 50_000
_TAGS_MAX_LENGTH = 64  # longer values are prose: rarely repeated, not worth keeping


class _Loader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):
    # PyYAML's composer calls these two hooks around every node (~1,700 calls a plan) for path
    # resolvers, which ssm never registers; as Python methods they cost ~4% of the load.
    # A builtin type called with the same arguments does nothing useful and no Python frame runs.
    descend_resolver = slice  # slice(parent, index): a throwaway object
    ascend_resolver = tuple  # tuple(): the empty tuple

    def resolve(self, kind, value, implicit):
        if kind is ScalarNode and implicit[0]:  # a plain scalar (quoted ones are always text)
            tag = _TAGS.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(value) <= _TAGS_MAX_LENGTH and len(_TAGS) < _TAGS_MAX_ENTRIES:
                    _TAGS[value] = tag
            return tag
        # Quoted scalars are text, collections are maps and lists: PyYAML's defaults, without
        # the call (a fifth of the calls a plan makes).
        return _DEFAULT_TAGS[kind]


# YAML 1.1 reads `1e6` and `2.5e6` (an exponent without a sign, or without a point) as text; a
# person, YAML 1.2 and JSON read a number. A number field refuses text (`value: "12"` is a
# pasted cell), so `value: 1e6` would be refused as if it were quoted.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


_T = "tag:yaml.org,2002:"
_STR = _T + "str"
_MAP = _T + "map"
_SEQ = _T + "seq"
_NULL = _T + "null"
_BOOL = _T + "bool"
_INT = _T + "int"
_FLOAT = _T + "float"
_TIMESTAMP = _T + "timestamp"
_MERGE = _T + "merge"  # the `<<` key
_VALUE = _T + "value"  # a plain `=`: YAML 1.1 calls it a "value key", for a plan it is just text
_DEFAULT_TAGS = {ScalarNode: _STR, SequenceNode: _SEQ, MappingNode: _MAP}

_constructor = SafeConstructor()
_BOOLS = SafeConstructor.bool_values


def _timestamp(node):
    """A YAML timestamp as PyYAML builds it; the common `YYYY-MM-DD` without its regex."""
    value = node.value
    if len(value) == 10 and value[4] == "-" and value[7] == "-" and value.isascii():
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass  # `2026-02-30`: PyYAML's constructor raises the error the user is shown
    return _constructor.construct_yaml_timestamp(node)


# Scalar tags a plan may use, with how to build the value. Everything else (python/*, binary,
# set, omap, local `!tags`) is refused: a plan is data, and those tags either run code under an
# unsafe loader or produce values no later stage expects.
_SCALARS = {
    _STR: lambda node: node.value,
    _VALUE: lambda node: node.value,
    _NULL: lambda node: None,
    _BOOL: lambda node: _BOOLS[node.value.lower()],
    _INT: _constructor.construct_yaml_int,
    _FLOAT: _constructor.construct_yaml_float,
    _TIMESTAMP: _timestamp,
}


_SCALAR_KINDS = {
    _STR: "text",
    _VALUE: "text",
    _NULL: "null",
    _BOOL: "a true/false value",
    _INT: "a number",
    _FLOAT: "a number",
    _TIMESTAMP: "a date",
}

_EMPTY_MESSAGE = "the file is empty: a plan needs `format: ssm-plan/1` and an `account`"

# Cheap pre-check on the raw bytes: an alias (`*name`) can only follow the start of the file,
# whitespace, a flow indicator or (JSON-style) a colon, and needs an anchor (`&name`) written the
# same way. Most plans have neither, so the alias-bomb size check and the event pass that
# locates aliases are skipped for them. A false positive ("R &D", "**bold**") only costs time;
# a miss only costs speed on a bomb (the walk's own count still stops it).
_ANCHOR_HINT = re.compile(rb"(?:\A|[\s\[{,:])&[^\s\[\]{},]")
_ALIAS_HINT = re.compile(rb"(?:\A|[\s\[{,:])\*[^\s\[\]{},]")
# An alias written as a list item (`- *name`, `[*name`, `, *name`): only then is the event pass
# that finds where aliases are written worth its cost (it is about as slow as composing).
_ITEM_ALIAS_HINT = re.compile(rb"(?:(?:\A|\s)-\s+|[\[,]\s*)\*[^\s\[\]{},]")
_ALIAS_NAME = re.compile(r"[*&]([^\s\[\]{},]+)")

# What YAML counts as a line break, so that its line numbers can index the text.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# libyaml's (and PyYAML's) set of characters allowed in a YAML stream.
_NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# A JSON token (group 1): a string (group 2; group 3 is set when the string is a key), a bracket,
# or a bare literal/number. Whitespace, commas and colons before it are consumed by the same
# match, which is faster than letting finditer search for the next token.
# Only used for positions and duplicate keys; json.loads decides whether the file is valid JSON.
_JSON_TOKEN = re.compile(
    r'[\s,:]*+(("[^"\\]*+(?:\\.[^"\\]*+)*+")(\s*+:)?|[{}\[\]]|[^\s{}\[\]:,"]++)', re.S
)


@dataclass
class Document:
    data: dict
    positions: dict[str, tuple[int, int]]

    def locate(self, path: str) -> tuple[int, int]:
        """(line, column) of `path`, or of its nearest ancestor that has a position.

        A path to something absent from the file (a missing key the validator complains about)
        resolves to the mapping that should hold it, which is where the user must add it.
        """
        positions = self.positions
        while path:
            found = positions.get(path)
            if found is not None:
                return found
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return (1, 1)


def load_path(path: str | os.PathLike, **limits) -> Document:
    """Read and load a plan file; every failure (missing, unreadable, too big) is a PlanError."""
    raw = read_path(path, max_bytes=limits.get("max_bytes", DEFAULT_MAX_BYTES))
    return load_bytes(raw, os.fspath(path), **limits)


def read_path(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a plan file, with the same checks and messages as `load_path` (for callers
    that need the bytes themselves, e.g. to key a cache, before calling `load_bytes`)."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise _fail(_directory_message(path))
        # A FIFO or a device (/dev/zero) reports no useful size and may never end.
        if not stat.S_ISREG(info.st_mode):
            raise _fail("this is not a regular file: a plan must be a file on disk")
        if info.st_size > max_bytes:
            raise _fail(_too_big_message(info.st_size, max_bytes))
        with open(path, "rb") as handle:
            # The file may have grown since stat(); never read more than one byte past the limit.
            raw = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise _fail("the file does not exist") from None
    except PermissionError:
        raise _fail("cannot read the file: permission denied") from None
    except IsADirectoryError:
        raise _fail(_directory_message(path)) from None
    except OSError as exc:
        raise _fail(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise _fail(_too_big_message(len(raw), max_bytes, at_least=True))
    return raw


def _directory_message(path: str | os.PathLike) -> str:
    # A directory reaches the loader when a run could not list it (ssm_rules.discovery): its
    # plans were not checked, and the run must say so rather than look clean.
    try:
        with os.scandir(path):
            pass
    except OSError as exc:
        return f"cannot read this directory ({exc.strerror or exc}): the plans in it were not checked"
    return "this is a directory, not a plan file"


def load_bytes(
    raw: bytes,
    filename: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = 64,
    max_nodes: int = 200_000,
) -> Document:
    """Parse one plan (YAML, or JSON when `filename` ends in `.json`) into a Document."""
    if not 1 <= max_depth <= _HARD_MAX_DEPTH:
        raise ValueError(f"max_depth must be between 1 and {_HARD_MAX_DEPTH}, got {max_depth}")
    if not isinstance(raw, bytes):
        raw = bytes(raw)
    if len(raw) > max_bytes:  # one byte past the limit: what a capped read (stdin) gives
        raise _fail(_too_big_message(len(raw), max_bytes, at_least=len(raw) == max_bytes + 1))
    text = _decode(raw)
    try:
        if os.fspath(filename).lower().endswith(".json"):
            return _load_json(text, max_depth, max_nodes)
        return _load_yaml(raw, text, max_depth, max_nodes)
    except PlanError:
        raise
    except RecursionError:
        # Only reachable with the pure-Python SafeLoader (no libyaml), whose composer recurses.
        raise _fail(f"the plan is nested too deeply (more than {max_depth} levels)") from None
    except Exception as exc:  # noqa: BLE001 - the contract is "never a traceback for any input"
        raise _fail(f"could not read the plan ({type(exc).__name__}: {exc})") from exc


# --- shared helpers -------------------------------------------------------------------------


def _fail(message: str, line: int | None = None, column: int | None = None, path: str | None = None):
    return PlanError([PlanProblem(message, line, column, path)])


def _too_big_message(size: int, limit: int, at_least: bool = False) -> str:
    # Reading stops one byte past the limit: then only "more than the limit" is known.
    size_text = f"more than {limit:,}" if at_least else f"{size:,}"
    return (
        f"the file is too big: {size_text} bytes, the limit is {limit:,} bytes"
        " (a plan is normally a few kilobytes)"
    )


def _decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = raw.count(b"\n", 0, start) + 1
        line_start = raw.rfind(b"\n", 0, start) + 1
        column = len(raw[line_start:start].decode("utf-8", "replace")) + 1
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            detail = "the file is UTF-16 (it starts with a UTF-16 byte order mark)"
        else:
            detail = f"byte 0x{raw[start]:02x} at offset {start} (column {column})"
        message = f"not valid UTF-8 at line {line}: {detail}; save the file as UTF-8"
        raise _fail(message, line, column) from None
    # The BOM is legal and invisible in editors; libyaml skips it too, so columns agree.
    return text[1:] if text.startswith("\ufeff") else text


def _position(mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _describe_node(node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, MappingNode):
        return "a mapping"
    kind = _SCALAR_KINDS.get(node.tag, "a value")
    return "a text value" if kind == "text" else kind


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_T) :] if tag.startswith(_T) else tag


def _path_prefixes(path: str) -> list[str]:
    """`a.b[2].c` -> ["a", "a.b", "a.b[2]", "a.b[2].c"]: every ancestor, outermost first."""
    cuts = [i for i, char in enumerate(path) if char in ".[" and i > 0]
    return [path[:i] for i in cuts] + [path]


# --- YAML -----------------------------------------------------------------------------------


class _TooDeep(Exception):
    """Raised at the first collection nested deeper than max_depth; collects the node chain while
    unwinding so a recursive alias (a node containing itself) can be told apart from deep data."""

    def __init__(self, node, path: str):
        self.node = node
        self.path = path
        self.chain = []


class _TooMany(Exception):
    def __init__(self, node, path: str):
        self.node = node
        self.path = path


class _TooManyProblems(Exception):
    pass


def _load_yaml(raw: bytes, text: str, max_depth: int, max_nodes: int) -> Document:
    try:
        loader = _Loader(raw)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise PlanError([_syntax_problem(exc, text, max_depth)]) from None
    except yaml.YAMLError as exc:
        raise PlanError([_stream_problem(exc, text)]) from None

    if root is None or (type(root) is ScalarNode and root.tag == _NULL and root.value == ""):
        raise _fail(_EMPTY_MESSAGE, 1, 1)
    kind = type(root)
    if not (
        (kind is ScalarNode and root.tag in _SCALARS)
        or (kind is SequenceNode and root.tag == _SEQ)
        or (kind is MappingNode and root.tag == _MAP)
    ):
        raise _fail(_tag_message(root.tag), *_position(root.start_mark), "")
    if kind is not MappingNode:
        raise _fail(
            f"a plan must be a mapping (key: value pairs) at the top level, found {_describe_node(root)}",
            *_position(root.start_mark),
            "",
        )

    # `in` (memchr) first: the regexes cost half a millisecond on a plan with neither character.
    has_aliases = b"&" in raw and b"*" in raw and bool(_ANCHOR_HINT.search(raw) and _ALIAS_HINT.search(raw))
    if has_aliases:
        # Refuse an alias bomb from its compact node graph, before expanding anything.
        _check_expansion(root, raw, max_nodes)

    walker = _Walker(max_depth, max_nodes)
    try:
        data = walker.mapping(root, "", 1)
    except _TooDeep as exc:
        raise PlanError([_too_deep_problem(exc, raw, max_depth)]) from None
    except _TooMany as exc:
        raise PlanError([_too_many_problem(exc, raw, max_nodes)]) from None
    except _TooManyProblems:
        pass
    if walker.problems:
        raise PlanError(_unique(walker.problems))

    if has_aliases and _ITEM_ALIAS_HINT.search(raw):
        # A list item written as `- *name` is composed as the anchored node itself, whose marks
        # point at the anchor; the user expects the position of the item they wrote.
        for path, position in _text_aliases(raw).items():
            if path.endswith("]") and path in walker.positions:
                walker.positions[path] = position
    return Document(data, walker.positions)


class _Walker:
    """Builds the data and the positions index from the composed node tree in one pass.

    Aliases are composed as shared nodes, so walking a tree that uses them re-walks each
    aliased subtree: that is what bounds an alias bomb (`budget`), and it gives every expanded
    value its own path and its own Python object, as if the user had written it out.
    """

    def __init__(self, max_depth: int, max_nodes: int):
        self.max_depth = max_depth
        self.budget = max_nodes
        self.positions: dict[str, tuple[int, int]] = {}
        self.problems: list[PlanProblem] = []
        self._merge_memo: dict[int, dict | None] = {}

    def problem(self, message: str, mark, path: str | None) -> None:
        self.problems.append(PlanProblem(message, mark.line + 1, mark.column + 1, path))
        if len(self.problems) >= _MAX_PROBLEMS:
            self.problems.append(PlanProblem(f"stopped after {_MAX_PROBLEMS} problems"))
            raise _TooManyProblems

    def mapping(self, node, path: str, depth: int) -> dict:
        if depth > self.max_depth:
            raise _TooDeep(node, path)
        pairs = node.value
        self.budget -= len(pairs)
        if self.budget < 0:
            raise _TooMany(node, path)
        positions = self.positions
        prefix = path + "." if path else ""
        out: dict = {}
        merge = None
        try:
            for key_node, value_node in pairs:
                if type(key_node) is ScalarNode and key_node.tag == _STR:
                    key = key_node.value
                else:
                    key = self.odd_key(key_node, prefix)
                    if key is None:
                        if key_node.tag == _MERGE and type(key_node) is ScalarNode:
                            if merge is not None:
                                first = merge[0].start_mark.line + 1
                                self.problem(
                                    f"duplicate key '<<' (first defined at line {first})",
                                    key_node.start_mark,
                                    prefix + "<<",
                                )
                            else:
                                merge = (key_node, value_node)
                        continue
                child = prefix + key
                mark = key_node.start_mark
                if key in out:
                    first = positions[child][0]
                    self.problem(f"duplicate key '{key}' (first defined at line {first})", mark, child)
                    continue
                positions[child] = (mark.line + 1, mark.column + 1)
                if type(value_node) is ScalarNode and value_node.tag == _STR:
                    out[key] = value_node.value
                else:
                    out[key] = self.value(value_node, child, depth)
            if merge is not None:
                self.merge(out, merge, prefix, depth)
        except _TooDeep as exc:
            exc.chain.append(node)
            raise
        return out

    def sequence(self, node, path: str, depth: int) -> list:
        if depth > self.max_depth:
            raise _TooDeep(node, path)
        items = node.value
        self.budget -= len(items)
        if self.budget < 0:
            raise _TooMany(node, path)
        positions = self.positions
        out: list = []
        append = out.append
        try:
            for index, item in enumerate(items):
                child = f"{path}[{index}]"
                mark = item.start_mark
                positions[child] = (mark.line + 1, mark.column + 1)
                if type(item) is ScalarNode and item.tag == _STR:
                    append(item.value)
                else:
                    append(self.value(item, child, depth))
        except _TooDeep as exc:
            exc.chain.append(node)
            raise
        return out

    def value(self, node, path: str, depth: int):
        """Any value except the plain string the callers already handle inline."""
        kind = type(node)
        tag = node.tag
        if kind is ScalarNode:
            build = _SCALARS.get(tag)
            if build is not None:
                try:
                    return build(node)
                except Exception as exc:  # noqa: BLE001 - e.g. `!!int abc`, `2026-02-30`
                    self.problem(_bad_scalar_message(node, exc), node.start_mark, path)
                    return None
        elif kind is MappingNode:
            if tag == _MAP:
                return self.mapping(node, path, depth + 1)
        elif kind is SequenceNode:
            if tag == _SEQ:
                return self.sequence(node, path, depth + 1)
        self.problem(_tag_message(tag), node.start_mark, path)
        return None

    def odd_key(self, key_node, prefix: str) -> str | None:
        """The key as text, or None (and a problem, unless it is a merge key) if it is not text."""
        tag = key_node.tag
        if type(key_node) is ScalarNode:
            if tag == _MERGE:
                return None
            if tag == _VALUE:
                return key_node.value
            if tag in _SCALARS:
                shown = key_node.value or "(empty)"
                self.problem(
                    f"the key {shown} is read as {_SCALAR_KINDS[tag]}, but keys must be text:"
                    f" quote it ('{key_node.value}':) or fix the key",
                    key_node.start_mark,
                    prefix + key_node.value if key_node.value else None,
                )
                return None
            self.problem(_tag_message(tag), key_node.start_mark, None)
            return None
        self.problem(
            f"a key must be text, found {_describe_node(key_node)} used as a key",
            key_node.start_mark,
            None,
        )
        return None

    def merge(self, out: dict, merge, prefix: str, depth: int) -> None:
        """Apply a YAML merge key (`<<: *defaults`) the way PyYAML's safe_load does: keys written
        in the mapping win over merged ones, and earlier sources in `<<: [*a, *b]` win over later.
        Merged values are walked (and counted) like any other, at the path they end up under."""
        key_node, value_node = merge
        merged: dict = {}
        for source in self.merge_sources(key_node, value_node):
            for key, pair in self.flatten(source, depth + 1).items():
                merged.setdefault(key, pair)
        pending = [(key, pair) for key, pair in merged.items() if key not in out]
        self.budget -= len(pending)
        if self.budget < 0:
            raise _TooMany(value_node, prefix + "<<")
        for key, (source_key, source_value) in pending:
            child = prefix + key
            self.positions[child] = _position(source_key.start_mark)
            if type(source_value) is ScalarNode and source_value.tag == _STR:
                out[key] = source_value.value
            else:
                out[key] = self.value(source_value, child, depth)

    def merge_sources(self, key_node, value_node) -> list:
        if type(value_node) is MappingNode and value_node.tag == _MAP:
            return [value_node]
        if type(value_node) is SequenceNode and value_node.tag == _SEQ:
            if all(type(item) is MappingNode and item.tag == _MAP for item in value_node.value):
                return value_node.value
        self.problem(
            "a merge key `<<` must be followed by a mapping or a list of mappings",
            key_node.start_mark,
            None,
        )
        return []

    def flatten(self, node, depth: int) -> dict:
        """key -> (key node, value node) that a merge source contributes, its own `<<` applied.

        Memoised per node: a chain of sources merging each other twice per level would
        otherwise take exponential time without ever building a large value."""
        memo = self._merge_memo
        found = memo.get(id(node), False)
        if found is None:
            self.problem("a merge key `<<` includes the mapping it is written in", node.start_mark, None)
            return {}
        if found is not False:
            return found
        if depth > self.max_depth:
            raise _TooDeep(node, "")
        memo[id(node)] = None  # in progress: meeting it again means a cycle
        result: dict = {}
        nested = None
        for key_node, value_node in node.value:
            if type(key_node) is ScalarNode and key_node.tag in (_STR, _VALUE):
                if key_node.value in result:
                    first = result[key_node.value][0].start_mark.line + 1
                    self.problem(
                        f"duplicate key '{key_node.value}' (first defined at line {first})",
                        key_node.start_mark,
                        None,
                    )
                else:
                    result[key_node.value] = (key_node, value_node)
            elif type(key_node) is ScalarNode and key_node.tag == _MERGE and nested is None:
                nested = (key_node, value_node)
            else:
                self.odd_key(key_node, "")
        if nested is not None:
            for source in self.merge_sources(*nested):
                for key, pair in self.flatten(source, depth + 1).items():
                    result.setdefault(key, pair)
        memo[id(node)] = result
        return result


def _unique(problems: list[PlanProblem]) -> list[PlanProblem]:
    # A merge source is checked where it is written and again where it is merged.
    return list(dict.fromkeys(problems))


def _tag_message(tag: str) -> str:
    return (
        f"tag '{_show_tag(tag)}' is not allowed: plans are data"
        " (plain mappings, lists, text, numbers, true/false and dates)"
    )


def _bad_scalar_message(node, exc: Exception) -> str:
    value = node.value if len(node.value) <= 40 else node.value[:37] + "..."
    tag = node.tag
    if tag == _TIMESTAMP:
        reason = f" ({exc})" if isinstance(exc, ValueError) else ""
        return f"'{value}' is not a valid date{reason}"
    if tag == _INT and "limit" in str(exc):
        return f"the number '{value}' has too many digits"
    return f"'{value}' is not a valid {_show_tag(tag)} value"


def _text_aliases(raw: bytes) -> dict[str, tuple[int, int]]:
    """Plan path -> position of every alias (`*name`) as written in the file.

    The composed tree has lost this (an alias *is* its anchor's node), so it is recovered from
    the event stream. Only called when a file has aliases, or to explain an error."""
    aliases: dict[str, tuple[int, int]] = {}
    # Frames: [path or None, is_mapping, index for a sequence / pending key for a mapping,
    #          expecting a key]. A path of None marks the inside of a complex key: ignored.
    stack: list[list] = []
    for event in yaml.parse(raw, Loader=_Loader):
        kind = type(event)
        if kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
            stack.pop()
            continue
        if kind not in (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent):
            continue
        path: str | None = ""
        if stack:
            top = stack[-1]
            parent = top[0]
            if top[1]:
                if top[3]:  # this event is a key
                    top[3] = False
                    top[2] = event.value if kind is yaml.ScalarEvent else None
                    if kind in (yaml.MappingStartEvent, yaml.SequenceStartEvent):
                        stack.append([None, kind is yaml.MappingStartEvent, 0, True])
                    continue
                top[3] = True
                key = top[2]
                path = None if parent is None or key is None else (f"{parent}.{key}" if parent else key)
            else:
                path = None if parent is None else f"{parent}[{top[2]}]"
                top[2] += 1
        if kind is yaml.AliasEvent:
            if path is not None:
                aliases[path] = _position(event.start_mark)
        elif kind is yaml.MappingStartEvent:
            stack.append([path, True, None, True])
        elif kind is yaml.SequenceStartEvent:
            stack.append([path, False, 0, False])
    return aliases


def _first_alias_on(path: str, raw: bytes) -> tuple[str | None, tuple[int, int] | None, bool]:
    """(path and position of the outermost alias written on the way to `path`, whether the file
    has aliases at all). That alias is what the user wrote; everything below it is expansion."""
    try:
        aliases = _text_aliases(raw)
    except yaml.YAMLError:  # pragma: no cover - the file composed fine a moment ago
        return None, None, False
    for prefix in _path_prefixes(path) if path else []:
        if prefix in aliases:
            return prefix, aliases[prefix], True
    return None, None, bool(aliases)


def _children(node, path: str):
    """(plan path, node) of the values directly inside a collection node."""
    if type(node) is MappingNode:
        prefix = path + "." if path else ""
        return [
            (prefix + (key.value if type(key) is ScalarNode else "?"), value) for key, value in node.value
        ]
    if type(node) is SequenceNode:
        return [(f"{path}[{index}]", item) for index, item in enumerate(node.value)]
    return []


def _check_expansion(root, raw: bytes, max_nodes: int) -> None:
    """Raise the alias-bomb error if expanding every alias would exceed max_nodes values.

    Sizes are computed once per distinct node over the composed graph (where an alias is a
    shared node), so nine levels of "billion laughs" cost a few dozen steps instead of 9**9.
    The walker keeps its own count; this only makes the common bomb fail fast and small."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            values = node.value if type(node) is SequenceNode else [value for _, value in node.value]
            # Capped so a graph with hundreds of doubling levels does not build huge integers.
            sizes[key] = min(len(values) + sum(sizes.get(id(value), 0) for value in values), max_nodes + 1)
            in_progress.discard(key)
            continue
        if key in sizes:
            continue
        if key in in_progress:
            return  # a recursive alias: the walker reports it with a better message
        in_progress.add(key)
        stack.append((node, True))
        values = node.value if type(node) is SequenceNode else [value for _, value in node.value]
        stack.extend(
            (value, False) for value in values if type(value) is not ScalarNode and id(value) not in sizes
        )
    if sizes[id(root)] <= max_nodes:
        return
    # Find where a walk would run out, i.e. the path the walker would have reported.
    remaining = max_nodes
    node, path = root, ""
    while True:
        children = _children(node, path)
        remaining -= len(children)
        if remaining < 0:
            break
        for child_path, child in children:
            size = sizes.get(id(child), 0)
            if remaining - size < 0:
                node, path = child, child_path
                break
            remaining -= size
        else:  # pragma: no cover - the sizes say the budget runs out somewhere below
            break
    raise PlanError([_too_many_problem(_TooMany(node, path), raw, max_nodes)])


def _too_deep_problem(exc: _TooDeep, raw: bytes, max_depth: int) -> PlanProblem:
    chain = exc.chain
    if len({id(node) for node in chain}) < len(chain) or exc.node in chain:
        alias_path, where, _ = _first_alias_on(exc.path, raw)
        line, column = where or _position(exc.node.start_mark)
        return PlanProblem(
            "an alias refers to a node that contains it: plans cannot be recursive",
            line,
            column,
            alias_path or exc.path or None,
        )
    line, column = _position(exc.node.start_mark)
    return PlanProblem(
        f"the plan is nested too deeply (more than {max_depth} levels)", line, column, exc.path or None
    )


def _too_many_problem(exc: _TooMany, raw: bytes, max_nodes: int) -> PlanProblem:
    alias_path, where, has_aliases = _first_alias_on(exc.path, raw)
    if has_aliases:
        line, column = where or _position(exc.node.start_mark)
        return PlanProblem(
            f"too many nodes after alias expansion (limit {max_nodes:,}): is this an alias bomb?",
            line,
            column,
            alias_path or exc.path or None,
        )
    line, column = _position(exc.node.start_mark)
    return PlanProblem(
        f"the plan has too many values (limit {max_nodes:,}): a plan is far smaller than this",
        line,
        column,
        exc.path or None,
    )


# libyaml's wording -> what to check, for the mistakes people actually make.
_SYNTAX_HINTS = (
    (
        "mapping values are not allowed",
        "a value that contains ': ' must be quoted, or the indentation is off",
    ),
    ("could not find expected ':'", "a key is missing its ':', or a quote is not closed"),
    ("did not find expected key", "check this line's indentation against the keys above it"),
    ("did not find expected '-' indicator", "list items and keys are mixed at the same indentation"),
    ("found unexpected end of stream", "a quote or bracket is not closed"),
    ("found unknown escape character", "in double quotes a backslash starts an escape: use single quotes"),
)


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, max_depth: int) -> PlanProblem:
    mark = exc.problem_mark or exc.context_mark
    line, column = _position(mark) if mark is not None else (None, None)
    problem = exc.problem or ""
    context = exc.context or ""
    lines = _LINE_BREAK.split(text)

    def rest_of_line(some_mark) -> str:
        # By line and column, not mark.index: the pure-Python reader counts a BOM in the index.
        if some_mark is None or some_mark.line >= len(lines):
            return ""
        return lines[some_mark.line][some_mark.column :]

    def name_at(some_mark) -> str:
        found = _ALIAS_NAME.match(rest_of_line(some_mark))
        return found.group(1) if found else "?"

    char = rest_of_line(mark)[:1]

    if "end of stream" in problem and "quoted scalar" in context and exc.context_mark is not None:
        # The end of the file is not where the mistake is: the opening quote is.
        line, column = _position(exc.context_mark)
        message = (
            f"a quoted value is never closed: the quote at line {line}, column {column}"
            " has no matching end quote"
        )
    elif "maximum nesting depth" in problem:
        message = f"the plan is nested too deeply (more than {max_depth} levels)"
    elif "found another document" in problem:
        message = (
            f"the file holds more than one YAML document (another starts at line {line}):"
            " a plan is one document"
        )
    elif "found undefined alias" in problem:
        name = name_at(exc.problem_mark)
        message = f"alias '*{name}' is used, but no anchor '&{name}' is defined before it"
    elif "duplicate anchor" in context:
        first = exc.context_mark.line + 1 if exc.context_mark is not None else "?"
        message = f"anchor '&{name_at(exc.problem_mark)}' is defined twice (first at line {first})"
    elif "tab character" in problem or char == "\t":
        message = "a tab character is used for indentation: YAML needs spaces"
    else:
        message = f"invalid YAML: {problem}" if problem else f"invalid YAML: {context}"
        if problem and context and exc.context_mark is not None:
            message += f" ({context} at line {exc.context_mark.line + 1})"
        for clue, hint in _SYNTAX_HINTS:
            if clue in problem:
                message += f"; {hint}"
                break
    return PlanProblem(message, line, column)


def _stream_problem(exc: yaml.YAMLError, text: str) -> PlanProblem:
    """Errors without a mark: in practice the reader refusing a control character."""
    found = _NON_PRINTABLE.search(text)
    if isinstance(exc, yaml.reader.ReaderError) and found:
        index = found.start()
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        return PlanProblem(
            f"the file contains a control character (U+{ord(found.group()):04X}) at line {line}:"
            " YAML text cannot contain it",
            line,
            column,
        )
    return PlanProblem(f"invalid YAML: {exc}")


# --- JSON -----------------------------------------------------------------------------------
#
# The data comes from the json module (strict JSON, C speed). Positions come from a small
# tokenizer below rather than from composing the text as YAML: YAML 1.1 reads valid JSON
# differently in several places (surrogate-pair escapes are rejected, `1e5` is a string, keys
# over 1024 characters fail), so it cannot be the source of truth for a JSON file.


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _load_json(text: str, max_depth: int, max_nodes: int) -> Document:
    if not text.strip():
        raise _fail(_EMPTY_MESSAGE, 1, 1)
    # The scan runs first: it bounds depth before json.loads (which recurses) sees the text.
    positions, problems = _json_positions(text, max_depth, max_nodes)
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _fail(f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except ValueError as exc:
        if problems:  # the scan already located the NaN/Infinity
            raise PlanError(problems) from None
        raise _fail(f"invalid JSON: {exc}") from None
    if problems:
        raise PlanError(problems)
    if _SURROGATE_ESCAPE.search(text):
        _refuse_lone_surrogates(data, positions)
    if not isinstance(data, dict):
        kind = _describe_json(data)
        first = _JSON_TOKEN.match(text)
        line, column = _text_position(text, first.start(1)) if first else (1, 1)
        message = f"a plan must be a mapping (key: value pairs) at the top level, found {kind}"
        raise _fail(message, line, column, "")
    return Document(data, positions)


# `\ud800`-`\udfff`: half of a UTF-16 pair. JSON allows one alone; it is no character, and no
# report, database or terminal can write it. (YAML's reader refuses it itself.)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _refuse_lone_surrogates(data, positions: dict[str, tuple[int, int]]) -> None:
    problems: list[PlanProblem] = []
    stack = [("", data)]
    while stack and len(problems) < _MAX_PROBLEMS:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else key
                if not _is_unicode(key):  # located at the key itself; the path (shown) ends above it
                    problems.append(_surrogate_problem("a key", child, path or None, positions))
                else:
                    stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, str) and not _is_unicode(value):
            problems.append(_surrogate_problem("this text", path, path, positions))
    if problems:
        problems.sort(key=lambda problem: (problem.line or 0, problem.column or 0))
        raise PlanError(problems)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate_problem(what: str, where: str, path: str | None,
                       positions: dict[str, tuple[int, int]]) -> PlanProblem:
    """The problem at the position of plan path `where`, reported with `path` (valid Unicode)."""
    line, column = Document({}, positions).locate(where)
    return PlanProblem(f"{what} holds an unpaired surrogate escape (\\ud800-\\udfff): half of a UTF-16 pair is "
                       f"not a character; write the character itself", line, column, path)


def _describe_json(data) -> str:
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "a text value"
    if isinstance(data, bool):
        return "a true/false value"
    return "null" if data is None else "a number"


def _text_position(text: str, index: int) -> tuple[int, int]:
    return (text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1)


def _json_positions(text: str, max_depth: int, max_nodes: int):
    """Positions, duplicate keys and bounds of a JSON text, one regex token at a time."""
    positions: dict[str, tuple[int, int]] = {}
    problems: list[PlanProblem] = []
    # Frames: [is_object, path (None inside a duplicate key's value), next index, keys seen].
    stack: list[list] = []
    value_path: str | None = ""  # where the next value inside an object goes
    nodes = 0
    line, line_start, last = 1, 0, 0
    for match in _JSON_TOKEN.finditer(text):
        start = match.start(1)
        first = text[start]
        if first == "}" or first == "]":
            if stack:
                stack.pop()
            continue
        newlines = text.count("\n", last, start)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", last, start) + 1
        last = start
        position = (line, start - line_start + 1)
        if match.group(3) is not None:  # a string followed by `:` is a key
            if not stack or not stack[-1][0]:
                continue  # not valid JSON; json.loads says so
            frame = stack[-1]
            token = match.group(2)
            try:
                key = token[1:-1] if "\\" not in token else json.loads(token)
            except ValueError:
                key = token
            parent = frame[1]
            seen = frame[3]
            path = None if parent is None else (f"{parent}.{key}" if parent else key)
            if key in seen:
                if len(problems) < _MAX_PROBLEMS:
                    problems.append(
                        PlanProblem(
                            f"duplicate key '{key}' (first defined at line {seen[key]})", *position, path
                        )
                    )
                value_path = None  # the duplicate's value gets no positions: the first one stands
            else:
                seen[key] = line
                value_path = path
                if path is not None:
                    positions[path] = position
            continue
        # A value: a scalar or the opening of a collection.
        if stack and not stack[-1][0]:
            frame = stack[-1]
            path = None if frame[1] is None else f"{frame[1]}[{frame[2]}]"
            frame[2] += 1
            if path is not None:
                positions[path] = position
        else:
            path = value_path
        nodes += 1
        if nodes > max_nodes:
            message = f"the plan has too many values (limit {max_nodes:,}): a plan is far smaller than this"
            raise _fail(message, *position, path)
        if first == "{" or first == "[":
            if len(stack) >= max_depth:
                raise _fail(f"the plan is nested too deeply (more than {max_depth} levels)", *position, path)
            stack.append([first == "{", path, 0, {}])
        elif first in "NI-" and match.group(1) in ("NaN", "Infinity", "-Infinity"):
            message = f"{match.group(1)} is not valid JSON: write a number"
            problems.append(PlanProblem(message, *position, path))
    return positions, problems
