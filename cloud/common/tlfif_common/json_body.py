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


def _parse_int(text: str) -> Any:
    if len(text.lstrip("-")) > MAX_INT_DIGITS or abs(int(text)) > MAX_INT:
        return _Refused("is an integer out of range (beyond ±2^63)")
    return int(text)


def _parse_float(text: str) -> Any:
    value = float(text)
    if not math.isfinite(value):
        return _Refused("is a number out of range")
    return value


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
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_value(value: Any, path: str = "body") -> None:
    """RequestError naming the first place in a decoded body that holds a refused value, bad text or deep nesting.

    Iterative: it must not itself be the recursion a deep body exhausts.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, _Refused):
            if item.key is not None:
                where = _child(where, item.key)
            raise RequestError(where, f"{where} {item.reason}")
        if isinstance(item, str):
            if not _is_unicode(item):
                raise RequestError(where, f"{where} is not valid Unicode (a lone UTF-16 surrogate escape)")
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise RequestError(where, f"{where} is nested more than {MAX_DEPTH} levels deep")
            if isinstance(item, dict):
                children = list(item.items())
                for key, _ in children:
                    if not _is_unicode(key):
                        raise RequestError(where, f"a key in {where} is not valid Unicode "
                                                  f"(a lone UTF-16 surrogate escape)")
            else:
                children = list(enumerate(item))
            stack.extend((child, _child(where, key), depth + 1) for key, child in reversed(children))


def loads(text: str) -> Any:
    """The decoded body, or RequestError: field `body` when it is not JSON at all, else the field at fault."""
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant,
                           object_pairs_hook=_object)
    except json.JSONDecodeError as err:
        raise RequestError("body", f"malformed JSON body: {err.msg} at line {err.lineno} column {err.colno}") \
            from None
    except RecursionError:
        raise RequestError("body", f"malformed JSON body: nested more than {MAX_DEPTH} levels deep") from None
    check_value(value)
    return value
