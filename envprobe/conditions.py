"""What a check may say about *other* facts: ``when:`` conditions, expectations derived from the host's facts,
fleet consistency and the names they refer to.

**Fact references.** ``memory.total_gb`` names the field ``total_gb`` of the ``memory`` probe observed on the
same host. Any probe whose parameters all have defaults (``os``, ``cpu``, ``memory``, ``time``, ``locale`` …)
can be referred to this way; its facts are collected once per host and scan (they ride in the host's single
batch over SSH) and shared by every check that refers to them. A variable of the same name wins over a probe.

**``when:``** is a condition, or a list of conditions that must all hold: ``REFERENCE [EXPECTATION]``, where the
reference is a fact (``os.family``), a variable (``deploy_mode`` or ``vars.deploy_mode``, dotted into
mappings) and the expectation is anything the ``expect:`` language accepts (``== linux``, ``> 32 GB``,
``~ ^(el|rocky)``, ``in [a, b]``). Without an expectation the value must be truthy. A false condition skips
the check, with the condition and the value that made it false in the message.

**Derived expectations.** An expectation written as a template that refers to facts (``">= {{ memory.total_gb
}}"``) is rendered on the host, after those facts are known, then parsed like any other.

**Consistency.** ``consistent: [timezone, {offset_ms: "<= 500"}]``: every host the check ran on must report the
same value of ``timezone``, and the spread (max − min) of ``offset_ms`` across hosts must meet ``<= 500``. The
verdict is one extra result per check, on the pseudo-host ``*``, naming the odd host out.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from envprobe import expect as expectmod
from envprobe.model import Text, t
from envprobe.record import record

#: The pseudo-host of fleet-wide results (consistency).
FLEET = "*"

_REF = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\s*(.*?)\s*$", re.S)
#: ``name.field`` inside a template expression (not preceded by a dot or a word character)
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\.([A-Za-z_]\w*)")
_EXPR = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)


@record(frozen=True)
class FactRef:
    """``memory.total_gb``: the ``total_gb`` fact of the ``memory`` probe on the same host."""

    probe: str
    field: str


@record
class Condition:
    text: str
    #: a fact reference, or None for a variable (its value is then ``value``)
    fact: FactRef | None
    path: list[str]
    value: Any
    expectation: expectmod.Expectation | None
    unit: str | None = None


@record
class Deferred:
    """An expectation template that refers to facts: rendered on the host at run time."""

    field: str
    template: Any
    unit: str | None
    refs: list[FactRef]


@record
class ConsistencyRule:
    field: str
    #: None: every host must report the same value; else the spread (max − min) must meet this
    spread: expectmod.Expectation | None
    unit: str | None = None


def template_refs(text: str) -> list[tuple[str, str]]:
    """``(name, attribute)`` pairs used in a template's expressions (``{{ memory.total_gb * 0.5 }}``)."""
    out: list[tuple[str, str]] = []
    for m in _EXPR.finditer(text):
        body = m.group(1) or m.group(2) or ""
        body = re.sub(r"'[^']*'|\"[^\"]*\"", "", body)  # not inside string literals
        out += _DOTTED.findall(body)
    return list(dict.fromkeys(out))


def split_condition(text: str) -> tuple[list[str], str] | None:
    """``"memory.total_gb > 32"`` → (["memory", "total_gb"], "> 32"); None when it does not start with a name."""
    m = _REF.match(text)
    if not m:
        return None
    return m.group(1).split("."), m.group(2)


def dig(value: Any, path: list[str]) -> tuple[bool, Any]:
    """Follow ``path`` into nested mappings (and list indexes). (found, value)."""
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return False, None
    return True, value


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off", "none", "null")
    return bool(value)


def check_condition(cond: Condition, value: Any) -> tuple[bool, Text | None]:
    """Whether the condition holds for ``value``; when it does not, why (bilingual)."""
    shown = expectmod.display_value(value, cond.unit)
    ok = truthy(value) if cond.expectation is None else cond.expectation.check(value).ok
    if ok:
        return True, None
    ref = ".".join(cond.path)
    return False, t(f"skipped: condition `{cond.text}` is false ({ref} is {shown})",
                    f"已跳过：条件 `{cond.text}` 不成立（{ref} 为 {shown}）")


def consistency(rule: ConsistencyRule, values: dict[str, Any]) -> tuple[bool, Text, dict[str, Any]]:
    """Judge one field across hosts: (ok, message, detail). ``values`` maps host → observed value."""
    field = rule.field
    if rule.spread is None:
        counts = Counter(expectmod.display_value(v, rule.unit) for v in values.values())
        common, n = counts.most_common(1)[0]
        if len(counts) == 1:
            return True, t(f"{field} is {common} on all {len(values)} hosts",
                           f"{field} 在全部 {len(values)} 台主机上均为 {common}"), \
                {"field": field, "expected": "same on every host", "observed": common, "ok": True}
        odd = {h: expectmod.display_value(v, rule.unit) for h, v in values.items()
               if expectmod.display_value(v, rule.unit) != common}
        if n * 2 <= len(values):  # no majority: show every value
            odd = {h: expectmod.display_value(v, rule.unit) for h, v in values.items()}
            listing = ", ".join(f"{h}: {v}" for h, v in sorted(odd.items()))
            return False, t(f"{field} differs across hosts ({listing})", f"{field} 在各主机间不一致（{listing}）"), \
                {"field": field, "expected": "same on every host", "observed": listing, "ok": False}
        listing = ", ".join(f"{h} has {v}" for h, v in sorted(odd.items()))
        listing_zh = "，".join(f"{h} 为 {v}" for h, v in sorted(odd.items()))
        return False, t(f"{field}: {n} of {len(values)} hosts have {common}; {listing}",
                        f"{field}：{len(values)} 台主机中 {n} 台为 {common}；{listing_zh}"), \
            {"field": field, "expected": "same on every host", "observed": listing, "ok": False}
    numbers = {h: float(v) for h, v in values.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(float(v))}
    if len(numbers) < len(values):
        bad = ", ".join(sorted(set(values) - set(numbers)))
        return False, t(f"{field} is not a number on {bad}: the spread across hosts cannot be computed",
                        f"{field} 在 {bad} 上不是数值，无法计算主机间差值"), \
            {"field": field, "expected": f"spread {rule.spread.display()}", "observed": "n/a", "ok": False}
    lo_host = min(numbers, key=lambda h: numbers[h])
    hi_host = max(numbers, key=lambda h: numbers[h])
    spread = numbers[hi_host] - numbers[lo_host]
    ok = rule.spread.check(spread).ok
    shown = expectmod.display_value(spread, rule.unit)
    lo = expectmod.display_value(numbers[lo_host], rule.unit)
    hi = expectmod.display_value(numbers[hi_host], rule.unit)
    detail = {"field": field, "expected": f"spread {rule.spread.display()}", "observed": shown, "ok": ok}
    if ok:
        return True, t(f"{field} spread across {len(values)} hosts is {shown}",
                       f"{field} 在 {len(values)} 台主机间的差值为 {shown}"), detail
    return False, t(f"{field} spread across hosts is {shown}, expected {rule.spread.display()}: lowest {lo_host} "
                    f"({lo}), highest {hi_host} ({hi})",
                    f"{field} 主机间差值为 {shown}，期望 {rule.spread.display()}：最低 {lo_host}（{lo}），"
                    f"最高 {hi_host}（{hi}）"), detail
