"""Reporters: console, JSON, JUnit XML and HTML (zh-CN / en).

Every reporter reads only the serialized run (the dict :meth:`envprobe.model.Run.to_dict` returns, or a
result file read back with :func:`envprobe.reports.json.load`), so any report can be re-rendered offline.
Submodules import their heavy dependencies (jinja2, rich) lazily; importing this package is cheap.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

#: File formats and the language each defaults to.
FORMATS = {"json": None, "junit": "en", "html": "zh-CN"}


def write(fmt: str, run: dict[str, Any], path: str | os.PathLike[str], lang: str | None = None) -> None:
    """Write ``run`` to ``path`` as ``fmt`` ("json", "junit" or "html")."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})")
    module = importlib.import_module(f"envprobe.reports.{fmt}")
    if fmt == "json":
        module.write(run, path)
    else:
        module.write(run, path, lang=lang or FORMATS[fmt] or "zh-CN")
