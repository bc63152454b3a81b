"""The result JSON: write a serialized run, and read one back (validated) for offline re-rendering.

The format is a public contract, documented in docs/json-format.md. Keys are written in the order the run
dict gives them (no sorting), UTF-8, non-ASCII kept as is (中文 stays readable), indented by two spaces.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from envprobe.model import SCHEMA_VERSION, Status

#: Top-level keys every result file carries (a reader may rely on them).
REQUIRED_KEYS = (
    "envprobe", "schema", "checklist", "started_at", "finished_at", "summary", "hosts", "results",
)
#: Keys every entry of ``results`` carries.
REQUIRED_RESULT_KEYS = ("check", "host", "status")
_STATUSES = tuple(s.value for s in Status)


def dumps(run: dict[str, Any]) -> str:
    """The run as JSON text (ends with a newline). Strict JSON: an unlimited value (+∞, e.g. a ulimit) is
    written as the string ``"unlimited"``, a not-a-number as null."""
    return json.dumps(_finite(run), ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def _finite(v: Any) -> Any:
    if isinstance(v, float) and (v != v or v in (math.inf, -math.inf)):
        return None if v != v else ("unlimited" if v > 0 else "-unlimited")
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def write(run: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the run to ``path`` atomically (a reader never sees half a file, even after Ctrl-C)."""
    target = Path(path)
    text = dumps(run)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    try:
        # backslashreplace: a lone surrogate (undecodable output) becomes a JSON \udcxx escape, not a crash
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is an ordinary file
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def validate(run: Any, source: str = "result") -> dict[str, Any]:
    """Check that ``run`` is a schema-1 envprobe result and return it; else raise ValueError saying why."""
    if not isinstance(run, dict):
        raise ValueError(f"{source}: not an envprobe result: expected a JSON object at the top level, "
                         f"found {_kind(run)}")
    if "schema" not in run:
        raise ValueError(f"{source}: not an envprobe result: no 'schema' key "
                         f"(expected \"schema\": {SCHEMA_VERSION})")
    schema = run["schema"]
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        written_by = f" (written by envprobe {run['envprobe']})" if run.get("envprobe") else ""
        newer = isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION
        advice = "; upgrade envprobe to read it" if newer else ""
        raise ValueError(f"{source}: unsupported result schema {schema!r}{written_by}: "
                         f"this envprobe reads schema {SCHEMA_VERSION}{advice}")
    missing = [k for k in REQUIRED_KEYS if k not in run]
    if missing:
        raise ValueError(f"{source}: missing required key{'s' if len(missing) > 1 else ''}: "
                         + ", ".join(repr(k) for k in missing))
    for key, kind in (("summary", dict), ("hosts", dict), ("results", list), ("checklist", dict)):
        if not isinstance(run[key], kind):
            raise ValueError(f"{source}: {key!r} must be a JSON {'object' if kind is dict else 'array'}, "
                             f"found {_kind(run[key])}")
    for i, r in enumerate(run["results"]):
        where = f"{source}: results[{i}]"
        if not isinstance(r, dict):
            raise ValueError(f"{where}: expected an object, found {_kind(r)}")
        missing = [k for k in REQUIRED_RESULT_KEYS if k not in r]
        if missing:
            raise ValueError(f"{where}: missing required key{'s' if len(missing) > 1 else ''}: "
                             + ", ".join(repr(k) for k in missing))
        if r["status"] not in _STATUSES:
            raise ValueError(f"{where}.status: {r['status']!r} is not one of {', '.join(_STATUSES)}")
    for name, h in run["hosts"].items():
        if not isinstance(h, dict):
            raise ValueError(f"{source}: hosts[{name!r}]: expected an object, found {_kind(h)}")
    return run


def loads(text: str, source: str = "result") -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ValueError(f"{source}: not valid JSON ({where}): {exc.msg}") from None
    return validate(data, source)


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a result file written by :func:`write` (a UTF-8 BOM is tolerated)."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: not UTF-8 text (byte {exc.start})") from None
    return loads(text, str(path))


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__
