"""The runner: needs, retries, timeouts, crashes as results, bounded concurrency, interrupts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from envprobe.loader import load_text
from envprobe.model import Status
from envprobe.registry import Registry
from envprobe.runner import Runner
from envprobe.transport.local import LocalTransport


def run_text(text: str, tmp_path: Path, forks: int = 10, environ: dict[str, str] | None = None):
    (tmp_path / "c.yaml").write_text(text)
    plan = load_text(text, str(tmp_path / "c.yaml"), Registry(), environ=environ or {}, base_dir=tmp_path)
    return Runner(plan, {"local": LocalTransport()}, forks=forks, host_facts=False).run()


def by_id(run):
    return {r.check: r for r in run.results}


def test_needs_skip_with_reason_and_warn_does_not_block(tmp_path: Path):
    run = run_text("""\
version: 1
checks:
  - {id: broken, probe: command, with: {run: "exit 2"}, expect: {exit_code: 0}}
  - {id: after-broken, probe: command, with: {run: "true"}, needs: [broken]}
  - {id: meh, probe: command, with: {run: "exit 1"}, expect: {exit_code: 0}, severity: recommended}
  - {id: after-meh, probe: command, with: {run: "true"}, needs: [meh]}
  - {id: chain, probe: command, with: {run: "true"}, needs: [after-broken]}
""", tmp_path)
    r = by_id(run)
    assert r["broken"].status is Status.FAIL
    assert r["after-broken"].status is Status.SKIP
    assert "needs broken (fail)" in r["after-broken"].message["en"]
    assert "依赖的检查 broken (fail) 未通过" in r["after-broken"].message["zh-CN"]
    assert r["meh"].status is Status.WARN
    assert r["after-meh"].status is Status.PASS
    assert r["chain"].status is Status.SKIP and "after-broken (skip)" in r["chain"].message["en"]
    assert [x.check for x in run.results] == ["broken", "after-broken", "meh", "after-meh", "chain"]
    assert run.summary["verdict"] == "not-ready"


def test_retry_until_it_passes(tmp_path: Path):
    counter = tmp_path / "n"
    run = run_text(f"""\
version: 1
checks:
  - id: flaky
    probe: command
    with: {{run: "echo x >> {counter}; test $(wc -l < {counter}) -ge 3"}}
    expect: {{exit_code: 0}}
    retry: {{times: 5, delay: 50ms}}
  - id: hopeless
    probe: command
    with: {{run: "exit 1"}}
    expect: {{exit_code: 0}}
    retry: {{times: 2, delay: 10ms}}
""", tmp_path)
    r = by_id(run)
    assert r["flaky"].status is Status.PASS and r["flaky"].attempts == 3
    assert r["hopeless"].status is Status.FAIL and r["hopeless"].attempts == 3
    assert "after 3 attempts" in r["hopeless"].message["en"]


def test_timeout_becomes_an_error_and_kills_the_command(tmp_path: Path):
    marker = f"envprobe-timeout-{os.getpid()}"
    t0 = time.perf_counter()
    run = run_text(f"""\
version: 1
checks:
  - {{id: slow, probe: command, timeout: 1, with: {{run: "sleep 30; echo {marker}"}}}}
""", tmp_path)
    elapsed = time.perf_counter() - t0
    r = by_id(run)["slow"]
    assert r.status is Status.ERROR
    assert "1 s" in r.message["en"] and "1 秒" in r.message["zh-CN"]
    assert elapsed < 5
    time.sleep(0.2)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"sleep 30; echo {marker}" not in ps


CRASHER = '''
from typing import Any
from envprobe.model import t
from envprobe.probes.base import Facts, Probe


class Boom(Probe):
    name = "boom"
    summary = t("crashes", "崩溃")

    def collect(self, ctx, params: Any):
        raise ZeroDivisionError("deliberate")
'''


def test_crashing_probe_is_an_error_result_not_a_dead_scan(tmp_path: Path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "boom.py").write_text(CRASHER)
    run = run_text("""\
version: 1
probe_paths: [p]
checks:
  - {id: boom, probe: boom}
  - {id: fine, probe: command, with: {run: "true"}}
""", tmp_path)
    r = by_id(run)
    assert r["boom"].status is Status.ERROR
    assert "ZeroDivisionError: deliberate" in r["boom"].message["en"]
    assert "Traceback" not in r["boom"].message["en"]
    assert r["fine"].status is Status.PASS
    assert run.summary["verdict"] == "unknown"
    sys.modules.pop("envprobe_local_probes.p.boom", None)


def test_concurrency_is_bounded_by_forks(tmp_path: Path):
    log = tmp_path / "log"
    checks = "\n".join(
        f'  - {{id: c{i}, probe: command, with: {{run: "echo start >> {log}; sleep 0.3; echo end >> {log}"}}}}'
        for i in range(6)
    )
    t0 = time.perf_counter()
    run_text("version: 1\nchecks:\n" + checks + "\n", tmp_path, forks=2)
    serial2 = time.perf_counter() - t0
    lines = log.read_text().split()
    depth = peak = 0
    for word in lines:
        depth += 1 if word == "start" else -1
        peak = max(peak, depth)
    assert peak == 2
    log.unlink()
    t0 = time.perf_counter()
    run_text("version: 1\nchecks:\n" + checks + "\n", tmp_path, forks=6)
    parallel = time.perf_counter() - t0
    assert parallel < serial2  # 6 at once beats 3 rounds of 2


def test_secret_masked_in_results(tmp_path: Path):
    run = run_text("""\
version: 1
checks:
  - {id: leak, probe: command, with: {run: "echo pw=${env:DB_PW}; echo ${env:DB_PW} >&2; exit 1"}, expect: {stdout: "contains pw"}}
""", tmp_path, environ={"DB_PW": "Sup3r-Secret!"})
    dumped = json.dumps(run.to_dict(), ensure_ascii=False)
    assert "Sup3r-Secret!" not in dumped
    assert "pw=******" in dumped


def test_interrupt_writes_partial_results_and_exits_130(tmp_path: Path):
    cl = tmp_path / "c.yaml"
    cl.write_text("""\
version: 1
checks:
  - {id: quick, probe: command, with: {run: "true"}}
  - {id: long, probe: command, timeout: 60, with: {run: "sleep 30"}}
  - {id: later, probe: command, needs: [long], with: {run: "true"}}
""")
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "envprobe", "scan", str(cl), "--json", str(out), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    data = json.loads(out.read_text())
    status = {r["check"]: r["status"] for r in data["results"]}
    assert data["interrupted"] is True
    assert status == {"quick": "pass", "long": "skip", "later": "skip"}
    msgs = {r["check"]: r["message"]["en"] for r in data["results"]}
    assert msgs["long"] == "interrupted while it was running"
    assert msgs["later"] == "interrupted before it ran"
    assert "Traceback" not in stderr


def test_a_timed_out_attempt_is_retried(tmp_path: Path):
    counter = tmp_path / "n"
    t0 = time.perf_counter()
    run = run_text(f"""\
version: 1
checks:
  - id: hangs-once
    probe: command
    timeout: 1
    with: {{run: "echo x >> {counter}; if [ $(wc -l < {counter}) -eq 1 ]; then sleep 20; fi; echo done"}}
    expect: {{stdout: done}}
    retry: {{times: 1, delay: 100ms}}
""", tmp_path)
    r = by_id(run)["hangs-once"]
    assert r.status is Status.PASS and r.attempts == 2, r.message
    assert time.perf_counter() - t0 < 6


def test_chains_of_skips_do_not_stall_the_scheduler(tmp_path: Path):
    checks = ["  - {id: c0, probe: command, with: {run: 'exit 1'}, expect: {exit_code: 0}}"]
    # declared in reverse order, so each skip makes the previous entry ready
    checks += [f"  - {{id: c{i}, probe: command, with: {{run: 'true'}}, needs: [c{i - 1}]}}" for i in range(12, 0, -1)]
    t0 = time.perf_counter()
    run = run_text("version: 1\nchecks:\n" + "\n".join(checks) + "\n", tmp_path, forks=1)
    assert time.perf_counter() - t0 < 2
    statuses = {r.check: r.status for r in run.results}
    assert statuses["c0"] is Status.FAIL
    assert all(statuses[f"c{i}"] is Status.SKIP for i in range(1, 13))


def test_nulls_that_follow_a_real_failure_are_one_clause_and_get_no_advice(tmp_path: Path):
    run = run_text("""\
version: 1
checks:
  - {id: gone, probe: file, with: {path: /nonexistent/envprobe.conf}, expect: {exists: true, size: "> 0", mode: "0644"}}
  - {id: only-nulls, probe: file, with: {path: /nonexistent/envprobe.conf}, expect: {size: "> 0"}}
""", tmp_path)
    r = by_id(run)
    en = r["gone"].message["en"]
    assert en.startswith("exists is false, expected true; not observed: size, mode")
    assert "未采集到：size、mode" in r["gone"].message["zh-CN"]
    from envprobe.probes.file import FileProbe

    assert r["gone"].hint == FileProbe.advice["exists"]  # the cause's advice, not the consequences'
    # with nothing but nulls, each says what it expected
    assert r["only-nulls"].message["en"].startswith("size is null, expected > 0 (nothing was observed)")
    assert [d["field"] for d in r["gone"].details if not d["ok"]] == ["exists", "size", "mode"]
