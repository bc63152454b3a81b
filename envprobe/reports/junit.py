"""JUnit XML, for CI servers (Jenkins, GitLab, Azure DevOps) that chart readiness runs as test runs.

Mapping (one ``<testsuite>`` per host, one ``<testcase>`` per result):

* ``testsuite``: ``name`` = host, ``hostname`` = its address; ``timestamp`` = the earliest result start (UTC);
  ``time`` = the sum of its results' durations in seconds; ``<properties>`` carry the address and the host
  line ("银河麒麟 V10 · 鲲鹏920 · aarch64 · 16 核 · 31.3 GB").
* ``testcase``: ``classname`` = the probe (the host when a result names no probe), ``name`` =
  "check-id: title", ``time`` = duration in seconds.
* ``fail`` → ``<failure message="...">`` whose text lists expected against observed, field by field, and the
  recommended action; ``error`` → ``<error>``; ``skip`` → ``<skipped message="...">``.
* ``warn`` → a **passing** testcase with the warning in ``<system-out>``. A warning comes from a
  ``recommended`` check and does not block a deployment (the verdict is "ready with warnings", exit code 0),
  so a CI job should stay green; JUnit has no "passed with warning" state, and ``<system-out>`` is shown by
  every consumer we know of without turning the build red or yellow.

Terminal colour codes in command output are removed; other characters XML 1.0 cannot carry (control
characters, lone surrogates) are written as ``\\xNN`` / ``\\uNNNN``, so the file always parses.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from envprobe.model import pick
from envprobe.reports.i18n import (
    clean,
    fmt_value,
    host_facts,
    host_label,
    host_line,
    host_names,
    norm_lang,
    run_span_ms,
    tr,
)

#: Observed values longer than this are cut in the XML (the JSON result keeps them whole).
MAX_VALUE = 4000
_BAD_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: Any) -> str:
    s = "" if text is None else str(text)
    return _BAD_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else
                        f"\\u{ord(m.group()):04x}", s)


def _secs(ms: Any) -> str:
    try:
        return f"{float(ms) / 1000:.3f}"
    except (TypeError, ValueError):
        return "0.000"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _body(r: dict[str, Any], lang: str) -> str:
    """The text inside <failure>/<error>/<system-out>: message, expected vs observed, advice."""
    lines = [pick(r.get("message"), lang)]
    severity = r.get("severity")
    if severity:
        lines.append(f"{tr('col.severity', lang)}: {tr('severity.' + str(severity), lang)}")
    if r.get("from"):
        lines.append(f"{tr('col.from', lang)}: {r['from']}")
    details = r.get("details") or []
    observed = r.get("observed") or {}
    cur, exp = tr("col.current", lang), tr("col.expected", lang)
    shown: set[str] = set()
    if details:
        for d in details:
            mark = tr("report.ok", lang) if d.get("ok") else tr("report.not_ok", lang)
            lines.append(f"{d.get('field')}: {cur} {fmt_value(d.get('observed'))}, "
                         f"{exp} {fmt_value(d.get('expected'))} [{mark}]")
            shown.add(str(d.get("field")))
    elif observed:
        for field, expected in (r.get("expected") or {}).items():
            lines.append(f"{field}: {cur} {fmt_value(observed.get(field))}, {exp} {fmt_value(expected)}")
            shown.add(str(field))
    rest = {k: v for k, v in observed.items() if k not in shown and v not in (None, "", [], {})}
    if rest:
        lines.append(f"{tr('report.observed', lang)}:")
        for field, value in rest.items():
            text = fmt_value(value)
            if len(text) > MAX_VALUE:
                text = text[:MAX_VALUE] + " …"
            if "\n" in text.strip():
                lines.append(f"  {field}:")
                lines.extend(f"    {line}" for line in text.strip("\n").splitlines())
            else:
                lines.append(f"  {field}: {text}")
    hint = pick(r.get("hint"), lang)
    if hint:
        lines.append(f"{tr('col.advice', lang)}: {hint}")
    attempts = r.get("attempts")
    if isinstance(attempts, int) and attempts > 1:
        lines.append(f"{tr('col.attempts', lang)}: {attempts}")
    return _x("\n".join(line for line in lines if line))


def _counts(results: list[dict[str, Any]]) -> dict[str, str]:
    def n(status: str) -> str:
        return str(sum(1 for r in results if r.get("status") == status))

    total_ms = sum(r["duration_ms"] for r in results if isinstance(r.get("duration_ms"), (int, float)))
    return {"tests": str(len(results)), "failures": n("fail"), "errors": n("error"), "skipped": n("skip"),
            "time": _secs(total_ms)}


def render(run: dict[str, Any], lang: str = "en") -> str:
    """The run as a JUnit XML document (text, with an XML declaration)."""
    lang = norm_lang(lang)
    run = clean(run)
    results: list[dict[str, Any]] = list(run.get("results") or [])
    by_host: dict[str, list[dict[str, Any]]] = {h: [] for h in host_names(run)}
    for r in results:
        by_host.setdefault(r.get("host") or "local", []).append(r)

    name = pick((run.get("checklist") or {}).get("name"), lang) or "envprobe"
    top = _counts(results)
    span = run_span_ms(run)
    if span is not None:
        top["time"] = _secs(span)
    root = ET.Element("testsuites", {"name": _x(name), **top})
    if run.get("started_at"):
        root.set("timestamp", _x(run["started_at"]))

    for i, (host, rs) in enumerate(by_host.items()):
        attrs = {"name": _x(host_label(host, lang)), "id": str(i), **_counts(rs)}
        starts = sorted(str(r["started_at"]) for r in rs if r.get("started_at"))
        if starts:
            attrs["timestamp"] = _x(starts[0])
        entry = (run.get("hosts") or {}).get(host) or {}
        address = entry.get("address") if isinstance(entry, dict) else None
        attrs["hostname"] = _x(address or host)
        suite = ET.SubElement(root, "testsuite", attrs)
        line = host_line(host_facts(run, host), lang)
        props = [(k, v) for k, v in (("address", address), ("host", line)) if v]
        if props:
            el_props = ET.SubElement(suite, "properties")
            for k, v in props:
                ET.SubElement(el_props, "property", {"name": k, "value": _x(v)})

        for r in rs:
            check = str(r.get("check") or "?")
            title = pick(r.get("title"), lang)
            case = ET.SubElement(suite, "testcase", {
                "classname": _x(r.get("probe") or host),
                "name": _x(f"{check}: {title}" if title and title != check else check),
                "time": _secs(r.get("duration_ms")),
            })
            status = r.get("status")
            message = _x(_one_line(pick(r.get("message"), lang)))
            if status == "fail":
                kind = _x(r.get("severity") or "fail")
                el = ET.SubElement(case, "failure", {"message": message, "type": kind})
                el.text = _body(r, lang)
            elif status == "error":
                el = ET.SubElement(case, "error", {"message": message, "type": "error"})
                el.text = _body(r, lang)
            elif status == "skip":
                ET.SubElement(case, "skipped", {"message": message})
            elif status == "warn":
                out = ET.SubElement(case, "system-out")
                out.text = _x(f"{tr('status.warn', lang)}: ") + _body(r, lang)

    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write(run: dict[str, Any], path: str | os.PathLike[str], lang: str = "en") -> None:
    Path(path).write_text(render(run, lang), encoding="utf-8", newline="\n")
