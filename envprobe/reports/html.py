"""The HTML report: one self-contained file that survives being attached to an email.

Inline CSS only; no URL of any kind (fonts, images, scripts, stylesheets); no JavaScript (long output folds
into ``<details>``); prints on A4 without cutting rows, banner colours kept. Every value from the run is
escaped by jinja2's autoescape: a ``<script>`` in a command's output shows as text.

The template ships as package data (``envprobe/reports/templates/report.html.j2``) and is loaded with
jinja2's ``PackageLoader``, which reads through importlib, so it works from a wheel or a zip as well.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envprobe.model import pick
from envprobe.reports.i18n import (
    FINDINGS,
    clean,
    cpu_text,
    disk_text,
    duration_text,
    fmt_value,
    host_facts,
    host_label,
    host_line,
    host_names,
    memory_text,
    norm_lang,
    run_span_ms,
    status_rank,
    tr,
    utc_text,
)

if TYPE_CHECKING:
    import jinja2

#: Values longer than this (or spanning lines) fold into <details>.
LONG_VALUE = 160
_MISSING = "—"
_SEVERITY_RANK = {"blocker": 0, "required": 1, "recommended": 2}


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("envprobe.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _value(v: Any) -> dict[str, Any]:
    text = fmt_value(v)
    return {"text": text, "long": len(text) > LONG_VALUE or "\n" in text.strip(),
            "preview": text.strip().splitlines()[0][:80] if text.strip() else ""}


def _rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-field rows (field, current value, expected, ok) from ``details``, else from expected/observed."""
    observed = r.get("observed") or {}
    rows: list[dict[str, Any]] = []
    details = r.get("details") or []
    if details:
        for d in details:
            rows.append({"field": str(d.get("field", "")), "observed": _value(d.get("observed")),
                         "expected": fmt_value(d.get("expected")), "ok": bool(d.get("ok"))})
        return rows
    for field, exp in (r.get("expected") or {}).items():
        current = _value(observed[field]) if field in observed else _value(_MISSING)
        rows.append({"field": str(field), "observed": current, "expected": fmt_value(exp), "ok": None})
    return rows


def _observed_rest(r: dict[str, Any], shown: set[str]) -> list[dict[str, Any]]:
    """Observed fields no expectation mentions (a command's stdout, say): evidence for the reader."""
    return [{"field": str(k), "value": _value(v)}
            for k, v in (r.get("observed") or {}).items() if k not in shown and v not in (None, "", [], {})]


def _result_view(r: dict[str, Any], lang: str) -> dict[str, Any]:
    status = str(r.get("status") or "")
    severity = str(r.get("severity") or "")
    rows = _rows(r)
    attempts = r.get("attempts")
    return {
        "check": str(r.get("check") or "?"),
        "title": pick(r.get("title"), lang) or str(r.get("check") or ""),
        "host": str(r.get("host") or "local"),
        "from": r.get("from") or "",
        "probe": str(r.get("probe") or ""),
        "status": status,
        "status_text": tr(f"status.{status}", lang),
        "severity": severity,
        "severity_text": tr(f"severity.{severity}", lang) if severity else "",
        "message": pick(r.get("message"), lang),
        "hint": pick(r.get("hint"), lang),
        "rows": rows,
        "extra": _observed_rest(r, {row["field"] for row in rows}),
        "started": utc_text(r.get("started_at")),
        "duration": duration_text(r.get("duration_ms"), lang),
        "attempts": attempts if isinstance(attempts, int) and attempts > 1 else 0,
    }


def _host_view(run: dict[str, Any], host: str, lang: str) -> dict[str, Any]:
    entry = (run.get("hosts") or {}).get(host) or {}
    facts = host_facts(run, host)
    os_f = facts.get("os") or {}
    disks = facts.get("disks") or []
    return {
        "name": host,
        "address": str(entry.get("address") or "") if isinstance(entry, dict) else "",
        "line": host_line(facts, lang),
        "has_facts": bool(facts),
        "os": str(os_f.get("pretty_name") or os_f.get("name") or ""),
        "kernel": str(os_f.get("kernel") or ""),
        "cpu": cpu_text(facts.get("cpu") or {}, lang),
        "memory": memory_text(facts.get("memory") or {}, lang),
        "disks": [disk_text(d, lang) for d in disks if isinstance(d, dict)],
    }


def view(run: dict[str, Any], lang: str = "zh-CN") -> dict[str, Any]:
    """Everything the template shows, already in ``lang`` and formatted (the template only lays it out)."""
    lang = norm_lang(lang)
    run = clean(run)
    summary = run.get("summary") or {}
    verdict = str(summary.get("verdict") or "unknown")
    results = [_result_view(r, lang) for r in run.get("results") or [] if isinstance(r, dict)]
    order = {h: i for i, h in enumerate(host_names(run))}

    def key(v: dict[str, Any]) -> tuple[int, int, int]:
        host = order.get(v["host"], len(order))
        return (host, status_rank(v["status"]), _SEVERITY_RANK.get(v["severity"], 3))

    findings = sorted((v for v in results if v["status"] in FINDINGS), key=key)
    others = sorted((v for v in results if v["status"] not in FINDINGS), key=lambda v: key(v)[:2])
    groups: list[dict[str, Any]] = []
    for v in findings:
        if not groups or groups[-1]["host"] != v["host"]:
            line = host_line(host_facts(run, v["host"]), lang)
            groups.append({"host": host_label(v["host"], lang), "line": line, "items": []})
        groups[-1]["items"].append(v)
    span = run_span_ms(run)
    checklist = run.get("checklist") or {}
    return {
        "lang": lang,
        "t": {k: tr(k, lang) for k in _KEYS},
        "verdict": verdict,
        "verdict_text": tr(f"verdict.{verdict}", lang),
        "verdict_long": tr(f"verdict.{verdict}.long", lang),
        "counts": [{"status": s, "text": tr(f"status.{s}", lang), "n": int(summary.get(s) or 0)}
                   for s in ("pass", "warn", "fail", "error", "skip")],
        "total": len(results),
        "interrupted": bool(run.get("interrupted")),
        "checklist": pick(checklist.get("name"), lang) or "",
        "checklist_path": str(checklist.get("path") or ""),
        "started": utc_text(run.get("started_at")),
        "finished": utc_text(run.get("finished_at")),
        "span": duration_text(span, lang) if span is not None else "",
        "version": str(run.get("envprobe") or ""),
        "footer": tr("report.generated_by", lang).format(version=str(run.get("envprobe") or "")).strip(),
        "hosts": [_host_view(run, h, lang) for h in host_names(run) if h != "*"],
        "groups": groups,
        "findings_count": len(findings),
        "others": others,
    }


_KEYS = (
    "report.title", "report.checklist", "report.time", "report.time_note", "report.version", "report.hosts",
    "report.findings", "report.no_findings", "report.others", "report.no_others", "report.interrupted",
    "report.generated_by", "report.total", "report.checks", "report.show_output", "report.observed",
    "report.ok", "report.not_ok", "col.current", "col.expected", "col.severity", "col.advice", "col.status",
    "col.check", "col.host", "col.field", "col.message", "col.duration", "col.result", "col.address",
    "col.system", "col.os", "col.kernel", "col.cpu", "col.memory", "col.disks", "col.from", "col.attempts",
    "host.no_facts",
)


def render(run: dict[str, Any], lang: str = "zh-CN") -> str:
    """The run as one self-contained HTML document."""
    return _env().get_template("report.html.j2").render(**view(run, lang))


def write(run: dict[str, Any], path: str | os.PathLike[str], lang: str = "zh-CN") -> None:
    Path(path).write_text(render(run, lang), encoding="utf-8", newline="\n")
