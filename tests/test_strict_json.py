"""Strict JSON: one reading of a document for every reader (RFC 8259, RFC 7493), cheap for any input."""

from __future__ import annotations

import pytest

from launchrelay.contract.strict import MAX_DEPTH, JsonProblem, parse
from launchrelay.reasons import ReasonCode as R


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe", R.NOT_UTF8),
        (b"", R.NOT_JSON),
        (b"{", R.NOT_JSON),
        (b"[1,]", R.NOT_JSON),
        (b"\xef\xbb\xbf{}", R.NOT_JSON),  # a byte-order mark is not JSON text (RFC 8259 sec. 8.1)
        (b'{"a": 1} {"b": 2}', R.NOT_JSON),
        (b"[NaN]", R.JSON_NON_FINITE),
        (b'{"x": Infinity}', R.JSON_NON_FINITE),
        (b'{"x": -Infinity}', R.JSON_NON_FINITE),
        (b'{"a": 1, "a": 1}', R.JSON_DUPLICATE_KEY),  # even with equal values
        (b'{"o": {"k": 1, "k": 2}}', R.JSON_DUPLICATE_KEY),
        (b"[1e400]", R.NUMBER_OUT_OF_RANGE),
        (b"[-1e400]", R.NUMBER_OUT_OF_RANGE),
        (b"[1" + b"0" * 400 + b"]", R.NUMBER_OUT_OF_RANGE),
        (b"[1" + b"0" * 5000 + b"]", R.NUMBER_OUT_OF_RANGE),  # past Python's int digit limit too
        (b'["\\ud800"]', R.JSON_BAD_STRING),
        (b'{"\\udfff": 1}', R.JSON_BAD_STRING),
        (b"[" * 1000 + b"]" * 1000, R.JSON_TOO_DEEP),
        (b"[" * 100_000, R.JSON_TOO_DEEP),
        (b'{"a":' * 300 + b"1" + b"}" * 300, R.JSON_TOO_DEEP),
    ],
)
def test_refused_with_its_code(raw: bytes, code: R) -> None:
    """Each way of not being strict JSON has its own reason code."""
    got = parse(raw)
    assert isinstance(got, JsonProblem), got
    assert got.code is code and got.message


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"a": 1, "b": [true, false, null]}', {"a": 1, "b": [True, False, None]}),
        (b"[1.7976931348623157e308]", [1.7976931348623157e308]),  # the largest double is fine
        (b"[1e-400]", [0.0]),  # underflow rounds to zero: every reader agrees
        (b'["\\ud83d\\ude00"]', ["\U0001f600"]),  # a surrogate *pair* is one character
        (b'  {"a": 1}\n', {"a": 1}),
        (b'{"a": {"a": 1}}', {"a": {"a": 1}}),  # the same key in different objects
    ],
)
def test_accepted(raw: bytes, value: object) -> None:
    assert parse(raw) == value


def test_depth_limit_is_exactly_max_depth() -> None:
    """Nesting of MAX_DEPTH levels parses; one more is JSON_TOO_DEEP (pins the parser's fixed limit)."""
    assert parse(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    assert not isinstance(parse(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH), JsonProblem)
    deeper = parse(b"[" * (MAX_DEPTH + 2) + b"]" * (MAX_DEPTH + 2))
    assert isinstance(deeper, JsonProblem) and deeper.code is R.JSON_TOO_DEEP


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 1_000_000,
        b'"' + b'\\"' * 500_000,
        b"[" + b"1," * 500_000 + b"1e400]",
        b'{"a": "' + b"x" * 1_000_000 + b'", "a": 1}',
    ],
    ids=["brackets", "escaped quotes", "many numbers", "long string"],
)
def test_megabyte_of_hostile_text_is_refused(raw: bytes) -> None:
    """A megabyte of hostile text is refused, not crashed on (its cost is measured by `make bench`)."""
    assert isinstance(parse(raw), JsonProblem)
