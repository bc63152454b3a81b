"""The expectation language. Parsed into small objects, never eval'd.

Forms (a value under ``expect: {field: ...}``):

* ``>= 8``, ``< 80``, ``== linux``, ``!= 0`` — comparisons; numbers may carry units (``>= 16 GB``,
  ``< 200 ms``), converted to the field's unit (``_gb`` GiB, ``_mb`` MiB, ``_ms`` ms, ``_percent`` %).
* version-aware: when the observed value is a version string, ``>= 15.0`` compares component by component
  (``15.0.4153`` ≥ ``15.0``); ``== 15`` matches any ``15.x`` (compares as many components as written).
* ``~ REGEX`` (search) and ``!~ REGEX`` (must not match); ``in [a, b]``; ``contains X``.
* a YAML list: all must hold; ``{any_of: [...]}``: one must hold (``{all_of: [...]}`` spells out a list).
* ``unlimited`` (also ``infinity``) is a number larger than any other: ``nofile: ">= 65536"`` passes for
  an unlimited value, and ``== unlimited`` asks for exactly that.
* a bare scalar: equality.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from typing import Any

import yaml

from envprobe.model import Text, t
from envprobe.record import record


class SourceFloat(float):
    """A YAML float that remembers how it was written: ``version: 2.10`` must not compare as ``2.1``."""

    source: str


def _yaml_float(loader: Any, node: Any) -> float:
    value = SourceFloat(loader.construct_yaml_float(node))
    value.source = str(node.value)
    return value


class YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (the C one when present) whose floats keep their source text."""


YamlLoader.add_constructor("tag:yaml.org,2002:float", _yaml_float)


def source_text(value: Any) -> str:
    """A scalar as the user wrote it (``2.10``), else as displayed."""
    return getattr(value, "source", None) or _fmt(value)


class ExpectSyntaxError(ValueError):
    """An expectation that cannot be parsed. The message says what is allowed."""


# -- units -----------------------------------------------------------------------------------------------
# unit name -> (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    "b": ("size", 1.0),
    "kb": ("size", 2.0**10), "kib": ("size", 2.0**10), "k": ("size", 2.0**10),
    "mb": ("size", 2.0**20), "mib": ("size", 2.0**20), "m": ("size", 2.0**20),
    "gb": ("size", 2.0**30), "gib": ("size", 2.0**30), "g": ("size", 2.0**30),
    "tb": ("size", 2.0**40), "tib": ("size", 2.0**40), "t": ("size", 2.0**40),
    "us": ("time", 1e-3), "ms": ("time", 1.0), "s": ("time", 1000.0), "sec": ("time", 1000.0),
    "min": ("time", 60_000.0), "h": ("time", 3_600_000.0),
    "%": ("percent", 1.0), "percent": ("percent", 1.0),
    "mbps": ("rate", 1.0), "gbps": ("rate", 1000.0),
}

_SUFFIX_UNITS = {
    "_gb": "gb", "_mb": "mb", "_kb": "kb", "_bytes": "b", "_ms": "ms", "_s": "s", "_seconds": "s",
    "_percent": "%", "_mbps": "mbps",
}


def unit_for_field(field: str) -> str | None:
    """The unit a field's name implies (``total_gb`` → ``gb``), or None."""
    for suffix, unit in _SUFFIX_UNITS.items():
        if field.endswith(suffix):
            return unit
    return None


_NUM_UNIT = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z%]+)?\s*$")
_VERSION = re.compile(r"^\s*[vV]?(\d+(?:\.\d+)+|\d+)(?=$|[-_+~ a-zA-Z(])")


_UNLIMITED = {"unlimited", "infinity", "inf"}


def _to_number(text: str, unit: str | None, where: str) -> float | None:
    """Parse ``16``, ``16 GB``, ``1.5s`` into the field's unit; ``unlimited`` is +∞ (ulimit, limits.conf).
    None when ``text`` is not a number."""
    if text.strip().lower() in _UNLIMITED:
        return math.inf
    m = _NUM_UNIT.match(text)
    if not m:
        return None
    value = float(m.group(1))
    given = (m.group(2) or "").lower()
    if not given:
        return value
    if given not in _UNITS:
        return None  # "15.0.4153" never gets here; "3 apples" is text
    if unit is None:
        raise ExpectSyntaxError(
            f"{where}: the value carries a unit ({m.group(2)}) but this field has none; write a plain number"
        )
    gdim, gfac = _UNITS[given]
    fdim, ffac = _UNITS[unit]
    if gdim != fdim:
        raise ExpectSyntaxError(f"{where}: unit {m.group(2)} is a {gdim}, but this field is a {fdim} (in {unit})")
    return value * gfac / ffac


def parse_version(text: str) -> tuple[int, ...] | None:
    """``15.0.4153`` → (15, 0, 4153); ``10.11.6-MariaDB`` → (10, 11, 6); text that is not a version → None."""
    m = _VERSION.match(text)
    if not m:
        return None
    return tuple(int(p) for p in m.group(1).split("."))


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value):
            return "unlimited"
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# -- expectation objects ------------------------------------------------------------------------------------
@record
class Outcome:
    ok: bool
    #: Why the comparison could not be made at all (type mismatch), when that is the reason it failed.
    problem: Text | None = None


class Expectation(ABC):
    text: str = ""

    @abstractmethod
    def check(self, observed: Any) -> Outcome:
        """Whether ``observed`` meets this expectation."""

    def display(self) -> str:
        return self.text


def _null_outcome() -> Outcome:
    return Outcome(False, t("nothing was observed", "未采集到值"))


_OPS = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


@record
class Compare(Expectation):
    op: str
    raw: str
    number: float | None
    version: tuple[int, ...] | None
    text: str

    def check(self, observed: Any) -> Outcome:
        if observed is None:
            return _null_outcome()
        if isinstance(observed, bool):
            want = self.raw.strip().lower()
            if want in ("true", "false") and self.op in ("==", "!="):
                return Outcome(_OPS[self.op](observed, want == "true"))
            return Outcome(False, t(f"observed a yes/no value, cannot compare with {self.text}",
                                    f"采集值为是/否，无法与 {self.text} 比较"))
        if _is_number(observed):
            if self.number is None:
                if self.op in ("==", "!="):
                    return Outcome(_OPS[self.op](str(observed), self.raw))
                return Outcome(False, t(f"expected value {self.raw!r} is not a number",
                                        f"期望值 {self.raw!r} 不是数字"))
            return Outcome(_OPS[self.op](float(observed), self.number))
        if isinstance(observed, str):
            own = _own_compare(observed, self.op, self.raw)
            if own is not None:
                return Outcome(own)
            ov = parse_version(observed)
            if self.version is not None and ov is not None:
                wv = self.version
                if self.op in ("==", "!="):
                    head = ov[: len(wv)] + (0,) * max(0, len(wv) - len(ov))
                    return Outcome(_OPS[self.op](head, wv))
                width = max(len(ov), len(wv))
                return Outcome(_OPS[self.op](ov + (0,) * (width - len(ov)), wv + (0,) * (width - len(wv))))
            if self.op in ("==", "!="):
                return Outcome(_OPS[self.op](observed, self.raw))
            num = _maybe_float(observed)
            if num is not None and self.number is not None:
                return Outcome(_OPS[self.op](num, self.number))
            return Outcome(False, t(f"observed text {observed!r} cannot be ordered against {self.raw!r}",
                                    f"采集到的文本 {observed!r} 无法与 {self.raw!r} 比较大小"))
        if isinstance(observed, (list, dict)) and self.op in ("==", "!="):
            return Outcome(_OPS[self.op](_fmt(observed), self.raw))
        return Outcome(False, t(f"cannot compare {type(observed).__name__} with {self.text}",
                                f"无法将 {type(observed).__name__} 类型与 {self.text} 比较"))


def _own_compare(observed: str, op: str, wanted: str) -> bool | None:
    """Observed text values that know how they compare carry ``compare_with(op, raw) -> bool | None``: a
    package version ordered the way dpkg or rpm orders it, a multi-value kernel setting compared field by field.
    ``op`` is one of ``>= <= > < == !=``; None means "not comparable that way", and the generic rules apply."""
    own = getattr(observed, "compare_with", None)
    return own(op, wanted) if callable(own) else None


def _maybe_float(s: str) -> float | None:
    if s.strip().lower() in _UNLIMITED:
        return math.inf
    try:
        return float(s)
    except ValueError:
        return None


@record
class Equals(Expectation):
    value: Any
    number: float | None
    text: str

    def check(self, observed: Any) -> Outcome:
        if observed is None:
            return Outcome(self.value is None) if self.value is None else _null_outcome()
        if isinstance(observed, bool) or isinstance(self.value, bool):
            if isinstance(self.value, str):
                return Outcome(_fmt(observed) == self.value.strip().lower())
            return Outcome(observed is self.value or observed == self.value and type(observed) is type(self.value))
        if _is_number(observed) and self.number is not None:
            return Outcome(float(observed) == self.number)
        if isinstance(observed, str) and _is_number(self.value):
            own = _own_compare(observed, "==", source_text(self.value))
            if own is not None:
                return Outcome(own)
        if isinstance(observed, str) and isinstance(self.value, str):
            own = _own_compare(observed, "==", self.value)
            if own is not None:
                return Outcome(own)
            ov, wv = parse_version(observed), parse_version(self.value)
            if observed != self.value and ov is not None and wv is not None and _looks_dotted(self.value):
                return Outcome(ov[: len(wv)] == wv)
            return Outcome(observed == self.value)
        return Outcome(_fmt(observed) == _fmt(self.value))


def _looks_dotted(s: str) -> bool:
    return bool(re.fullmatch(r"\s*[vV]?\d+(\.\d+)+\s*", s))


@record
class Regex(Expectation):
    pattern: re.Pattern[str]
    negate: bool
    text: str

    def check(self, observed: Any) -> Outcome:
        if observed is None:
            return _null_outcome()
        hit = self.pattern.search(_fmt(observed)) is not None
        return Outcome(hit != self.negate)


@record
class Member(Expectation):
    items: list[Expectation]
    text: str

    def check(self, observed: Any) -> Outcome:
        if observed is None:
            return _null_outcome()
        return Outcome(any(i.check(observed).ok for i in self.items))


@record
class Contains(Expectation):
    needle: str
    text: str

    def check(self, observed: Any) -> Outcome:
        if observed is None:
            return _null_outcome()
        if isinstance(observed, str):
            return Outcome(self.needle in observed)
        if isinstance(observed, dict):
            return Outcome(self.needle in observed)
        if isinstance(observed, (list, tuple)):
            return Outcome(any(_fmt(x) == self.needle for x in observed))
        return Outcome(self.needle in _fmt(observed))


@record
class AllOf(Expectation):
    parts: list[Expectation]
    text: str

    def check(self, observed: Any) -> Outcome:
        for p in self.parts:
            out = p.check(observed)
            if not out.ok:
                return out
        return Outcome(True)


@record
class AnyOf(Expectation):
    """Alternatives: one must hold (``{any_of: ["~ ^11\\.", ">= 17"]}``)."""

    parts: list[Expectation]
    text: str

    def check(self, observed: Any) -> Outcome:
        first: Outcome | None = None
        for p in self.parts:
            out = p.check(observed)
            if out.ok:
                return out
            first = first or out
        return first if first is not None and first.problem is not None else Outcome(False)


_CMP = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(.*?)\s*$", re.S)


def parse(spec: Any, unit: str | None = None, where: str = "expectation") -> Expectation:
    """Parse one expectation. ``unit`` is the observed field's unit (``gb``, ``ms`` ...), if any."""
    if isinstance(spec, list):
        if not spec:
            raise ExpectSyntaxError(f"{where}: an empty list expects nothing; remove it or add conditions")
        parts = [parse(s, unit, where) for s in spec]
        return AllOf(parts=parts, text=" and ".join(p.display() for p in parts))
    if isinstance(spec, dict):
        if len(spec) == 1 and next(iter(spec)) in ("any_of", "all_of"):
            key, alts = next(iter(spec.items()))
            if not isinstance(alts, list) or not alts:
                raise ExpectSyntaxError(f"{where}: '{key}' needs a non-empty list of expectations")
            parts = [parse(a, unit, where) for a in alts]
            if key == "all_of":
                return AllOf(parts=parts, text=" and ".join(p.display() for p in parts))
            return AnyOf(parts=parts, text=" or ".join(f"({p.display()})" if " and " in p.display() else p.display()
                                                       for p in parts))
        raise ExpectSyntaxError(
            f"{where}: a mapping is not an expectation; write a comparison such as '>= 8', "
            "'~ REGEX', 'in [a, b]', 'contains X', a list of those, {any_of: [...]} / {all_of: [...]}, "
            "or a plain value"
        )
    if spec is None or isinstance(spec, (bool, int, float)):
        number = float(spec) if isinstance(spec, (int, float)) and not isinstance(spec, bool) else None
        return Equals(value=spec, number=number, text=source_text(spec))
    if not isinstance(spec, str):
        raise ExpectSyntaxError(f"{where}: unsupported value of type {type(spec).__name__}")
    s = spec.strip()
    if not s:
        raise ExpectSyntaxError(f"{where}: empty expectation")
    if s.startswith("!~") or s.startswith("~"):
        negate = s.startswith("!~")
        pat = s[2:].strip() if negate else s[1:].strip()
        if not pat:
            raise ExpectSyntaxError(f"{where}: '~' needs a regular expression after it")
        try:
            rx = re.compile(pat)
        except re.error as exc:
            raise ExpectSyntaxError(f"{where}: invalid regular expression {pat!r}: {exc}") from None
        return Regex(pattern=rx, negate=negate, text=s)
    m = _CMP.match(s)
    if m:
        op, raw = m.group(1), m.group(2)
        if not raw:
            raise ExpectSyntaxError(f"{where}: '{op}' needs a value after it, e.g. '{op} 8'")
        raw = _unquote(raw)
        number = _to_number(raw, unit, where)
        version = parse_version(raw)
        return Compare(op=op, raw=raw, number=number, version=version, text=s)
    low = s.lower()
    if low.startswith("in ") or low.startswith("in["):
        body = s[2:].strip()
        try:
            items = yaml.load(body, Loader=YamlLoader)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            items = None
        if not isinstance(items, list) or not items:
            raise ExpectSyntaxError(f"{where}: 'in' needs a non-empty list, e.g. 'in [a, b]'")
        parts = [parse(i, unit, where) for i in items]
        return Member(items=parts, text=s)
    if low.startswith("contains ") or low == "contains":
        needle = _unquote(s[len("contains"):].strip())
        if not needle:
            raise ExpectSyntaxError(f"{where}: 'contains' needs a value after it")
        return Contains(needle=needle, text=s)
    number = _to_number(s, unit, where)
    return Equals(value=s, number=number, text=s)


def _unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


def failure_message(field: str, exp: Expectation, observed: Any, unit: str | None, problem: Text | None) -> Text:
    """"total_gb is 15.6, expected >= 16" in both languages."""
    shown = display_value(observed, unit)
    if len(shown) > 120:
        shown = shown[:119] + "…"
    msg = t(f"{field} is {shown}, expected {exp.display()}", f"{field} 当前值 {shown}，期望 {exp.display()}")
    if problem:
        msg = {k: f"{v} ({problem[k]})" if k == "en" else f"{v}（{problem[k]}）" for k, v in msg.items()}
    return msg


def _unit_label(unit: str) -> str:
    return {"gb": "GB", "mb": "MB", "kb": "KB", "b": "B", "ms": "ms", "s": "s", "%": "%", "mbps": "Mbps"}.get(
        unit, unit
    )


def display_value(observed: Any, unit: str | None) -> str:
    shown = _fmt(observed)
    if unit and _is_number(observed):
        return f"{shown} {_unit_label(unit)}"
    return shown
