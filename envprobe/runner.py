"""The runner: schedules (check × host) units with bounded concurrency, timeouts, retries and ``needs``.

Failures are values: a probe that raises becomes an ``error`` result with one line of explanation (the
traceback goes to the debug log); a check whose ``needs`` did not pass is skipped with the reason; an
interrupt ends the run with partial results and every unfinished unit marked as skipped.
"""

from __future__ import annotations

import datetime
import queue
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from envprobe import __version__
from envprobe import expect as expectmod
from envprobe.debuglog import DebugLog
from envprobe.loader import FieldExpectation, Plan, PlannedCheck
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
    reason: str | None = None
    #: expectations derived on the host (field -> text), shown with the static ones
    expected: dict[str, str] = field(default_factory=dict)


@record
class _UnitState:
    started: datetime.datetime
    t0: float
    attempts: int = 0


@record(frozen=True)
class Unit:
    check: PlannedCheck
    host: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.check.id, self.host)


def evaluate(
    check: PlannedCheck, facts: Model, note: Text | None = None, extra: list[FieldExpectation] | None = None,
) -> tuple[Status, Text, list[dict[str, Any]]]:
    """Judge observed facts against the check's expectations (and ``extra`` ones derived on the host): status,
    message, per-field details."""
    observed = facts.model_dump(mode="json")
    details: list[dict[str, Any]] = []
    failures: list[Text] = []
    unobserved: list[tuple[str, Text]] = []  # failed only because nothing was observed (null)
    for fe in [*check.expectations, *(extra or [])]:
        value = observed.get(fe.field)
        outcome = fe.expectation.check(value)
        details.append({
            "field": fe.field,
            "expected": fe.expectation.display(),
            "observed": expectmod.display_value(value, fe.unit),
            "ok": outcome.ok,
        })
        if not outcome.ok:
            message = expectmod.failure_message(fe.field, fe.expectation, value, fe.unit, outcome.problem)
            if value is None:
                unobserved.append((fe.field, message))
            else:
                failures.append(message)
    if unobserved and failures:  # consequences of what did fail (a login that stopped early): one clause
        names = [name for name, _ in unobserved]
        failures.append(t(f"not observed: {', '.join(names)}", f"未采集到：{'、'.join(names)}"))
    elif unobserved:
        failures.extend(message for _, message in unobserved)
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
    real = [d for d in details if not d["ok"] and d["observed"] != "null"]
    for d in details:
        if not d["ok"] and (d["observed"] != "null" or not real):  # advice for causes, not for consequences
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
        self._events: queue.Queue[tuple[tuple[str, str], int, _Attempt]] = queue.Queue()

    # -- one attempt ------------------------------------------------------------------------------------
    def _attempt(self, unit: Unit, transport: Transport) -> _Attempt:
        """Run the probe once, in the calling thread; every failure becomes an outcome, never an exception."""
        check = unit.check
        vantage = self.transports.get(check.from_, transport) if check.from_ else transport
        ctx = ProbeContext(vantage, unit.host, check.timeout, prefer_native=self.prefer_native,
                           host_transport=transport)
        try:
            if check.when:
                why = self._condition_fails(check, transport, unit.host)
                if why is not None:
                    return _Attempt(Status.SKIP, why)
            derived = self._derive(check, transport, unit.host) if check.deferred else []
            probe = check.probe()
            facts = probe.collect(ctx, check.params)
            note = probe.note(check.params, facts)
        except ProbeError as exc:
            return _Attempt(Status.ERROR, exc.message, hint=exc.hint)
        except TransportError as exc:
            message = getattr(exc, "message", None)  # HostUnavailable: a classified, bilingual reason
            if message is not None:
                return _Attempt(Status.ERROR, message, hint=getattr(exc, "hint", None),
                                reason=getattr(exc, "reason", None))
            return _Attempt(Status.ERROR, t(f"could not reach the host: {exc}", f"无法访问主机：{exc}"))
        except Exception as exc:  # noqa: BLE001 - any failure of a probe is a result, not a crash
            self._log("error", f"probe {check.probe_name} crashed on {unit.host}:\n{traceback.format_exc()}")
            where = f" (traceback in {self.debug_log.path})" if self.debug_log else ""
            where_zh = f"（详情见 {self.debug_log.path}）" if self.debug_log else ""
            return _Attempt(Status.ERROR, t(
                f"probe {check.probe_name} crashed: {type(exc).__name__}: {exc}{where}",
                f"探针 {check.probe_name} 运行出错：{type(exc).__name__}: {exc}{where_zh}",
            ))
        if not isinstance(facts, Model):
            facts = check.probe.Facts.model_validate(facts)
        status, message, details = evaluate(check, facts, note, derived)
        return _Attempt(status, message, facts.model_dump(mode="json"), details,
                        expected={fe.field: fe.expectation.display() for fe in derived})

    # -- facts of the host, for when: and derived expectations -----------------------------------------------
    def host_fact(self, transport: Transport, host: str, probe_name: str, timeout: float = 10.0) -> dict[str, Any]:
        """The facts of a parameterless probe on ``host``, observed once per scan and shared (within the time of
        the first check that asks)."""
        def observe() -> dict[str, Any] | ProbeError:
            probe_cls = self._probe_class(probe_name)
            ctx = ProbeContext(transport, host, timeout, prefer_native=self.prefer_native)
            try:
                return probe_cls().collect(ctx, probe_cls.Params.model_validate({})).model_dump(mode="json")
            except ProbeError as exc:
                return exc
            except TransportError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported on every check that needed it
                self._log("error", f"facts of {probe_name} on {host}:\n{traceback.format_exc()}")
                return ProbeError(t(f"{type(exc).__name__}: {exc}", f"{type(exc).__name__}: {exc}"))

        got = transport.memo(f"fact:{probe_name}", observe)
        if isinstance(got, ProbeError):
            raise ProbeError(t(f"the {probe_name} facts this check refers to could not be observed: "
                               f"{got.message.get('en', '')}",
                               f"该检查引用的 {probe_name} 信息无法采集：{got.message.get('zh-CN', '')}"), got.hint)
        return got

    def _probe_class(self, name: str) -> Any:
        for c in self.plan.checks:
            if name in c.fact_classes:
                return c.fact_classes[name]
            if c.probe_name == name:
                return c.probe
        from envprobe.registry import default_registry

        return default_registry().get(name)

    def _condition_fails(self, check: PlannedCheck, transport: Transport, host: str) -> Text | None:
        from envprobe.conditions import check_condition, dig

        for cond in check.when:
            if cond.fact is None:
                value = cond.value
            else:
                facts = self.host_fact(transport, host, cond.fact.probe, check.timeout)
                value = dig(facts, cond.path[1:])[1]
            ok, why = check_condition(cond, value)
            if not ok:
                return self.plan.masker.mask(why)
        return None

    def _derive(self, check: PlannedCheck, transport: Transport, host: str) -> list[FieldExpectation]:
        """Render expectations that refer to the host's facts, now that they can be known."""
        from envprobe.loader import render_with_facts

        facts = {name: self.host_fact(transport, host, name, check.timeout) for name in check.fact_probes}
        out: list[FieldExpectation] = []
        for d in check.deferred:
            try:
                rendered = render_with_facts(d.template, {**check.variables, **facts})
                exp = expectmod.parse(rendered, d.unit, where=f"{check.probe_name}.{d.field}")
            except Exception as exc:  # noqa: BLE001 - a template that fails on this host's facts
                raise ProbeError(t(f"the expectation for {d.field} could not be computed from this host's facts: "
                                   f"{exc}", f"无法根据本主机信息计算 {d.field} 的期望值：{exc}")) from exc
            out.append(FieldExpectation(d.field, rendered, exp, d.unit))
        return out

    def _attempt_thread(self, unit: Unit, number: int) -> None:
        try:
            outcome = self._attempt(unit, self.transports[unit.host])
        except BaseException as exc:  # noqa: BLE001 - the scheduler must always hear back
            self._log("error", f"internal error on {unit.check.id}@{unit.host}: {traceback.format_exc()}")
            outcome = _Attempt(Status.ERROR, t(f"internal error: {exc}", f"内部错误：{exc}"))
        self._events.put((unit.key, number, outcome))

    def _timed_out(self, check: PlannedCheck) -> _Attempt:
        return _Attempt(Status.ERROR, t(
            f"no answer within {check.timeout:g} s: the probe was abandoned (raise 'timeout:' if the host is slow)",
            f"{check.timeout:g} 秒内无结果，已放弃该探针（主机较慢时可调大 'timeout:'）",
        ))

    def _final(self, unit: Unit, state: _UnitState, outcome: _Attempt) -> Result:
        check = unit.check
        status, message = outcome.status, outcome.message
        if state.attempts > 1:
            message = join_text(message, t(f"(after {state.attempts} attempts)", f"（共尝试 {state.attempts} 次）"))
        result = Result(
            check=check.id,
            title=check.title,
            host=unit.host,
            from_=check.from_,
            probe=check.probe_name,
            severity=check.severity,
            status=status,
            message=message,
            expected={**{fe.field: fe.expectation.display() for fe in check.expectations}, **outcome.expected},
            observed=outcome.observed,
            started_at=iso(state.started),
            duration_ms=int((time.perf_counter() - state.t0) * 1000),
            hint=None if status is Status.PASS else (outcome.hint or advice_for(check, outcome.details)),
            attempts=state.attempts,
            details=outcome.details,
            reason=outcome.reason,
        )
        return self._mask(result)

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
        """Run every unit. One thread per attempt; this thread schedules, enforces the per-attempt timeout
        (abandoning an attempt that overstays; its command was started with the same deadline and is killed
        by the transport) and schedules retries after their delay, so no thread ever sleeps on a retry."""
        run = Run(version=__version__, checklist_name=self.plan.name, checklist_path=self.plan.path,
                  started_at=iso(utcnow()), lang=self.plan.lang)
        units = self.units()
        order = {u.key: i for i, u in enumerate(units)}
        by_key = {u.key: u for u in units}
        groups: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (checklist id, host) -> its units (loops)
        for u in units:
            groups.setdefault((u.check.group or u.check.id, u.host), []).append(u.key)
        results: dict[tuple[str, str], Result] = {}
        pending = list(units)
        running: dict[tuple[str, str], tuple[int, float]] = {}  # key -> (attempt number, deadline)
        retries: list[tuple[float, tuple[str, str]]] = []  # (when, key), kept sorted
        states: dict[tuple[str, str], _UnitState] = {}
        self._prefetch(units)
        facts_thread = None
        facts: dict[str, dict[str, Any]] = {}
        if self.host_facts:
            facts_thread = threading.Thread(target=self._collect_host_facts, args=(facts,), daemon=True)
            facts_thread.start()

        def start(unit: Unit) -> None:
            st = states.setdefault(unit.key, _UnitState(started=utcnow(), t0=time.perf_counter()))
            st.attempts += 1
            running[unit.key] = (st.attempts, time.monotonic() + unit.check.timeout + _GRACE)
            threading.Thread(target=self._attempt_thread, args=(unit, st.attempts), daemon=True,
                             name=f"check-{unit.check.id}@{unit.host}#{st.attempts}").start()

        def settle(key: tuple[str, str], outcome: _Attempt) -> None:
            unit, st = by_key[key], states[key]
            del running[key]
            if outcome.status not in (Status.PASS, Status.SKIP) and st.attempts <= unit.check.retries:
                self._log("info", f"check {unit.check.id} on {unit.host}: attempt {st.attempts} gave "
                                  f"{outcome.status.value}; retrying in {unit.check.retry_delay:.1f}s")
                retries.append((time.monotonic() + unit.check.retry_delay, key))
                retries.sort()
                return
            self._record(results, self._final(unit, st, outcome))

        try:
            while pending or running or retries:
                now = time.monotonic()
                while retries and retries[0][0] <= now and len(running) < self.forks:
                    key = retries.pop(0)[1]
                    self.transports[key[1]].forget()  # a retry observes afresh
                    start(by_key[key])
                for unit in list(pending):
                    if len(running) >= self.forks:
                        break
                    needs = [k for n in unit.check.needs for k in groups.get((n, unit.host), [])]
                    if any(k not in results for k in needs):
                        continue
                    pending.remove(unit)
                    blocked = [k[0] for k in needs if results[k].status not in _NEEDS_OK]
                    if blocked:
                        names = ", ".join(f"{b} ({results[(b, unit.host)].status.value})" for b in blocked)
                        self._record(results, self._skip(unit, t(f"skipped: needs {names}, which did not pass",
                                                                 f"已跳过：依赖的检查 {names} 未通过")))
                        continue
                    start(unit)
                if len(running) < self.forks and any(
                    all(k in results for n in u.check.needs for k in groups.get((n, u.host), [])) for u in pending
                ):
                    continue  # skips just made more units ready: schedule them without waiting
                wake = [d for _, d in running.values()] + [w for w, _ in retries[:1]]
                wait = max(0.0, min([*wake, now + 0.5]) - time.monotonic())
                try:
                    key, number, outcome = self._events.get(timeout=wait)
                    if running.get(key, (None,))[0] == number:
                        settle(key, outcome)
                except queue.Empty:
                    pass
                now = time.monotonic()
                for k, (_, deadline) in list(running.items()):
                    if deadline <= now:  # the attempt overstayed: abandon it (its late answer is ignored)
                        settle(k, self._timed_out(by_key[k].check))
        except KeyboardInterrupt:
            run.interrupted = True
            while True:  # keep what finished in the meantime
                try:
                    key, number, outcome = self._events.get_nowait()
                except queue.Empty:
                    break
                if running.get(key, (None,))[0] == number:
                    del running[key]
                    self._record(results, self._final(by_key[key], states[key], outcome))
            for unit in units:
                if unit.key not in results:
                    busy = unit.key in running or any(k == unit.key for _, k in retries)
                    was = "while it was running" if busy else "before it ran"
                    zh = "运行中被中断" if busy else "未开始即被中断"
                    results[unit.key] = self._skip(unit, t(f"interrupted {was}", zh))
        if facts_thread is not None:
            facts_thread.join(0 if run.interrupted else 15)
        fleet = self._consistency(units, results) if not run.interrupted else []
        for r in fleet:
            order[(r.check, r.host)] = len(order)
            self._record(results, r)
        host_names = sorted({u.host for u in units}) or ["local"]
        run.hosts = {h: {"address": getattr(self.transports.get(h), "address", None), "facts": facts.get(h, {})}
                     for h in host_names}
        run.results = sorted(results.values(), key=lambda r: order[(r.check, r.host)])
        run.finished_at = iso(utcnow())
        return run

    def _consistency(self, units: list[Unit], results: dict[tuple[str, str], Result]) -> list[Result]:
        """One fleet-wide result per check with ``consistent:``, judged on the hosts that observed it."""
        from envprobe.conditions import FLEET, consistency

        out: list[Result] = []
        seen: dict[str, list[Unit]] = {}
        for u in units:
            if u.check.consistent:
                seen.setdefault(u.check.id, []).append(u)
        for cid, us in seen.items():
            check = us[0].check
            answered = {u.host: results[u.key] for u in us
                        if u.key in results and results[u.key].status in (Status.PASS, Status.WARN, Status.FAIL)}
            missing = sorted(u.host for u in us if u.host not in answered)
            details: list[dict[str, Any]] = []
            messages: list[Text] = []
            failed = False
            status = Status.PASS
            if len(answered) < 2:
                status = Status.SKIP
                messages.append(t(f"consistency needs at least two hosts that answered; {len(answered)} did",
                                  f"一致性比较至少需要两台有结果的主机，实际 {len(answered)} 台"))
            else:
                for rule in check.consistent:
                    values = {h: r.observed.get(rule.field) for h, r in sorted(answered.items())}
                    ok, msg, detail = consistency(rule, values)
                    failed = failed or not ok
                    messages.append(msg)
                    details.append(detail)
                if failed:
                    status = Status.WARN if check.severity is Severity.RECOMMENDED else Status.FAIL
            if missing and status is not Status.SKIP:
                messages.append(t(f"not compared: {', '.join(missing)} (no observation)",
                                  f"未参与比较：{', '.join(missing)}（无采集结果）"))
            observed = {rule.field: {h: r.observed.get(rule.field) for h, r in sorted(answered.items())}
                        for rule in check.consistent}
            out.append(self._mask(Result(
                check=cid, title=join_text(check.title, t("(consistency across hosts)", "（主机间一致性）"), sep=" "),
                host=FLEET, from_=None, probe=check.probe_name, severity=check.severity, status=status,
                message=join_text(*messages, sep="; "),
                expected={rule.field: ("same on every host" if rule.spread is None else
                                       f"spread {rule.spread.display()}") for rule in check.consistent},
                observed=observed, started_at=iso(utcnow()), duration_ms=0,
                hint=None if status in (Status.PASS, Status.SKIP) else t(
                    "align the odd host with the others (or the others with it), then scan again",
                    "请将不一致的主机与其他主机调整一致后重新扫描"),
                details=details,
            )))
        return out

    def _log(self, level: str, text: str) -> None:
        if self.debug_log is not None:
            self.debug_log.write(level, text)

    def _record(self, results: dict[tuple[str, str], Result], r: Result) -> None:
        results[(r.check, r.host)] = r
        if self.on_result is not None:
            self.on_result(r)

    def _prefetch(self, units: list[Unit]) -> None:
        """Announce to each remote host every source its checks (and its summary) will read: the first check
        that asks then fetches them all in one batch. No I/O here, so hosts connect in parallel."""
        from envprobe.facts import summary_sources

        by_host: dict[str, list[Source]] = {}
        for u in units:
            tr = self.transports[u.host]
            if tr.is_local:
                continue
            try:
                by_host.setdefault(u.host, []).extend(u.check.probe().sources(u.check.params))
                for name in u.check.fact_probes:
                    cls = self._probe_class(name)
                    by_host[u.host].extend(cls().sources(cls.Params.model_validate({})))
            except Exception:  # noqa: BLE001 - the unit itself will report the problem
                continue
        for host, srcs in by_host.items():
            if self.host_facts:
                srcs = [*srcs, *summary_sources()]
            self.transports[host].expect_sources(srcs)

    def _collect_host_facts(self, out: dict[str, dict[str, Any]]) -> None:
        from envprobe.facts import host_summary

        def one(h: str) -> None:
            try:
                summary = host_summary(self.transports[h], prefer_native=self.prefer_native,
                                       log=lambda text: self._log("warning", text))
                out[h] = self.plan.masker.mask(summary)
            except Exception:  # noqa: BLE001 - the summary is a courtesy; checks carry the verdict
                self._log("warning", f"host facts for {h} failed:\n{traceback.format_exc()}")

        hosts = sorted({u.host for u in self.units()})
        if len(hosts) == 1:
            one(hosts[0])
            return
        threads = [threading.Thread(target=one, args=(h,), daemon=True, name=f"facts@{h}") for h in hosts]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
