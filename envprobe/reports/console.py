"""Terminal output: the results table, the verdict line, and a progress bar for long scans.

rich is imported inside the functions that draw, so importing this module costs nothing at start-up.
All text from the run goes through ``rich.text.Text`` (never markup), so "[red]" in command output prints
as is.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, TYPE_CHECKING, Any

from envprobe.model import pick
from envprobe.reports.i18n import (
    FINDINGS,
    clean,
    duration_text,
    host_facts,
    host_label,
    host_line,
    host_names,
    norm_lang,
    run_span_ms,
    status_rank,
    tr,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

STATUS_STYLE = {
    "pass": "green",
    "warn": "yellow",
    "fail": "bold red",
    "error": "bold magenta",
    "skip": "dim",
}
VERDICT_STYLE = {
    "ready": "bold green",
    "ready-with-warnings": "bold yellow",
    "not-ready": "bold white on red",
    "unknown": "bold white on magenta",
}


def verdict_line(run: dict[str, Any], lang: str, plain: bool = False) -> Any:
    """"未就绪  通过 5 · 警告 1 · 失败 2 · 错误 1 · 跳过 1  （共 10 项检查，5.2 s）" (a rich Text, or a str)."""
    lang = norm_lang(lang)
    summary = run.get("summary") or {}
    verdict = str(summary.get("verdict") or "unknown")
    if plain:
        line: Any = _PlainText()
    else:
        from rich.text import Text

        line = Text()
    line.append(f" {tr(f'verdict.{verdict}', lang)} ", style=VERDICT_STYLE.get(verdict, "bold"))
    line.append("  ")
    for i, s in enumerate(("pass", "warn", "fail", "error", "skip")):
        if i:
            line.append(" · ", style="dim")
        n = int(summary.get(s) or 0)
        line.append(f"{tr(f'status.{s}', lang)} {n}", style=STATUS_STYLE[s] if n else "dim")
    total = len(run.get("results") or [])
    span = run_span_ms(run)
    extra = f"{total} {tr('report.checks', lang)}"
    if span is not None:
        extra += f", {duration_text(span, lang)}"
    line.append(f"  ({extra})" if lang == "en" else f"  （共 {extra.replace(', ', '，')}）", style="dim")
    return str(line) if plain else line


def _pad(text: str, width: int) -> str:
    """Pad to a display width: CJK characters take two terminal columns."""
    import unicodedata

    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - used)


class _PlainText:
    """The part of rich.text.Text that verdict_line uses, without rich."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def append(self, text: str, style: str | None = None) -> None:
        self.parts.append(text)

    def __str__(self) -> str:
        return "".join(self.parts).strip()


def _ordered(run: dict[str, Any], quiet: bool) -> list[tuple[str, list[dict[str, Any]]]]:
    """Results grouped by host, findings first; ``quiet`` keeps only what did not pass."""
    by_host: dict[str, list[dict[str, Any]]] = {h: [] for h in host_names(run)}
    for r in run.get("results") or []:
        by_host.setdefault(r.get("host") or "local", []).append(r)
    out = []
    for host, results in by_host.items():
        rows = sorted(results, key=lambda r: status_rank(r.get("status")))
        if quiet:
            rows = [r for r in rows if r.get("status") != "pass"]
        if rows:
            out.append((host, rows))
    return out


def render_plain(run: dict[str, Any], stream: IO[str], lang: str = "zh-CN", quiet: bool = False) -> None:
    """The same content as :func:`render`, as plain lines, for pipes, files and CI logs (no rich, no colour)."""
    lang = norm_lang(lang)
    run = clean(run)
    lines: list[str] = []
    colon = ": " if lang == "en" else "："
    for host, rows in _ordered(run, quiet):
        line = "" if quiet else host_line(host_facts(run, host), lang)
        lines.append(f"{host_label(host, lang)}  {line}".rstrip())
        for r in rows:
            status = str(r.get("status") or "")
            word = tr(f"status.{status}", lang)
            title = pick(r.get("title"), lang)
            head = f"  {_pad(word, 6)} {r.get('check') or '?'}"
            if title and title != r.get("check"):
                head += f"  {title}"
            if r.get("from"):
                head += f"  [{r['from']} → {host}]"
            lines.append(head)
            lines.append(f"         {pick(r.get('message'), lang)}")
            hint = pick(r.get("hint"), lang)
            if hint and status in FINDINGS:
                lines.append(f"         → {tr('col.advice', lang)}{colon}{hint}")
        lines.append("")
    if run.get("interrupted"):
        lines.append(tr("report.interrupted", lang))
    lines.append(verdict_line(run, lang, plain=True))
    stream.write("\n".join(lines) + "\n")


def render(run: dict[str, Any], console: Console, lang: str = "zh-CN", quiet: bool = False) -> None:
    """Print the results grouped by host, findings first (with their advice), then the verdict line.

    ``quiet``: only results that did not pass, and the verdict line.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    lang = norm_lang(lang)
    run = clean(run)
    printed = False
    for host, rows in _ordered(run, quiet):
        title = Text(host_label(host, lang), style="bold")
        if not quiet:
            line = host_line(host_facts(run, host), lang)
            if line:
                title.append(f"  {line}", style="dim")
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, expand=False,
                      pad_edge=False)
        table.add_column(tr("col.status", lang), no_wrap=True, min_width=6)
        table.add_column(tr("col.check", lang), overflow="fold", min_width=16, max_width=32)
        table.add_column(tr("col.message", lang), overflow="fold")
        for r in rows:
            status = str(r.get("status") or "")
            check = Text(str(r.get("check") or "?"), style="bold" if status in FINDINGS else "")
            title_text = pick(r.get("title"), lang)
            if title_text and title_text != r.get("check"):
                check.append(f"\n{title_text}", style="dim")
            if r.get("from"):
                check.append(f"\n{r['from']} → {host}", style="dim")
            msg = Text(pick(r.get("message"), lang))
            hint = pick(r.get("hint"), lang)
            if hint and status in FINDINGS:
                colon = ": " if lang == "en" else "："
                msg.append(f"\n→ {tr('col.advice', lang)}{colon}", style="cyan")
                msg.append(hint)
            table.add_row(Text(tr(f"status.{status}", lang), style=STATUS_STYLE.get(status, "")), check, msg)
        if printed:
            console.print()
        console.print(table)
        printed = True

    if printed:
        console.print()
    if run.get("interrupted"):
        console.print(Text(tr("report.interrupted", lang), style="yellow"))
    console.print(verdict_line(run, lang))


class ProgressPrinter:
    """A progress bar for the runner's ``on_result`` callback, shown only when it helps.

    Nothing is drawn unless ``enabled`` (default: the console is a terminal) and the scan is still going
    one second (``delay``) after construction; then a transient bar appears, and disappears when
    :meth:`stop` is called (or the ``with`` block ends). Safe to call from several threads. Usage::

        with ProgressPrinter(len(runner.units())) as progress:
            run = Runner(plan, transports, on_result=progress).run()
    """

    def __init__(self, total: int, console: Console | None = None, lang: str = "zh-CN",
                 delay: float = 1.0, enabled: bool | None = None) -> None:
        self.total = max(0, int(total))
        self.done = 0
        self.lang = norm_lang(lang)
        self._console = console
        self._lock = threading.Lock()
        self._stopped = False
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last = ""
        self._timer: threading.Timer | None = None
        if enabled is None:  # not told: ask the console (or stderr) whether it is a terminal
            enabled = console.is_terminal if console is not None else sys.stderr.isatty()
        if enabled and self.total > 0:
            self._timer = threading.Timer(delay, self._show)
            self._timer.daemon = True
            self._timer.start()

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def _description(self) -> str:
        return f"{tr('console.scanning', self.lang)} {self._last}".strip()

    def _show(self) -> None:
        with self._lock:
            if self._stopped or self.done >= self.total:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = self._console or Console(stderr=True)
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console, transient=True,
            )
            self._task = self._progress.add_task(self._description(), total=self.total, completed=self.done)
            self._progress.start()

    def __call__(self, result: Any) -> None:
        """Count one finished result (a :class:`~envprobe.model.Result` or its dict)."""
        if isinstance(result, dict):
            check, host = result.get("check", ""), result.get("host", "")
        else:
            check, host = getattr(result, "check", ""), getattr(result, "host", "")
        with self._lock:
            self.done += 1
            self._last = f"{check}@{host}" if host else str(check)
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, completed=self.done, description=self._description())

    on_result = __call__

    def stop(self) -> None:
        """Remove the bar (if shown) and cancel the pending timer. Idempotent."""
        timer = self._timer
        if timer is not None:
            timer.cancel()
        with self._lock:
            self._stopped = True
            progress, self._progress = self._progress, None
        if progress is not None:
            progress.stop()
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=5)

    def __enter__(self) -> ProgressPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
