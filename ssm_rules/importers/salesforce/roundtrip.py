"""ruamel.yaml's round-trip documents, as the merge needs them: the YAML writer, values quoted
so that the plan loader (YAML 1.1) reads them as they were meant, the `# sf:` tags in
end-of-line comments, and the layout (comment and blank lines) kept as items and keys are added.

ruamel.yaml is imported only inside the functions that need it (cold start of other commands).
"""

from __future__ import annotations

import difflib
import io
from collections import Counter
from typing import Any

from ssm_rules.importers.salesforce.ids import SF_TAG, sf_key
from ssm_rules.importers.salesforce.values import Amount


def round_trip_yaml(mapping: int, sequence: int, offset: int):
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a person's long lines
    yaml.allow_unicode = True
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.representer.add_representer(Amount, _represent_amount)
    return yaml


def _represent_amount(representer, value: Amount):
    text = repr(float(value))
    mantissa, exponent_mark, exponent = text.partition("e")
    if exponent_mark and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"  # YAML 1.1 needs the dot: `1e+16` would be text
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def emit(yaml, doc) -> str:
    stream = io.StringIO()
    yaml.dump(doc, stream)
    return stream.getvalue()


_INDENTS = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 0), (4, 4, 2), (4, 8, 4), (3, 5, 3), (3, 3, 0))


def best_indent(doc, text: str):
    """The indentation settings under which ruamel re-emits the file closest to how it is
    written, and that re-emission (the base of the three-way merge)."""
    best = None
    original = text.splitlines(keepends=True)
    for settings in _INDENTS:
        yaml = round_trip_yaml(*settings)
        emitted = emit(yaml, doc)
        if emitted == text:
            return yaml, emitted
        matcher = difflib.SequenceMatcher(None, original, emitted.splitlines(keepends=True), autojunk=False)
        score = sum(block.size for block in matcher.get_matching_blocks())
        if best is None or score > best[0]:
            best = (score, yaml, emitted)
    return best[1], best[2]


def yaml_text(value: str):
    """A CRM string as a YAML value that PyYAML (the loader, YAML 1.1) also reads as text:
    `No`, `on`, `1:30` or `0123` are quoted."""
    import yaml
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False))
    return value if tag == "tag:yaml.org,2002:str" else SingleQuotedScalarString(value)


def misquoted(value: Any) -> bool:
    """A plain (unquoted) string that the loader reads as another type: `title: No` written by
    hand or by an older import. ruamel gives plain scalars as `str` itself, quoted ones as
    subclasses."""
    return type(value) is str and yaml_text(value) is not value


def reads_as(ours: Any, theirs: Any, misread: Counter) -> bool:
    """Whether the loader's data (`theirs`, YAML 1.1) is ruamel's document (`ours`, YAML 1.2),
    counting in `misread` the text values the loader reads as another type instead."""
    if isinstance(ours, dict):
        return (isinstance(theirs, dict) and len(ours) == len(theirs)
                and all(str(key) in theirs and reads_as(value, theirs[str(key)], misread)
                        for key, value in ours.items()))
    if isinstance(ours, list):
        return (isinstance(theirs, list) and len(ours) == len(theirs)
                and all(reads_as(mine, other, misread) for mine, other in zip(ours, theirs)))
    if isinstance(ours, str):
        if not isinstance(theirs, str):
            misread[str(ours)] += 1
            return True
        return str(ours) == theirs
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return isinstance(ours, bool) and isinstance(theirs, bool) and ours == theirs
    if isinstance(ours, float) and isinstance(theirs, float) and ours != ours:
        return theirs != theirs  # NaN
    return not isinstance(theirs, str) and ours == theirs


def misread_values(doc, data) -> Counter:
    """The text values of ruamel's document that the plan loader reads as another type."""
    found: Counter = Counter()
    reads_as(doc, data, found)
    return found


def _comment_token(value: str):
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    return CommentToken(value, CommentMark(0), None)


def _get_token(container, key):
    """The comment token after `key`'s value (its end-of-line comment and any comment or blank
    lines that follow it), or None."""
    entry = container.ca.items.get(key)
    if not entry:
        return None
    slot = 2 if is_map(container) else 0
    return entry[slot] if len(entry) > slot else None


def set_token(container, key, value: str | None) -> None:
    slot = 2 if is_map(container) else 0
    entry = container.ca.items.setdefault(key, [None, None, None, None])
    entry[slot] = _comment_token(value) if value else None


def tag_of(mapping, key: str, raw: bool = False) -> str | None:
    """The Salesforce ID in the `# sf:ID` comment at the end of the `key:` line (its 15-character
    key, or the ID as written with `raw`), or None."""
    token = _get_token(mapping, key)
    if token is None or not token.value.lstrip(" ").startswith("#"):
        return None
    first = token.value.split("\n", 1)[0]
    match = SF_TAG.search(first)
    if not match:
        return None
    return match.group(1) if raw else sf_key(match.group(1))


def set_tag(mapping, key: str, sf_id: str) -> None:
    """Put `# sf:ID` at the end of the `key:` line, keeping any comment a person wrote there.
    A flow mapping (`{id: x, name: y}`) has no line of its own for it: it becomes a block."""
    if mapping.fa.flow_style():
        mapping.fa.set_block_style()
    token = _get_token(mapping, key)
    if token is None:
        mapping.yaml_add_eol_comment(f"sf:{sf_id}", key)
        return
    first, newline, rest = token.value.partition("\n")
    if first.lstrip(" ").startswith("#"):
        first = f"{first.rstrip()}  sf:{sf_id}"
    else:
        first = f"  # sf:{sf_id}"
    token.value = first + "\n" + rest


def tag_item(seq, item, sf_id: str) -> None:
    if item.fa.flow_style():
        _blockify(seq, next(index for index, other in enumerate(seq) if other is item))
    set_tag(item, "id", sf_id)


def _blockify(seq, index: int) -> None:
    """Turn the flow mapping `- {id: x, ...}  # note` into a block one whose `id:` line can
    carry a tag, moving the item's comment onto that line."""
    item = seq[index]
    item.fa.set_block_style()
    entry = seq.ca.items.get(index)
    if not entry or entry[0] is None or _get_token(item, "id") is not None:
        return
    comment, newline, rest = entry[0].value.partition("\n")
    entry[0] = None
    keys = list(item.keys())
    set_token(item, "id", comment.strip() and f"  {comment.strip()}\n" + ("" if len(keys) > 1 else rest))
    if len(keys) > 1 and rest:
        _set_key_trailing(item, keys[-1], rest)


def is_map(node) -> bool:
    from ruamel.yaml.comments import CommentedMap

    return isinstance(node, CommentedMap)


def is_block(node) -> bool:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    return isinstance(node, (CommentedMap, CommentedSeq)) and len(node) > 0 and not node.fa.flow_style()


def _last_slot(node):
    """(container, key) holding the comment token emitted after the last line of `node`."""
    while True:
        key = list(node.keys())[-1] if is_map(node) else len(node) - 1
        value = node[key]
        if is_block(value):
            node = value
            continue
        return node, key


def _trailing(node) -> str:
    """The comment/blank lines that follow the last line of a block node."""
    return _key_trailing(*_last_slot(node))


def set_trailing(node, trailing: str) -> None:
    _set_key_trailing(*_last_slot(node), trailing)


def append_block(seq, item, separated: bool) -> None:
    """Append a block item to a block sequence, keeping the layout: the lines that followed the
    old last item (a blank line, the next section's heading comment) now follow the new one,
    and with `separated` a blank line comes before it."""
    if not is_block(item) or (len(seq) and not is_block(seq[-1])):
        seq.append(item)
        return
    trailing = ""
    if len(seq):
        trailing = _trailing(seq[-1])
        set_trailing(seq[-1], "")
    seq.append(item)
    set_trailing(item, trailing)
    if separated and len(seq) > 1:
        entry = seq.ca.items.setdefault(len(seq) - 1, [None, None, None, None])
        entry[1] = [_comment_token("\n")]


def items_separated(seq) -> bool | None:
    """Whether the items of a list are separated by blank lines; None if it cannot tell."""
    if not isinstance(seq, list) or len(seq) < 2:
        return None
    for index in range(1, len(seq)):
        if is_block(seq[index - 1]) and _trailing(seq[index - 1]).startswith("\n"):
            return True
        entry = seq.ca.items.get(index)
        if entry and entry[1] and entry[1][0].value.startswith("\n"):
            return True
    return False


def insert_key(mapping, key: str, value, order: list[str], separate: bool = False) -> None:
    """Add `key` where the plan format puts it relative to the keys already there. The comment
    and blank lines that followed the key before it (a heading for the next key, the blank
    line that ends a list item) move down to follow the new key; with `separate`, a blank line
    that was there stays between the two as well."""
    after = order[order.index(key) + 1:] if key in order else []
    keys = list(mapping.keys())
    position = len(keys)
    for index, existing in enumerate(keys):
        if existing in after:
            position = index
            break
    if position == 0:
        mapping.insert(position, key, value)
        return
    previous = mapping[keys[position - 1]]
    holder = previous if is_block(previous) else None
    trailing = _trailing(holder) if holder is not None else _key_trailing(mapping, keys[position - 1])
    keep = "\n" if separate and trailing.startswith("\n") else ""
    if holder is not None:
        set_trailing(holder, keep)
    else:
        _set_key_trailing(mapping, keys[position - 1], keep)
    mapping.insert(position, key, value)
    if is_block(value):
        set_trailing(value, trailing)
    else:
        _set_key_trailing(mapping, key, trailing)


def _key_trailing(container, key) -> str:
    token = _get_token(container, key)
    return token.value.partition("\n")[2] if token is not None else ""


def _set_key_trailing(container, key, trailing: str) -> None:
    token = _get_token(container, key)
    first = token.value.partition("\n")[0] if token is not None else ""
    value = first + "\n" + trailing if (first or trailing) else ""
    set_token(container, key, value if value != "\n" else None)


def flow_list(items: list[str]):
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq(yaml_text(item) for item in items)
    seq.fa.set_flow_style()
    return seq


def layout_new(doc) -> None:
    """A blank line between the sections of a new plan."""
    keys = list(doc.keys())
    for key in keys[1:-1]:
        if is_block(doc[key]):
            set_trailing(doc[key], "\n")

