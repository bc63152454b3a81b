"""The expectation language: parsing, units, versions, messages. Parsed, never eval'd."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envprobe import expect as e

CASES = [
    # spec, unit, observed, ok
    (">= 8", None, 8, True),
    (">= 8", None, 7.99, False),
    ("< 80", "%", 79.9, True),
    ("< 80", "%", 80, False),
    ("== linux", None, "linux", True),
    ("== linux", None, "windows", False),
    ("!= 0", None, 1, True),
    ("!= 0", None, 0, False),
    (">= 16 GB", "gb", 15.6, False),
    (">= 16 GB", "gb", 16.0, True),
    (">= 512 MB", "gb", 0.5, True),
    (">= 512 MB", "gb", 0.49, False),
    ("< 200 ms", "ms", 150, True),
    ("< 0.2 s", "ms", 250, False),
    ("< 1.5s", "ms", 1499, True),
    (">= 15.0", None, "15.0.4153", True),
    (">= 15.1", None, "15.0.4153", False),
    ("< 16", None, "15.0.4153", True),
    (">= 10.6", None, "10.11.6-MariaDB", True),  # 11 > 6 numerically, not as text
    (">= 10.6", None, "10.5.23-MariaDB", False),
    ("== 15", None, "15.2.1", True),
    ("== 15", None, "16.0", False),
    ("!= 15", None, "16.0", True),
    ("~ ^Debian", None, "Debian GNU/Linux 12", True),
    ("~ ^Debian", None, "Ubuntu 22.04", False),
    ("!~ (?i)error", None, "all fine", True),
    ("!~ (?i)error", None, "ERROR: disk", False),
    ("in [linux, darwin]", None, "darwin", True),
    ("in [linux, darwin]", None, "windows", False),
    ("in [22, 2222]", None, 2222, True),
    ("in [22, 2222]", None, 23, False),
    ("contains ok", None, "all ok here", True),
    ("contains ok", None, "nope", False),
    ("contains 22", None, ["22", "80"], True),
    ("contains 8080", None, ["22", "80"], False),
    ("open", None, "open", True),
    ("open", None, "filtered", False),
    (True, None, True, True),
    (True, None, False, False),
    (False, None, 0, False),  # a number is not a boolean
    (0, None, 0, True),
    (0, None, 1, False),
    ("true", None, True, True),
    (["> 1", "< 5"], None, 3, True),
    (["> 1", "< 5"], None, 5, False),
    (">= 4", None, None, False),  # nothing observed never passes a comparison
    ("== true", None, True, True),
    ("== true", None, False, False),
    (">= 100000", None, math.inf, True),  # unlimited
]


@pytest.mark.parametrize(("spec", "unit", "observed", "ok"), CASES)
def test_expectations(spec, unit, observed, ok):
    assert e.parse(spec, unit).check(observed).ok is ok


BAD = [
    (">=", "needs a value"),
    ("~", "regular expression"),
    ("~ ([a-", "invalid regular expression"),
    ("in [", "non-empty list"),
    ("in []", "non-empty list"),
    ("contains", "needs a value"),
    ({"a": 1}, "mapping is not an expectation"),
    ([], "empty list"),
    ("", "empty expectation"),
]


@pytest.mark.parametrize(("spec", "fragment"), BAD)
def test_syntax_errors_say_what_is_allowed(spec, fragment):
    with pytest.raises(e.ExpectSyntaxError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        e.parse(spec)


def test_units_must_match_the_field():
    with pytest.raises(e.ExpectSyntaxError, match="is a time"):
        e.parse(">= 16 ms", "gb")
    with pytest.raises(e.ExpectSyntaxError, match="has none"):
        e.parse(">= 16 GB", None)


def test_ordering_text_is_a_clear_problem_not_a_crash():
    out = e.parse(">= 8").check("abc")
    assert out.ok is False and out.problem and "abc" in out.problem["en"]


def test_failure_message_is_bilingual_with_expected_and_observed():
    exp = e.parse(">= 16", "gb")
    msg = e.failure_message("total_gb", exp, 15.6, "gb", None)
    assert msg["en"] == "total_gb is 15.6 GB, expected >= 16"
    assert msg["zh-CN"] == "total_gb 当前值 15.6 GB，期望 >= 16"


def test_unit_for_field():
    assert e.unit_for_field("total_gb") == "gb"
    assert e.unit_for_field("connect_ms") == "ms"
    assert e.unit_for_field("used_percent") == "%"
    assert e.unit_for_field("count") is None


def test_never_evaluates_code():
    # Text that would do something if eval'd is only ever text here.
    exp = e.parse("== __import__('os').system('false')")
    assert exp.check("x").ok is False
    assert exp.check("__import__('os').system('false')").ok is True


observed_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30),
    st.lists(st.text(max_size=5), max_size=3),
)


@settings(max_examples=600, deadline=None)
@given(spec=st.text(max_size=40), observed=observed_values, unit=st.sampled_from([None, "gb", "ms", "%"]))
def test_fuzz_parse_and_check_only_clean_errors(spec, observed, unit):
    try:
        exp = e.parse(spec, unit)
    except e.ExpectSyntaxError:
        return
    out = exp.check(observed)
    assert isinstance(out.ok, bool)
    e.failure_message("f", exp, observed, unit, out.problem)
