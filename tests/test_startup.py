"""Start-up cost of a scan: on Linux a local scan never imports psutil.

psutil costs ~12 ms of import time, paid by every scan that touches it; on Linux every probe the local-scan
benchmark uses (os, cpu, memory, disk, port, process, service, file, command) and the host summary read /proc,
sysfs and the standard library directly, so it must not be imported at all. Each test runs a real scan in a
fresh interpreter through ``python -m envprobe`` (the console entry point) under a tiny wrapper that records,
at exit, whether psutil was imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, need

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the direct paths are Linux's")

#: Runs envprobe's console entry point in this interpreter (argv: the report file, then envprobe's arguments)
#: and writes, at exit, which psutil modules were imported and the exit code.
_WRAPPER = r"""
import atexit, json, runpy, sys
report, sys.argv = sys.argv[1], ["envprobe", *sys.argv[2:]]
state = {"code": None}
def _write():
    with open(report, "w") as fh:
        json.dump({"psutil": sorted(m for m in sys.modules if m == "psutil" or m.startswith("psutil.")),
                   "code": state["code"]}, fh)
atexit.register(_write)
try:
    runpy.run_module("envprobe", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    state["code"] = exc.code
    raise
"""


def _scan(tmp_path: Path, checklist: str, variables: dict[str, str]) -> tuple[dict, dict]:
    """Scan ``checklist`` in a fresh interpreter: (the wrapper's report, the result JSON)."""
    report, result = tmp_path / "startup.json", tmp_path / "result.json"
    argv = [sys.executable, "-c", _WRAPPER, str(report), "scan", checklist, "-q", "--json", str(result)]
    for name, value in variables.items():
        argv += ["--var", f"{name}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120)
    assert report.exists(), f"the wrapper wrote no report; stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert result.exists(), f"envprobe wrote no result; stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(report.read_text()), json.loads(result.read_text(encoding="utf-8"))


@contextlib.contextmanager
def _bench_fixtures(tmp_path: Path) -> Iterator[dict[str, str]]:
    """What bench/checklist30.yaml looks at, as bench/local_scan.py starts it: a listener on 127.0.0.1 (in this
    process), a port nobody listens on, a ``sleep`` whose argv[0] is a unique marker, a file with a known
    SHA-256. The marker process is stopped by its PID."""
    sleep = shutil.which("sleep")
    need(sleep is not None, "the sleep command")
    assert sleep is not None
    data = b"envprobe start-up test\n" + os.urandom(512)
    hash_file = tmp_path / "hashed.bin"
    hash_file.write_bytes(data)
    marker = f"envprobe-startup-marker-{os.getpid()}-{os.urandom(4).hex()}"
    with socket.socket() as listener, socket.socket() as probe_port:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        probe_port.bind(("127.0.0.1", 0))  # reserve a port number, then free it for the "port is free" check
        free_port = probe_port.getsockname()[1]
        probe_port.close()
        proc = subprocess.Popen([marker, "600"], executable=sleep, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            u = os.uname()
            yield {
                "hostname": u.nodename, "kernel": u.release, "arch": u.machine,
                "listen_port": str(listener.getsockname()[1]), "free_port": str(free_port),
                "marker": marker, "hash_file": str(hash_file), "hash_sha256": hashlib.sha256(data).hexdigest(),
                "work_dir": str(tmp_path),
            }
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_benchmark_scan_never_imports_psutil(tmp_path: Path) -> None:
    """The local-scan benchmark's 30 checks (bench/checklist30.yaml) and the host summary, without psutil."""
    with _bench_fixtures(tmp_path) as values:
        report, result = _scan(tmp_path, "bench/checklist30.yaml", values)
    results = {r["check"]: r for r in result["results"]}
    assert len(results) == 30
    errors = {k: r["message"] for k, r in results.items() if r["status"] == "error"}
    assert not errors, errors
    # the probes really ran their native paths: the listener's owner was found and named, the facts are there
    listening = results["port-listening"]["observed"]
    assert listening["listening"] is True and listening["pid"] == os.getpid(), listening
    assert listening["process"], listening
    assert results["proc-marker"]["observed"]["count"] == 1
    facts = result["hosts"]["local"]["facts"]
    assert facts["memory"]["total_gb"] > 0 and facts["cpu"]["logical"] >= 1 and facts["disks"], facts
    assert report["psutil"] == [], f"a Linux scan imported {report['psutil']}"
    assert report["code"] in (0, 1), report  # 1: a check failed on this machine (judged above), not a crash


def test_other_native_paths_never_import_psutil(tmp_path: Path) -> None:
    """What the benchmark leaves out: CPU usage sampling, a service, a port on any address, a process by name,
    a disk listing through a symlink."""
    link = tmp_path / "link-to-tmp"
    link.symlink_to("/tmp")
    checklist = tmp_path / "checklist.yaml"
    checklist.write_text(
        "version: 1\nname: start-up\nchecks:\n"
        "  - {id: cpu-usage, probe: cpu, with: {sample_ms: 100}, expect: {usage_percent: '>= 0'}}\n"
        "  - {id: svc, probe: service, with: {name: envprobe-no-such-service}, expect: {exists: false}}\n"
        "  - {id: port-any, probe: port, with: {port: '{{ port }}'}, expect: {listening: true}}\n"
        "  - {id: proc-name, probe: process, with: {name: '{{ name }}'}, expect: {running: true}}\n"
        "  - {id: disk-link, probe: disk, with: {path: '{{ link }}'}, expect: {total_gb: '> 0'}}\n"
        "  - {id: memory, probe: memory, expect: {installed_gb: '> 0'}}\n",
        encoding="utf-8",
    )
    sleeper = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        with socket.socket(socket.AF_INET6) as listener:
            listener.bind(("::", 0))
            listener.listen(4)
            report, result = _scan(tmp_path, str(checklist), {
                "port": str(listener.getsockname()[1]), "name": "sleep", "link": str(link),
            })
    finally:
        if sleeper.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sleeper.pid, signal.SIGKILL)
        sleeper.wait()
    statuses = {r["check"]: (r["status"], r["message"]["en"]) for r in result["results"]}
    assert len(statuses) == 6
    assert not [k for k, (s, _) in statuses.items() if s == "error"], statuses
    assert statuses["cpu-usage"][0] == "pass" and statuses["port-any"][0] == "pass", statuses
    assert statuses["proc-name"][0] == "pass" and statuses["disk-link"][0] == "pass", statuses
    assert report["psutil"] == [], f"a Linux scan imported {report['psutil']}"
