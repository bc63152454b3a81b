"""Remote-scan benchmark: envprobe vs pytest-testinfra (paramiko backend) over real SSH, same 30 checks.

Scenarios (hosts are network namespaces on a bridge, each with its own sshd; see tests/netlab.py):
  one        one host on the bridge (sub-millisecond RTT)
  slow       one host behind the user-space delayed link at 50 ms RTT (25 ms each way)
  fleet      20 hosts at once
  floor      a bare paramiko script: connect + public-key auth + one exec on every host of the scenario
             (concurrently for the fleet), as a whole process

Each tool runs as a whole process, alternating, N times (median wall time, children's CPU time and peak RSS
from wait4). testinfra runs its 30 tests per host; for the fleet it gets pytest-xdist with one worker per
host (its documented way to parallelise), or runs serially when xdist is missing.

Run as root:  .venv/bin/python bench/ssh_scan.py [--runs N] [--hosts 20]
Only loopback, the bridge and the namespaces are used; nothing is resolved through the system resolver.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.netlab import NetLab  # noqa: E402
from tests.sshfix import SshServer, keygen  # noqa: E402

VENV = ROOT / ".venv" / "bin"
N_CHECKS = 30

FLOOR = """
import sys, paramiko, socket, threading
port, key, hosts = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
def one(host):
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # the floor measures time, it trusts nothing
    c.connect(host, port=port, username="root", key_filename=key, sock=s, allow_agent=False, look_for_keys=False)
    _, out, _ = c.exec_command("true")
    out.channel.recv_exit_status()
    c.close()
threads = [threading.Thread(target=one, args=(h,)) for h in hosts]
for t in threads: t.start()
for t in threads: t.join()
"""


def run_measured(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int, str, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, output.decode("utf-8", "replace"), proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--delay-ms", type=float, default=25.0, help="one-way delay of the slow link")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, sshd)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="envprobe-sshbench-"))
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    lab = NetLab()
    servers: list[SshServer] = []
    marker = subprocess.Popen([f"envprobe-ssh-bench-{os.getpid()}", "3600"], executable=shutil.which("sleep"),
                              stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        key = keygen(work / "client_key")
        hashed = work / "hashed.bin"
        hashed.write_bytes(os.urandom(4096))
        listen_port, free_port = 18461, 18462
        hosts = [lab.add_host() for _ in range(args.hosts)]
        slow_host = lab.add_host("slow")
        link = lab.delayed_link(None, slow_host, args.delay_ms)
        for h in hosts:
            servers.append(SshServer(work / h.name, key, address=h.address, port=22, netns=h.ns).start())
            h.listen_tcp(listen_port, address="127.0.0.1")
        servers.append(SshServer(work / "slow", key, address=link.server_address, port=22, netns=slow_host.ns).start())
        slow_host.listen_tcp(listen_port, address="127.0.0.1")
        u = os.uname()
        values = {
            "hostname": u.nodename, "kernel": u.release, "arch": u.machine, "listen_port": str(listen_port),
            "free_port": str(free_port), "marker": f"envprobe-ssh-bench-{os.getpid()}", "hash_file": str(hashed),
            "hash_sha256": hashlib.sha256(hashed.read_bytes()).hexdigest(), "work_dir": str(work),
        }
        base = yaml.safe_load((ROOT / "bench" / "checklist30.yaml").read_text(encoding="utf-8"))
        for c in base["checks"]:
            c["hosts"] = ["all"]
        checklist = work / "checklist30-remote.yaml"
        checklist.write_text(yaml.safe_dump(base, allow_unicode=True), encoding="utf-8")
        kh = work / "known_hosts"
        ssh_config = work / "ssh_config"
        ssh_config.write_text(f"Host *\n  User root\n  IdentityFile {key}\n  StrictHostKeyChecking no\n"
                              f"  UserKnownHostsFile {work / 'testinfra_known_hosts'}\n")

        def inventory(addrs: list[str], name: str) -> Path:
            p = work / name
            p.write_text(yaml.safe_dump({"hosts": {f"h{i + 1}": {"address": a, "user": "root", "key": str(key)}
                                                   for i, a in enumerate(addrs)}}))
            return p

        scenarios = {
            "one": [hosts[0].address],
            "slow": [link.server_address],
            "fleet": [h.address for h in hosts],
        }
        tenv = dict(env)
        tenv.update({f"BENCH_{k.upper()}": v for k, v in values.items()})
        has_xdist = subprocess.run([str(VENV / "python"), "-c", "import xdist"], capture_output=True).returncode == 0
        results: dict[str, dict[str, list[tuple[float, float, int]]]] = {}
        print(f"ssh benchmark: {N_CHECKS} checks per host, {args.runs} runs per tool and scenario; "
              f"slow link {2 * args.delay_ms:g} ms RTT; fleet {args.hosts} hosts; xdist for testinfra: {has_xdist}")
        for name, addrs in scenarios.items():
            inv = inventory(addrs, f"inv-{name}.yaml")
            out_json = work / f"r-{name}.json"
            ep = [str(VENV / "envprobe"), "scan", str(checklist), "-i", str(inv), "--known-hosts", str(kh),
                  "--forks", str(max(10, len(addrs) * 2)), "-q", "--json", str(out_json)]
            ep += [x for k, v in values.items() for x in ("--var", f"{k}={v}")]
            ti = [str(VENV / "python"), "-m", "pytest", str(ROOT / "bench" / "test_testinfra30.py"),
                  "--hosts=" + ",".join(f"paramiko://root@{a}" for a in addrs), f"--ssh-config={ssh_config}",
                  "-p", "no:cacheprovider", "-q", "-c", "/dev/null", "--rootdir", str(ROOT / "bench"),
                  "-p", "no:hypothesispytest"]
            if len(addrs) > 1 and has_xdist:
                ti += ["-n", str(len(addrs))]
            floor = [str(VENV / "python"), "-c", FLOOR, "22", str(key), *addrs]  # every host, concurrently
            # warm-up: record host keys (trust on first use), compile bytecode
            w = run_measured([*ep, "--accept-new-hostkeys"], env, ROOT)
            data = json.loads(out_json.read_text()) if out_json.exists() else {}
            passed = sum(1 for r in data.get("results", []) if r["status"] == "pass")
            if passed != N_CHECKS * len(addrs):
                print(w[3][-3000:])
                raise SystemExit(f"envprobe warm-up on {name}: {passed} of {N_CHECKS * len(addrs)} passed")
            w = run_measured(ti, tenv, ROOT)
            if w[4] != 0 or f"{N_CHECKS * len(addrs)} passed" not in w[3]:
                print(w[3][-3000:])
                raise SystemExit(f"testinfra warm-up on {name} failed")
            run_measured(floor, env, ROOT)
            res: dict[str, list[tuple[float, float, int]]] = {"envprobe": [], "testinfra": [], "floor": []}
            for i in range(args.runs):
                order = [("envprobe", ep, env), ("testinfra", ti, tenv), ("floor", floor, env)]
                if i % 2:
                    order.reverse()
                for tool, argv, e in order:
                    wall, cpu, rss, output, rc = run_measured(argv, e, ROOT)
                    if rc != 0:
                        print(output[-3000:])
                        raise SystemExit(f"{tool} failed on {name} (exit {rc})")
                    res[tool].append((wall, cpu, rss))
            results[name] = res
            med = {t: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                       max(x[2] for x in v)) for t, v in res.items()}
            print(f"\n[{name}] {len(addrs)} host(s)")
            print(f"  {'tool':<10} {'median wall s':>14} {'median cpu s':>13} {'peak RSS MB':>12}")
            for t, (wall, cpu, rss) in med.items():
                print(f"  {t:<10} {wall:>14.3f} {cpu:>13.3f} {rss / 1024:>12.1f}")
            print(f"  envprobe / floor: {med['envprobe'][0] / med['floor'][0]:.2f}x   "
                  f"testinfra / envprobe: {med['testinfra'][0] / med['envprobe'][0]:.1f}x")
            if name == "slow":
                st = link.stats()
                print(f"  delayed link lateness p50 {st.get('late_p50_ms', st.get('p50'))} ms (forwarder's own)")
        one = statistics.median(x[0] for x in results["one"]["envprobe"])
        fleet = statistics.median(x[0] for x in results["fleet"]["envprobe"])
        fleet_rss = max(x[2] for x in results["fleet"]["envprobe"]) / 1024
        slow = {t: statistics.median(x[0] for x in v) for t, v in results["slow"].items()}
        print("\ntargets:")
        print(f"  slow: envprobe <= 1.5x floor: {slow['envprobe'] / slow['floor']:.2f}x "
              f"({'met' if slow['envprobe'] <= 1.5 * slow['floor'] else 'NOT MET'}); "
              f">= 5x faster than testinfra: {slow['testinfra'] / slow['envprobe']:.1f}x "
              f"({'met' if slow['testinfra'] >= 5 * slow['envprobe'] else 'NOT MET'})")
        print(f"  fleet: {args.hosts} hosts <= 2x one host: {fleet / one:.2f}x "
              f"({'met' if fleet <= 2 * one else 'NOT MET'}); peak RSS {fleet_rss:.0f} MB "
              f"({'met' if fleet_rss <= 200 else 'NOT MET'})")
        return 0
    finally:
        marker.kill()
        marker.wait()
        for s in servers:
            s.stop()
        lab.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
