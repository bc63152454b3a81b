"""Pure types shared by every layer: statuses, severities, bilingual text, checks, results, runs.

Nothing here does I/O. The serialized form of :class:`Run` is a public contract (see docs/json-format.md).
"""

from __future__ import annotations

import datetime as _dt
from enum import Enum
from typing import Any

from envprobe.record import field, record

SCHEMA_VERSION = 1
LANGS = ("zh-CN", "en")

# A bilingual text: {"zh-CN": "...", "en": "..."}.
Text = dict[str, str]


def t(en: str, zh: str) -> Text:
    """Build a bilingual text. English first in the call, as code is read in English."""
    return {"zh-CN": zh, "en": en}


def join_text(*parts: Text | None, sep: str = " ") -> Text:
    """Join bilingual texts language by language, skipping empty parts."""
    out: Text = {}
    for lang in LANGS:
        out[lang] = sep.join(p[lang] for p in parts if p and p.get(lang))
    return out


def pick(text: Text | str | None, lang: str) -> str:
    """The text in ``lang``, falling back to the other language."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    return text.get(lang) or text.get("en") or text.get("zh-CN") or next(iter(text.values()), "")


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


class Severity(str, Enum):
    BLOCKER = "blocker"
    REQUIRED = "required"
    RECOMMENDED = "recommended"


class Verdict(str, Enum):
    READY = "ready"
    READY_WITH_WARNINGS = "ready-with-warnings"
    NOT_READY = "not-ready"
    UNKNOWN = "unknown"


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def iso(ts: _dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as the JSON contract shows."""
    return ts.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


@record
class Result:
    check: str
    title: Text
    host: str
    probe: str
    severity: Severity
    status: Status
    message: Text
    expected: dict[str, Any] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    duration_ms: int = 0
    from_: str | None = None
    hint: Text | None = None
    attempts: int = 1
    # Per-field verdicts: [{"field", "expected", "observed", "ok"}]; lets reports show expected vs observed.
    details: list[dict[str, Any]] = field(default_factory=list)
    #: Why a host could not be used (unreachable, timeout, auth-failed, hostkey-unknown, hostkey-changed).
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "title": self.title,
            "host": self.host,
            "from": self.from_,
            "probe": self.probe,
            "severity": self.severity.value,
            "status": self.status.value,
            "message": self.message,
            "expected": self.expected,
            "observed": self.observed,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "hint": self.hint,
            "attempts": self.attempts,
            "details": self.details,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        return cls(
            check=d["check"],
            title=d.get("title") or {"en": d["check"], "zh-CN": d["check"]},
            host=d.get("host", "local"),
            from_=d.get("from"),
            probe=d.get("probe", ""),
            severity=Severity(d.get("severity", "required")),
            status=Status(d["status"]),
            message=d.get("message") or {},
            expected=d.get("expected") or {},
            observed=d.get("observed") or {},
            started_at=d.get("started_at", ""),
            duration_ms=int(d.get("duration_ms", 0)),
            hint=d.get("hint"),
            attempts=int(d.get("attempts", 1)),
            details=d.get("details") or [],
            reason=d.get("reason"),
        )


def summarize(results: list[Result]) -> dict[str, Any]:
    counts = {s.value: 0 for s in Status}
    for r in results:
        counts[r.status.value] += 1
    if counts["fail"]:
        verdict = Verdict.NOT_READY
    elif counts["error"]:
        verdict = Verdict.UNKNOWN
    elif counts["warn"]:
        verdict = Verdict.READY_WITH_WARNINGS
    else:
        verdict = Verdict.READY
    return {**counts, "verdict": verdict.value}


@record
class Run:
    version: str
    checklist_name: Text | str
    checklist_path: str
    started_at: str
    finished_at: str = ""
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    lang: str | None = None
    interrupted: bool = False

    @property
    def summary(self) -> dict[str, Any]:
        return summarize(self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "envprobe": self.version,
            "schema": SCHEMA_VERSION,
            "checklist": {"name": self.checklist_name, "path": self.checklist_path, "lang": self.lang},
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "interrupted": self.interrupted,
            "summary": self.summary,
            "hosts": self.hosts,
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        if d.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"unsupported result schema {d.get('schema')!r} (this envprobe reads {SCHEMA_VERSION})")
        cl = d.get("checklist") or {}
        return cls(
            version=d.get("envprobe", ""),
            checklist_name=cl.get("name", ""),
            checklist_path=cl.get("path", ""),
            lang=cl.get("lang"),
            started_at=d.get("started_at", ""),
            finished_at=d.get("finished_at", ""),
            interrupted=bool(d.get("interrupted", False)),
            hosts=d.get("hosts") or {},
            results=[Result.from_dict(r) for r in d.get("results") or []],
        )
