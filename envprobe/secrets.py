"""Secrets: values that came from ``${env:NAME}``. They are masked in every text envprobe writes."""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "******"
MIN_LEN = 3  # shorter values would mask ordinary characters everywhere; documented in the README


class Masker:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._rx: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) < MIN_LEN:
            return
        with self._lock:
            # the value as written, and as it appears once URL-encoded (connection URLs, query strings)
            self._values.update({value, quote(value, safe=""), quote_plus(value)})
            longest_first = sorted(self._values, key=len, reverse=True)
            self._rx = re.compile("|".join(re.escape(v) for v in longest_first))

    def __bool__(self) -> bool:
        return bool(self._values)

    def text(self, s: str) -> str:
        rx = self._rx
        return rx.sub(MASK, s) if rx is not None and s else s

    def mask(self, obj: Any) -> Any:
        """Mask every string inside ``obj`` (dicts, lists, tuples), keys included."""
        if self._rx is None:
            return obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.mask(k): self.mask(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.mask(v) for v in obj)
        return obj


_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def find_env_refs(s: str) -> list[str]:
    return _ENV.findall(s)


def substitute_env(s: str, environ: dict[str, str], masker: Masker) -> tuple[str, list[str]]:
    """Replace each ``${env:NAME}`` with its value (registering it as a secret). Returns missing names."""
    missing: list[str] = []

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in environ:
            missing.append(name)
            return m.group(0)
        masker.add(environ[name])
        return environ[name]

    return _ENV.sub(repl, s), missing
