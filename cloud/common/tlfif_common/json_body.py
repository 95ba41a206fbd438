"""Strict JSON for request bodies: whatever a client sends becomes a clean value or a RequestError naming where.

`json.loads` alone accepts what no route can use and fails later in ways that look like bugs: NaN and Infinity,
integers too long for int() (Python refuses more than 4,300 digits), lone UTF-16 surrogates ("\\ud800") that break
every later encode, duplicate keys (the last one silently wins), nesting deep enough to exhaust the stack.
`loads` refuses each of them here, naming the field as the validators do ("messages[2].content", "params.x").
"""
from __future__ import annotations

import json
import math
from typing import Any

from .jobs import RequestError

MAX_DEPTH = 16  # the deepest valid body is 3 levels (body → messages → turn); leave room, refuse stacks of [[[
MAX_INT = 2 ** 63 - 1  # no field takes more; what Redis, DynamoDB and every JSON reader agree on
MAX_INT_DIGITS = len(str(MAX_INT))
MAX_FIELD_LABEL = 64  # how much of a client-chosen key an error message repeats


class _Refused:
    """Stands where the parser met something a body may not hold; `loads` reports its place."""

    def __init__(self, reason: str, key: str | None = None):
        self.reason = reason
        self.key = key  # for a duplicate key: the key itself


OUT_OF_RANGE_INT = "is an integer out of range (beyond ±2^63)"
OUT_OF_RANGE_FLOAT = "is a number out of range"


def _parse_int(text: str) -> Any:
    """Only for a second parse, after int() refused a literal (more than 4,300 digits): find out where it was."""
    return _Refused(OUT_OF_RANGE_INT) if len(text.lstrip("-")) > MAX_INT_DIGITS else int(text)


def _parse_constant(name: str) -> Any:
    return _Refused(f"is {name}, which is not JSON (numbers must be finite)")


def _object(pairs: list[tuple[str, Any]]) -> Any:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                return _Refused("appears more than once in the same object", key=key)
            seen.add(key)
    return obj


def field_label(key: str) -> str:
    """A client-chosen key as it may appear in an error: printable ASCII, at most MAX_FIELD_LABEL characters."""
    text = key.encode("ascii", "backslashreplace").decode("ascii")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= MAX_FIELD_LABEL else text[:MAX_FIELD_LABEL] + "…"


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return field_label(key) if path == "body" else f"{path}.{field_label(key)}"


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Place:
    """Where a container sits: its parent's place and its key. The path is only spelled out for an error."""

    __slots__ = ("parent", "key")

    def __init__(self, parent: _Place | str, key: str | int | None = None):
        self.parent = parent
        self.key = key

    def path(self) -> str:
        keys, place = [], self
        while isinstance(place, _Place):
            keys.append(place.key)
            place = place.parent
        where = place
        for key in reversed(keys):
            where = _child(where, key)
        return where


def check_value(value: Any, path: str = "body") -> None:
    """RequestError naming the first place in a decoded body that holds a refused value, bad text or deep nesting.

    Iterative (it must not itself be the recursion a deep body exhausts); only non-empty containers are stacked
    and paths are spelled out only for the error, so a body of a million small items costs little beyond its parse.
    """
    _check_leaf(value, path)
    stack: list[tuple[Any, _Place | str, int]] = [(value, path, 0)] if isinstance(value, (dict, list)) else []
    while stack:
        container, place, depth = stack.pop()
        if depth >= MAX_DEPTH:
            where = place.path() if isinstance(place, _Place) else place
            raise RequestError(where, f"{where} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(container, dict):
            items = container.items()
            for key in container:
                if not _is_unicode(key):
                    where = place.path() if isinstance(place, _Place) else place
                    raise RequestError(where, f"a key in {where} is not valid Unicode (a lone UTF-16 surrogate escape)")
        else:
            items = enumerate(container)
        nested = []
        for key, child in items:
            if isinstance(child, (dict, list)):
                if child or depth + 1 >= MAX_DEPTH:  # an empty one holds nothing to check below it
                    nested.append((child, _Place(place, key), depth + 1))
            elif _is_bad_leaf(child):
                _check_leaf(child, _Place(place, key).path())
        stack.extend(reversed(nested))


def _is_bad_leaf(item: Any) -> bool:
    if isinstance(item, str):
        return not _is_unicode(item)
    if isinstance(item, bool):
        return False
    if isinstance(item, int):
        return abs(item) > MAX_INT
    if isinstance(item, float):
        return not math.isfinite(item)  # 1e999 parses as inf
    return isinstance(item, _Refused)


def _check_leaf(item: Any, where: str) -> None:
    if not _is_bad_leaf(item):
        return
    if isinstance(item, _Refused):
        if item.key is not None:
            where = _child(where, item.key)
        raise RequestError(where, f"{where} {item.reason}")
    if isinstance(item, str):
        raise RequestError(where, f"{where} is not valid Unicode (a lone UTF-16 surrogate escape)")
    raise RequestError(where, f"{where} {OUT_OF_RANGE_FLOAT if isinstance(item, float) else OUT_OF_RANGE_INT}")


def loads(text: str) -> Any:
    """The decoded body, or RequestError: field `body` when it is not JSON at all, else the field at fault."""
    try:
        try:
            value = json.loads(text, parse_constant=_parse_constant, object_pairs_hook=_object)
        except json.JSONDecodeError:
            raise
        except ValueError:  # int() refused a literal of thousands of digits: parse again to say where it is
            value = json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant, object_pairs_hook=_object)
    except json.JSONDecodeError as err:
        raise RequestError("body", f"malformed JSON body: {err.msg} at line {err.lineno} column {err.colno}") \
            from None
    except RecursionError:
        raise RequestError("body", f"malformed JSON body: nested more than {MAX_DEPTH} levels deep") from None
    check_value(value)
    return value
