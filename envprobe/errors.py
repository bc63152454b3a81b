"""Errors that reach the user before anything runs. Kept apart so the CLI can catch them cheaply."""

from __future__ import annotations

from pathlib import Path

from envprobe.record import record


@record
class Problem:
    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(Exception):
    """One or more problems in a checklist (or inventory). Nothing has run."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def read_utf8(path: str | Path, what: str = "file") -> str:
    """A checklist's or inventory's text, or a ConfigError that says plainly why it cannot be read."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), None, None, "", f"{what} not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(str(path), None, None, "", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        msg = "not UTF-8 text; save the file as UTF-8 (GBK-encoded files must be converted)"
        raise ConfigError([Problem(str(path), line, None, "", msg)]) from None
