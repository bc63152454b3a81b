"""Local-scan benchmark: envprobe against pytest-testinfra on the same 30 checks of this machine.

    .venv/bin/python bench/local_scan.py [--runs 7] [--as-is] [--save FILE]

What it does:

1. Starts the fixtures the checks look at: a TCP listener on 127.0.0.1 (a free port, in this process), a
   second port nobody listens on, a ``sleep`` process whose argv[0] is a unique marker, and a file with a
   known SHA-256 in a temp dir. Everything it started is stopped by PID (and the temp dir removed) at the
   end, also on an error, Ctrl-C or SIGTERM.
2. Runs both tools once, untimed (warm-up: page cache, bytecode cache), then N timed rounds. Each round runs
   both tools as whole processes, one after the other; the order flips every round (AB, BA, AB ...).
   Every run is checked: envprobe must exit 0 with 30 results that passed (read from its --json file),
   pytest must exit 0 and say "30 passed". Anything else stops the benchmark with the tool's output.
3. Measures per run the wall time and the CPU time (user + system) of the tool and everything it waited
   for (``getrusage(RUSAGE_CHILDREN)`` deltas), and prints the medians, the ratios envprobe / testinfra and
   whether the target (envprobe at most 0.5x testinfra's wall time) is met.

Environment (see child_env): by default both tools run with their bytecode cached, as on any machine where
they are installed, and pytest runs without the hypothesis plugin that this venv carries for envprobe's own
tests. ``--as-is`` runs the exact command lines in the caller's environment instead.

Also counted, for the record:

* ``procs`` / ``threads``: child processes (subprocess / fork / posix_spawn, via a Python audit hook) and
  threads (threading.Thread.start) each tool starts itself, in one extra untimed run per tool. Grandchildren
  (e.g. the commands a ``sh -c`` runs) are not in ``procs``.
* ``pids``: PIDs the kernel handed out during each timed run (``/proc/sys/kernel/ns_last_pid`` delta):
  processes *and* threads, machine-wide, so background activity adds to it. A rough figure.

Loopback only; no name is resolved (host name, kernel and architecture come from ``os.uname()``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
CHECKLIST = "bench/checklist30.yaml"
SUITE = "bench/test_testinfra30.py"
N_CHECKS = 30
TARGET = 0.5
RUN_TIMEOUT = 300.0

#: Runs a tool's entry module with an audit hook counting the processes it starts, and a wrapper counting the
#: threads it starts (Python 3.11 has no audit event for threads); writes "processes threads" to the file
#: named by BENCH_SPAWN_COUNT_FILE at exit. argv: module name, then the tool's arguments.
_COUNT_SPAWNS = r"""
import atexit, os, runpy, sys, threading
_n = {"proc": 0, "thread": 0}
_events = {"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system", "os.exec"}
def _hook(event, args):
    if event in _events:
        _n["proc"] += 1
_start = threading.Thread.start
def _counting_start(self, *a, **k):
    _n["thread"] += 1
    return _start(self, *a, **k)
threading.Thread.start = _counting_start
def _write():
    with open(os.environ["BENCH_SPAWN_COUNT_FILE"], "w") as fh:
        fh.write(f"{_n['proc']} {_n['thread']}")
atexit.register(_write)
sys.addaudithook(_hook)
module = sys.argv[1]
sys.argv = [module] + sys.argv[2:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


class BenchError(Exception):
    """A tool did not do the work it was asked to (or a fixture broke): the figures would mean nothing."""


@dataclass
class Fixtures:
    work_dir: Path
    listener: socket.socket
    listen_port: int
    free_port: int
    marker: str
    marker_proc: subprocess.Popen[bytes]
    hash_file: Path
    hash_sha256: str

    def values(self) -> dict[str, str]:
        u = os.uname()
        return {
            "hostname": u.nodename,
            "kernel": u.release,
            "arch": u.machine,
            "listen_port": str(self.listen_port),
            "free_port": str(self.free_port),
            "marker": self.marker,
            "hash_file": str(self.hash_file),
            "hash_sha256": self.hash_sha256,
            "work_dir": str(self.work_dir),
        }

    def verify(self) -> None:
        """Before each run: the marker still runs, the listener still listens, the free port is still free."""
        if self.marker_proc.poll() is not None:
            raise BenchError(f"the marker process {self.marker_proc.pid} exited ({self.marker_proc.returncode})")
        with socket.create_connection(("127.0.0.1", self.listen_port), timeout=2.0):
            pass
        self.listener.accept()[0].close()
        if not _bindable(self.free_port):
            raise BenchError(f"port {self.free_port} was meant to stay free but is in use now")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    """A free TCP port below the ephemeral range, so no outgoing connection takes it during the benchmark."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    top = max(low, 10001)
    for port in random.sample(range(10000, top), min(200, top - 10000)):
        if _bindable(port):
            return port
    raise BenchError("no free TCP port found on 127.0.0.1 between 10000 and the ephemeral range")


def start_fixtures(stack: list[Fixtures]) -> Fixtures:
    """Start everything the checks look at. Appends to ``stack`` as soon as there is something to clean up."""
    work_dir = Path(tempfile.mkdtemp(prefix="envprobe-bench-"))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    marker_proc: subprocess.Popen[bytes] | None = None
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listen_port = listener.getsockname()[1]
        free_port = _free_port()
        hash_file = work_dir / "hashed.bin"
        data = b"envprobe local-scan benchmark\n" + secrets.token_bytes(4096)
        hash_file.write_bytes(data)
        sleep = shutil.which("sleep")
        if not sleep:
            raise BenchError("no sleep command on PATH")
        marker = f"envprobe-bench-marker-{os.getpid()}-{secrets.token_hex(4)}"
        # argv[0] is the marker; the kernel's process name (comm) stays "sleep".
        marker_proc = subprocess.Popen(
            [marker, "3600"], executable=sleep, stdin=subprocess.DEVNULL, start_new_session=True
        )
    except BaseException:
        listener.close()
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    fx = Fixtures(work_dir, listener, listen_port, free_port, marker, marker_proc, hash_file,
                  hashlib.sha256(data).hexdigest())
    stack.append(fx)
    return fx


def stop_fixtures(fx: Fixtures) -> None:
    proc = fx.marker_proc
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    fx.listener.close()
    shutil.rmtree(fx.work_dir, ignore_errors=True)


@dataclass
class Tool:
    name: str
    argv: list[str]
    env: dict[str, str]
    check: Callable[[subprocess.CompletedProcess[str]], None]
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    procs: int | None = None
    threads: int | None = None


def child_env(fx: Fixtures, as_is: bool) -> dict[str, str]:
    """The environment both tools run in.

    By default, bytecode is cached the way it is on any machine where the tools are installed: a
    PYTHONDONTWRITEBYTECODE (or PYTHONPYCACHEPREFIX) inherited from the caller is dropped, so .pyc files live
    in the usual __pycache__ folders (git ignores them; the warm-up run writes what is missing). Without
    that, every run recompiles envprobe's (editable) modules and pytest re-rewrites the asserts of every
    plugin module — start-up cost no installed tool pays. A cache prefix elsewhere is no substitute: Python
    then looks up even the standard library's bytecode there, which slows every import of both tools.
    """
    env = dict(os.environ)
    if not as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def envprobe_tool(fx: Fixtures, as_is: bool) -> Tool:
    result_json = fx.work_dir / "envprobe-result.json"
    argv = [str(VENV_BIN / "envprobe"), "scan", CHECKLIST]
    for name, value in fx.values().items():
        argv += ["--var", f"{name}={value}"]
    argv += ["-q", "--json", str(result_json)]

    def check(proc: subprocess.CompletedProcess[str]) -> None:
        if proc.returncode != 0:
            raise BenchError(f"envprobe exited {proc.returncode}")
        try:
            doc = json.loads(result_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BenchError(f"envprobe wrote no readable result file {result_json}: {exc}") from exc
        results = doc.get("results", [])
        bad = [f"{r.get('check')}: {r.get('status')}" for r in results if r.get("status") != "pass"]
        if len(results) != N_CHECKS or bad:
            raise BenchError(f"envprobe: {len(results)} results, expected {N_CHECKS} passed; not passed: {bad}")
        result_json.unlink()

    return Tool("envprobe", argv, child_env(fx, as_is), check)


def testinfra_tool(fx: Fixtures, as_is: bool) -> Tool:
    # -c /dev/null and --rootdir bench: the project's [tool.pytest.ini_options] (testpaths, addopts) stay out.
    argv = [str(VENV_BIN / "python"), "-m", "pytest", SUITE, "--hosts=local://", "-p", "no:cacheprovider", "-q",
            "-c", "/dev/null", "--rootdir", "bench"]
    if not as_is:
        # hypothesis is in this venv for envprobe's own tests, not for testinfra; its pytest plugin would add
        # its import time to every testinfra run. A testinfra user's venv does not have it.
        argv += ["-p", "no:hypothesispytest"]
    env = child_env(fx, as_is)
    env.update({f"BENCH_{k.upper()}": v for k, v in fx.values().items()})

    def check(proc: subprocess.CompletedProcess[str]) -> None:
        last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        if proc.returncode != 0 or not re.fullmatch(rf"=*\s*{N_CHECKS} passed in [0-9.]+s\s*=*", last):
            raise BenchError(f"pytest-testinfra exited {proc.returncode}; last line {last!r}, "
                             f"expected '{N_CHECKS} passed'")

    return Tool("testinfra", argv, env, check)


def _last_pid() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/ns_last_pid").read_text())
    except (OSError, ValueError):
        return None


def run_once(tool: Tool, fx: Fixtures, record: bool) -> None:
    fx.verify()
    pid0 = _last_pid()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(tool.argv, cwd=ROOT, env=tool.env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{tool.name} took more than {RUN_TIMEOUT:.0f} s") from exc
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid1 = _last_pid()
    try:
        tool.check(proc)
    except BenchError as exc:
        raise BenchError(f"{exc}\n--- command: {' '.join(tool.argv)}\n--- stdout:\n{proc.stdout}\n"
                         f"--- stderr:\n{proc.stderr}") from None
    if record:
        tool.walls.append(wall)
        tool.cpus.append((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime))
        if pid0 is not None and pid1 is not None and pid1 >= pid0:
            tool.pids.append(pid1 - pid0)


def count_spawns(tool: Tool, fx: Fixtures) -> None:
    """One untimed run of the tool's entry module under the counting hooks; sets tool.procs and tool.threads."""
    count_file = fx.work_dir / f"spawns-{tool.name}.txt"
    module = "envprobe" if tool.name == "envprobe" else "pytest"
    args: Sequence[str] = tool.argv[1:] if tool.name == "envprobe" else tool.argv[3:]
    argv = [str(VENV_BIN / "python"), "-c", _COUNT_SPAWNS, module, *args]
    env = dict(tool.env, BENCH_SPAWN_COUNT_FILE=str(count_file))
    fx.verify()
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)
    try:
        tool.check(proc)
    except BenchError as exc:
        raise BenchError(f"(counting run) {exc}\n--- stdout:\n{proc.stdout}\n--- stderr:\n{proc.stderr}") from None
    procs, threads = count_file.read_text().split()
    tool.procs, tool.threads = int(procs), int(threads)


def _med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def _opt(n: int | None) -> str:
    return "n/a" if n is None else str(n)


def report(tools: Sequence[Tool], runs: int) -> dict[str, object]:
    ep, ti = tools
    print()
    print(f"{'run':>4}  " + "  ".join(f"{t.name + ' wall / cpu s':>23}" for t in tools))
    for i in range(runs):
        print(f"{i + 1:>4}  " + "  ".join(f"{t.walls[i]:>11.3f} / {t.cpus[i]:>9.3f}" for t in tools))
    print()
    print(f"{'tool':<10} {'median wall s':>14} {'median cpu s':>13} {'min wall s':>11} {'procs':>6} {'threads':>8} "
          f"{'pids (median)':>14}")
    for t in tools:
        pids = f"{_med(t.pids):.0f}" if t.pids else "n/a"
        print(f"{t.name:<10} {_med(t.walls):>14.3f} {_med(t.cpus):>13.3f} {min(t.walls):>11.3f} {_opt(t.procs):>6} "
              f"{_opt(t.threads):>8} {pids:>14}")
    wall_ratio = _med(ep.walls) / _med(ti.walls)
    cpu_ratio = _med(ep.cpus) / _med(ti.cpus)
    met = wall_ratio <= TARGET
    print()
    print(f"ratio envprobe/testinfra: wall {wall_ratio:.2f}x, cpu {cpu_ratio:.2f}x (medians of {runs} runs each)")
    print(f"target: envprobe wall <= {TARGET}x testinfra: {'MET' if met else 'NOT MET'}"
          f" (cpu ratio {'also within' if cpu_ratio <= TARGET else 'not within'} {TARGET}x)")
    return {
        "runs": runs,
        "tools": {t.name: {"argv": t.argv, "wall_s": t.walls, "cpu_s": t.cpus, "pids": t.pids,
                           "median_wall_s": _med(t.walls), "median_cpu_s": _med(t.cpus),
                           "procs": t.procs, "threads": t.threads} for t in tools},
        "ratio_wall": wall_ratio,
        "ratio_cpu": cpu_ratio,
        "target": TARGET,
        "target_met": met,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="timed runs per tool (default 7)")
    ap.add_argument("--as-is", action="store_true",
                    help="run both tools in the caller's environment as it is (keeps PYTHONDONTWRITEBYTECODE, "
                         "uses no bytecode cache of its own) and leave pytest's hypothesis plugin loaded")
    ap.add_argument("--no-count", action="store_true", help="skip the extra runs that count processes and threads")
    ap.add_argument("--save", metavar="FILE", help="also write the figures as JSON to FILE")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    def _terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    stack: list[Fixtures] = []
    try:
        fx = start_fixtures(stack)
        tools = [envprobe_tool(fx, args.as_is), testinfra_tool(fx, args.as_is)]
        u = os.uname()
        say(f"local-scan benchmark: {N_CHECKS} checks, {args.runs} timed runs per tool, alternating")
        say(f"machine: {os.cpu_count()} CPUs, {_cpu_model()}, kernel {u.release}, Python {sys.version.split()[0]}")
        say("environment: " + ("as is (" + ", ".join(f"{k}={os.environ[k]}" for k in
                                                      ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
                                                      if k in os.environ) + ")"
                               if args.as_is else "bytecode cached in __pycache__; pytest hypothesis plugin off"))
        say(f"fixtures: listener 127.0.0.1:{fx.listen_port}, free port {fx.free_port}, "
            f"marker pid {fx.marker_proc.pid} ({fx.marker}), file {fx.hash_file}")
        for tool in tools:
            say(f"{tool.name}: {' '.join(_short_arg(a) for a in tool.argv)}")
        for tool in tools:  # warm-up, untimed: page cache and bytecode cache
            run_once(tool, fx, record=False)
        if not args.no_count:
            for tool in tools:
                count_spawns(tool, fx)
        for i in range(args.runs):
            for tool in tools if i % 2 == 0 else reversed(tools):
                run_once(tool, fx, record=True)
            say(f"round {i + 1}/{args.runs} done")
        figures = report(tools, args.runs)
        if args.save:
            figures["as_is"] = args.as_is
            Path(args.save).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        return 0
    except BenchError as exc:
        print(f"local_scan: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for fx in stack:
            stop_fixtures(fx)


def say(text: str) -> None:
    print(text, flush=True)


def _short_arg(a: str) -> str:
    a = a.replace(str(ROOT) + "/", "")
    return a if len(a) <= 60 else a[:57] + "..."


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
