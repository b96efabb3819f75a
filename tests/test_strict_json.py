"""Strict JSON: one reading of a document for every reader (RFC 8259, RFC 7493), cheap for any input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launchrelay.contract.strict import MAX_DEPTH, JsonProblem, _careful, parse
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


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":":","a":1}',  # a string that starts with a colon, beside a repeated key
        b'{"a" :1,"a":2}',  # whitespace before one colon
        b'{"a"\n:1,\t"a"\r:2}',
        b'{"a\\"":1,"a\\"":2}',  # escaped quotes in the repeated key
        b'{"k":"\\":","k":1}',  # an escaped quote and a colon inside a value
        b'[{"x":1},{"y":{"z":1,"z":1}}]',
    ],
)
def test_repeated_keys_are_found_whatever_the_spacing_and_escapes(raw: bytes) -> None:
    """The quick reading's key count cannot be fooled by spacing, escapes or colons inside strings."""
    got = parse(raw)
    assert isinstance(got, JsonProblem) and got.code is R.JSON_DUPLICATE_KEY, got


_KEYS = st.text(alphabet=st.sampled_from(["a", "b", ":", '"', "\\", " ", "é", "\U0001f600", "\ud800"]), max_size=3)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _KEYS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


def _reading(got: object) -> object:
    return ("problem", got.code) if isinstance(got, JsonProblem) else ("value", got)


def _agree(raw: bytes) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        assert _reading(parse(raw)) == ("problem", R.NOT_UTF8)
        return
    assert _reading(parse(raw)) == _reading(_careful(raw, text))


@settings(max_examples=400, deadline=None)
@given(value=_VALUES, spacing=st.sampled_from([(",", ":"), (", ", ": "), (",", " : "), (" ,\n", "\t:\r")]),
       repeat=st.booleans(), ascii_only=st.booleans())  # fmt: skip
def test_quick_reading_agrees_with_the_careful_one(
    value: object, spacing: tuple[str, str], repeat: bool, ascii_only: bool
) -> None:
    """On any document, repeated keys included, the quick path reads exactly what the careful one reads."""
    text = json.dumps(value, separators=spacing, ensure_ascii=ascii_only)
    if repeat and text.startswith("{") and text != "{}":  # write the first member twice
        first = json.dumps(next(iter(value.items())), separators=spacing, ensure_ascii=ascii_only)  # type: ignore[union-attr]
        key_json, _, rest = first[1:-1].partition(spacing[0])
        text = "{" + key_json + spacing[1] + rest + spacing[0] + text[1:]
    _agree(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(max_size=64) | st.text(alphabet='{}[]":,0123456789e.-\\ ua', max_size=40).map(str.encode))
def test_quick_reading_agrees_on_any_bytes(raw: bytes) -> None:
    """Arbitrary bytes: the quick path never accepts what the careful reading refuses, nor reads it differently."""
    _agree(raw)


@pytest.mark.parametrize(("raw", "says"), [(b"", "the document is empty"), (b" \n\t", "only whitespace")])
def test_an_empty_document_is_said_to_be_empty(raw: bytes, says: str) -> None:
    """Not "Expecting value: line 1 column 1": what an operator reads must say the file or record was empty."""
    found = parse(raw)
    assert isinstance(found, JsonProblem) and found.code is R.NOT_JSON and says in found.message
