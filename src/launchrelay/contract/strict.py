"""Strict JSON (RFC 8259, I-JSON): the one reading of a document that every reader shares.

Python's ``json`` and pydantic's parser are both lenient where readers in other
languages are not: they accept ``NaN`` and ``Infinity``, keep the last of two
equal keys, and turn ``1e400`` into infinity. A document accepted that way can
mean one thing to the relay's rules and another to a counterpart's parser.
:func:`parse` refuses all of it, each with its own reason code:

- bytes that are not UTF-8;
- nesting deeper than :data:`MAX_DEPTH` (found by a parser that does not recurse past it);
- ``NaN``, ``Infinity``, ``-Infinity`` (not JSON at all);
- an object with the same key twice;
- a number outside the range of an IEEE-754 double;
- a string escape that encodes a lone UTF-16 surrogate (not a Unicode character).

The cost is linear in the size of the input and the depth is bounded, so no
document, however crafted, makes parsing recurse deeply or run long.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json

from launchrelay.reasons import ReasonCode

#: Deepest nesting of arrays and objects the parser accepts (pydantic-core's fixed limit; a test pins it).
#: The contract itself needs 5 levels; anything deeper than it allows fails the schema.
MAX_DEPTH = 200

_SURROGATE = re.compile("[\ud800-\udfff]")
#: A number that might not fit a double: 300 digits in a row, or an exponent of 100 or more. Only a text
#: with one is parsed with the (slower) per-number checks; below these bounds every number fits.
_MAYBE_HUGE = re.compile(r"[0-9]{300}|[eE]\+?0*[1-9][0-9]{2}")


@dataclass(frozen=True)
class JsonProblem:
    """Why a document is not strict JSON: a reason code and a sentence."""

    code: ReasonCode
    message: str


class _Refused(Exception):
    def __init__(self, problem: JsonProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _no_constants(name: str) -> Any:
    raise _Refused(JsonProblem(ReasonCode.JSON_NON_FINITE, f"{name} is not a JSON number"))


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(JsonProblem(ReasonCode.NUMBER_OUT_OF_RANGE, f"{text[:40]} is beyond the range of a double"))
    return value


def _finite_int(text: str) -> int:
    # float() of a digit string never raises; past ~309 digits it is inf (and int() would refuse past 4300)
    if len(text) > 300 and math.isinf(float(text)):
        raise _Refused(
            JsonProblem(ReasonCode.NUMBER_OUT_OF_RANGE, f"a {len(text)}-digit integer is beyond the range of a double")
        )
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(JsonProblem(ReasonCode.JSON_DUPLICATE_KEY, f"key {key[:60]!r} appears twice in one object"))
        out[key] = value
    return out


def _lone_surrogate(value: Any) -> bool:
    """True when any string (key or value) holds a surrogate code point; iterative, so depth costs no stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


#: A key's closing quote with whitespace before its colon (``"k" :``), counted beside the plain ``":``.
_SPACED_COLON = re.compile(r'"[ \t\n\r]+:')
#: Integers from here up are beyond a double (the first integer that rounds to infinity is about 1.8e308).
_HUGE_INT = 10**308


def _plain(value: Any, text: str) -> bool:
    """True when the quick reading of ``text`` is certainly its strict reading too (the common case).

    pydantic-core's parser already refused bad UTF-8, NaN, lone surrogates and deep nesting; what it
    accepts silently is a repeated key (the last wins) and a number beyond a double. A walk of the
    value finds the numbers; the keys are counted twice, in the value and in the text. In a text without
    an escaped quote every ``"`` delimits a string and every key ends ``":`` (or ``" :``), so the text's
    count is never below the number of keys written; it exceeds it only when a string starts with a
    colon. Equal counts therefore mean no object lost a key to a repeat. Any doubt returns False and
    the slower reading that names the problem decides."""
    if '\\"' in text:
        return False
    keys = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            keys += len(item)
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float:
            if item in (math.inf, -math.inf):
                return False
        elif kind is int and not -_HUGE_INT < item < _HUGE_INT:
            return False
    return keys == text.count('":') + len(_SPACED_COLON.findall(text))


def parse(raw: bytes) -> Any | JsonProblem:
    """The JSON value of ``raw``, or the problem that makes it not strict JSON (UTF-8 included)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return JsonProblem(ReasonCode.NOT_UTF8, f"invalid UTF-8 at byte {exc.start}")
    try:  # the quick reading: one pass in Rust, then a walk of the value
        # keys only: pydantic-core keeps the strings it caches for the process's lifetime, and every value
        # (message ids, launch keys) is new, so caching them only held memory per record
        value = from_json(raw, allow_inf_nan=False, cache_strings="keys")
    except ValueError:
        pass  # refused: the reading below says precisely why
    else:
        if _plain(value, text):
            return value
    return _careful(raw, text)


def _careful(raw: bytes, text: str) -> Any | JsonProblem:
    """The reading that names every problem: both parsers, the second with a hook per object and number."""
    if not text.strip():  # only reached when the quick reading failed: no cost to documents with content
        return JsonProblem(
            ReasonCode.NOT_JSON, "the document is empty" if not raw else "the document is only whitespace"
        )
    # First pydantic-core's parser: linear, in Rust, refuses NaN and Infinity and stops at MAX_DEPTH
    # levels without deep recursion. Only a document within that depth reaches Python's json below.
    try:
        from_json(raw, allow_inf_nan=False, cache_strings="keys")
        lenient_error = None
    except ValueError as exc:
        if "recursion limit" in str(exc):
            return JsonProblem(ReasonCode.JSON_TOO_DEEP, f"arrays and objects nest deeper than {MAX_DEPTH} levels")
        lenient_error = str(exc)
    # Then Python's json with hooks: names the problem precisely (duplicate key, NaN, a number
    # beyond a double), or finds the document is plain invalid.
    try:
        numbers = {"parse_float": _finite_float, "parse_int": _finite_int} if _MAYBE_HUGE.search(text) else {}
        value = json.loads(
            text,  # str, not bytes: json would guess UTF-16 or -32 from leading zero bytes
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constants,
            **numbers,  # type: ignore[arg-type]
        )
    except _Refused as exc:
        return exc.problem
    except RecursionError:
        return JsonProblem(ReasonCode.JSON_TOO_DEEP, f"arrays and objects nest deeper than {MAX_DEPTH} levels")
    except ValueError as exc:  # JSONDecodeError
        return JsonProblem(ReasonCode.NOT_JSON, f"not JSON: {exc}"[:300])
    # Only an escape can produce a surrogate from valid UTF-8, so most documents skip the walk.
    if b"\\u" in raw and _lone_surrogate(value):
        return JsonProblem(ReasonCode.JSON_BAD_STRING, "a \\u escape encodes a lone UTF-16 surrogate")
    if lenient_error is not None:  # one parser refused what the other took: not JSON for someone
        return JsonProblem(ReasonCode.NOT_JSON, f"not JSON: {lenient_error}"[:300])
    return value
