"""The runner: schedules (check × host) units with bounded concurrency, timeouts, retries and ``needs``.

Failures are values: a probe that raises becomes an ``error`` result with one line of explanation (the
traceback goes to the debug log); a check whose ``needs`` did not pass is skipped with the reason; an
interrupt ends the run with partial results and every unfinished unit marked as skipped.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from envprobe import __version__
from envprobe import expect as expectmod
from envprobe.debuglog import DebugLog
from envprobe.loader import Plan, PlannedCheck
from envprobe.model import Result, Run, Severity, Status, Text, iso, join_text, t, utcnow
from envprobe.probes.base import ProbeContext, ProbeError
from envprobe.record import field, record
from envprobe.schema import Model
from envprobe.transport.base import Source, Transport, TransportError

#: Statuses of a needed check that let its dependents run. A warning is a finding, not a broken prerequisite.
_NEEDS_OK = {Status.PASS, Status.WARN}
_GRACE = 1.0


@record
class _Attempt:
    status: Status
    message: Text
    observed: dict[str, Any] = field(default_factory=dict)
    details: list[dict[str, Any]] = field(default_factory=list)
    hint: Text | None = None


@record(frozen=True)
class Unit:
    check: PlannedCheck
    host: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.check.id, self.host)


def evaluate(
    check: PlannedCheck, facts: Model, note: Text | None = None
) -> tuple[Status, Text, list[dict[str, Any]]]:
    """Judge observed facts against the check's expectations: status, message, per-field details."""
    observed = facts.model_dump(mode="json")
    details: list[dict[str, Any]] = []
    failures: list[Text] = []
    for fe in check.expectations:
        value = observed.get(fe.field)
        outcome = fe.expectation.check(value)
        details.append({
            "field": fe.field,
            "expected": fe.expectation.display(),
            "observed": expectmod.display_value(value, fe.unit),
            "ok": outcome.ok,
        })
        if not outcome.ok:
            failures.append(expectmod.failure_message(fe.field, fe.expectation, value, fe.unit, outcome.problem))
    if failures:
        status = Status.WARN if check.severity is Severity.RECOMMENDED else Status.FAIL
        message = join_text(*failures, sep="; ")
    else:
        status = Status.PASS
        if details:
            shown = ", ".join(f"{d['field']} {_short(d['observed'])}" for d in details)
            message = t(f"as expected: {shown}", f"符合期望：{shown}")
        else:
            message = t("collected without error", "采集成功")
    if note:
        message = join_text(message, note, sep=" — ")
    return status, message, details


def _short(s: str, n: int = 60) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def advice_for(check: PlannedCheck, details: list[dict[str, Any]]) -> Text | None:
    if check.hint:
        return check.hint
    parts: list[Text] = []
    advice = check.probe.advice
    for d in details:
        if not d["ok"]:
            a = advice.get(d["field"]) or advice.get("*")
            if a and a not in parts:
                parts.append(a)
    return join_text(*parts, sep="; ") if parts else None


class Runner:
    def __init__(
        self,
        plan: Plan,
        transports: Mapping[str, Transport],
        forks: int = 10,
        on_result: Callable[[Result], None] | None = None,
        prefer_native: bool = True,
        debug_log: DebugLog | None = None,
        host_facts: bool = True,
    ):
        self.plan = plan
        self.transports = transports
        self.forks = max(1, forks)
        self.on_result = on_result
        self.prefer_native = prefer_native
        self.debug_log = debug_log
        self.host_facts = host_facts
        self._events: queue.Queue[tuple[Unit, Result]] = queue.Queue()

    # -- one unit --------------------------------------------------------------------------------------
    def _attempt(self, unit: Unit, transport: Transport) -> _Attempt:
        check = unit.check
        probe = check.probe()
        box: dict[str, Any] = {}
        ctx = ProbeContext(transport, unit.host, check.timeout, prefer_native=self.prefer_native)

        def target() -> None:
            try:
                box["facts"] = probe.collect(ctx, check.params)
                box["note"] = probe.note(check.params, box["facts"])
            except BaseException as exc:  # noqa: BLE001 - any failure of a probe is a result, not a crash
                box["exc"] = exc
                box["tb"] = traceback.format_exc()

        th = threading.Thread(target=target, name=f"probe-{check.id}@{unit.host}", daemon=True)
        th.start()
        # a little grace so a probe that enforces its own deadline can report it in its own words
        th.join(check.timeout + _GRACE)
        if th.is_alive():
            return _Attempt(Status.ERROR, t(
                f"no answer within {check.timeout:g} s: the probe was abandoned (raise 'timeout:' if the host is slow)",
                f"{check.timeout:g} 秒内无结果，已放弃该探针（主机较慢时可调大 'timeout:'）",
            ))
        if "exc" in box:
            exc = box["exc"]
            if isinstance(exc, ProbeError):
                return _Attempt(Status.ERROR, exc.message, hint=exc.hint)
            if isinstance(exc, TransportError):
                return _Attempt(Status.ERROR, t(f"could not reach the host: {exc}", f"无法访问主机：{exc}"))
            self._log("error", f"probe {check.probe_name} crashed on {unit.host}:\n{box['tb']}")
            where = f" (traceback in {self.debug_log.path})" if self.debug_log else ""
            where_zh = f"（详情见 {self.debug_log.path}）" if self.debug_log else ""
            return _Attempt(Status.ERROR, t(
                f"probe {check.probe_name} crashed: {type(exc).__name__}: {exc}{where}",
                f"探针 {check.probe_name} 运行出错：{type(exc).__name__}: {exc}{where_zh}",
            ))
        facts = box["facts"]
        if not isinstance(facts, Model):
            facts = check.probe.Facts.model_validate(facts)
        status, message, details = evaluate(check, facts, box.get("note"))
        return _Attempt(status, message, facts.model_dump(mode="json"), details)

    def _run_unit(self, unit: Unit) -> None:
        check = unit.check
        started = utcnow()
        t0 = time.perf_counter()
        transport = self.transports[unit.host]
        attempts = 0
        while True:
            attempts += 1
            outcome = self._attempt(unit, transport)
            if outcome.status is Status.PASS or attempts > check.retries:
                break
            self._log("info", f"check {check.id} on {unit.host}: attempt {attempts} gave {outcome.status.value}; "
                              f"retrying in {check.retry_delay:.1f}s")
            time.sleep(check.retry_delay)
            transport.forget()
        status, message = outcome.status, outcome.message
        if attempts > 1:
            message = join_text(message, t(f"(after {attempts} attempts)", f"（共尝试 {attempts} 次）"))
        result = Result(
            check=check.id,
            title=check.title,
            host=unit.host,
            from_=check.from_,
            probe=check.probe_name,
            severity=check.severity,
            status=status,
            message=message,
            expected={fe.field: fe.expectation.display() for fe in check.expectations},
            observed=outcome.observed,
            started_at=iso(started),
            duration_ms=int((time.perf_counter() - t0) * 1000),
            hint=None if status is Status.PASS else (outcome.hint or advice_for(check, outcome.details)),
            attempts=attempts,
            details=outcome.details,
        )
        self._events.put((unit, self._mask(result)))

    def _mask(self, r: Result) -> Result:
        m = self.plan.masker
        if not m:
            return r
        r.message = m.mask(r.message)
        r.observed = m.mask(r.observed)
        r.expected = m.mask(r.expected)
        r.details = m.mask(r.details)
        r.hint = m.mask(r.hint)
        return r

    def _skip(self, unit: Unit, message: Text) -> Result:
        c = unit.check
        return Result(check=c.id, title=c.title, host=unit.host, from_=c.from_, probe=c.probe_name,
                      severity=c.severity, status=Status.SKIP, message=message,
                      expected={fe.field: fe.expectation.display() for fe in c.expectations},
                      started_at=iso(utcnow()))

    # -- the whole run -----------------------------------------------------------------------------------
    def units(self) -> list[Unit]:
        out: list[Unit] = []
        for c in self.plan.checks:
            for h in c.hosts:
                out.append(Unit(c, "local" if h == "localhost" else h))
        return out

    def run(self) -> Run:
        run = Run(version=__version__, checklist_name=self.plan.name, checklist_path=self.plan.path,
                  started_at=iso(utcnow()), lang=self.plan.lang)
        units = self.units()
        order = {u.key: i for i, u in enumerate(units)}
        results: dict[tuple[str, str], Result] = {}
        pending = list(units)
        running: set[tuple[str, str]] = set()
        self._prefetch(units)
        facts_thread = None
        facts: dict[str, dict[str, Any]] = {}
        if self.host_facts:
            facts_thread = threading.Thread(target=self._collect_host_facts, args=(facts,), daemon=True)
            facts_thread.start()
        try:
            while pending or running:
                progressed = False
                for unit in list(pending):
                    if len(running) >= self.forks:
                        break
                    needs = [(n, unit.host) for n in unit.check.needs]
                    if any(k not in results for k in needs):
                        continue
                    pending.remove(unit)
                    progressed = True
                    blocked = [k[0] for k in needs if results[k].status not in _NEEDS_OK]
                    if blocked:
                        names = ", ".join(f"{b} ({results[(b, unit.host)].status.value})" for b in blocked)
                        self._record(results, self._skip(unit, t(f"skipped: needs {names}, which did not pass",
                                                                 f"已跳过：依赖的检查 {names} 未通过")))
                        continue
                    running.add(unit.key)
                    threading.Thread(target=self._guarded, args=(unit,), daemon=True,
                                     name=f"check-{unit.check.id}@{unit.host}").start()
                if progressed and not running:
                    continue
                try:
                    done_unit, result = self._events.get(timeout=0.2)
                except queue.Empty:
                    continue
                running.discard(done_unit.key)
                self._record(results, result)
        except KeyboardInterrupt:
            run.interrupted = True
            while True:  # keep what finished in the meantime
                try:
                    done_unit, result = self._events.get_nowait()
                except queue.Empty:
                    break
                running.discard(done_unit.key)
                self._record(results, result)
            for unit in units:
                if unit.key not in results:
                    was = "while it was running" if unit.key in running else "before it ran"
                    zh = "运行中被中断" if unit.key in running else "未开始即被中断"
                    results[unit.key] = self._skip(unit, t(f"interrupted {was}", zh))
        if facts_thread is not None:
            facts_thread.join(0 if run.interrupted else 15)
        host_names = sorted({u.host for u in units}) or ["local"]
        run.hosts = {h: {"address": getattr(self.transports.get(h), "address", None), "facts": facts.get(h, {})}
                     for h in host_names}
        run.results = sorted(results.values(), key=lambda r: order[(r.check, r.host)])
        run.finished_at = iso(utcnow())
        return run

    def _log(self, level: str, text: str) -> None:
        if self.debug_log is not None:
            self.debug_log.write(level, text)

    def _guarded(self, unit: Unit) -> None:
        try:
            self._run_unit(unit)
        except BaseException as exc:  # noqa: BLE001 - the scheduler must always hear back
            self._log("error", f"internal error on {unit.check.id}@{unit.host}: {traceback.format_exc()}")
            self._events.put((unit, self._skip(unit, t(f"internal error: {exc}", f"内部错误：{exc}"))))

    def _record(self, results: dict[tuple[str, str], Result], r: Result) -> None:
        results[(r.check, r.host)] = r
        if self.on_result is not None:
            self.on_result(r)

    def _prefetch(self, units: list[Unit]) -> None:
        """Fetch, per remote host, every source its checks declare, in one batch. Local hosts read lazily."""
        by_host: dict[str, list[Source]] = {}
        for u in units:
            tr = self.transports[u.host]
            if tr.is_local and self.prefer_native and u.check.probe.has_native:
                continue
            try:
                srcs = u.check.probe().sources(u.check.params)
            except Exception:  # noqa: BLE001 - the unit itself will report the problem
                continue
            by_host.setdefault(u.host, []).extend(srcs)
        for host, srcs in by_host.items():
            tr = self.transports[host]
            if tr.is_local:
                continue
            try:
                tr.prefetch(srcs)
            except TransportError as exc:
                self._log("warning", f"prefetch on {host} failed: {exc}")

    def _collect_host_facts(self, out: dict[str, dict[str, Any]]) -> None:
        from envprobe.facts import host_summary

        hosts = sorted({u.host for u in self.units()})
        for h in hosts:
            try:
                summary = host_summary(self.transports[h], prefer_native=self.prefer_native,
                                       log=lambda text: self._log("warning", text))
                out[h] = self.plan.masker.mask(summary)
            except Exception:  # noqa: BLE001 - the summary is a courtesy; checks carry the verdict
                self._log("warning", f"host facts for {h} failed:\n{traceback.format_exc()}")
