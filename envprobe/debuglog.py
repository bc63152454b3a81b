"""The debug log: tracebacks of crashed probes and notes on retries, for whoever investigates later.

Written lazily (a scan without trouble never opens the file), with secrets masked, from any thread. A plain
file writer rather than the logging module: this is the only log envprobe keeps, and importing logging costs
every scan start-up time for nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import IO, Any


class DebugLog:
    def __init__(self, path: str, masker: Any = None):
        self.path = path
        self._masker = masker
        self._fh: IO[str] | None = None
        self._lock = threading.Lock()
        self._failed = False
        # a log left by an earlier scan must not pass for this one's
        with contextlib.suppress(OSError):
            os.remove(path)

    def write(self, level: str, text: str) -> None:
        if self._masker is not None:
            text = self._masker.text(text)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        line = f"{stamp} {level.upper()} [{threading.current_thread().name}] {text.rstrip()}\n"
        with self._lock:
            if self._failed:
                return
            if self._fh is None:
                try:
                    os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                    self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - kept open for the scan
                except OSError:
                    self._failed = True  # the log is a courtesy: never let it break a scan
                    return
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def default_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "envprobe", "last-scan.log")
