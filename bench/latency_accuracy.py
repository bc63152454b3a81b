"""Latency probe accuracy over the user-space delayed link, and the probes' own overhead on loopback.

Run as root (network namespaces, TUN devices):

    .venv/bin/python bench/latency_accuracy.py            # --delays 10,40,100 --count 20 --interval 0.1 --runs 3

For each one-way delay it builds a link from this process to a namespace host (tests/netlab.py), then measures
the round trip (expected: 2 × delay) with the ``latency`` probe — TCP connect samples, ICMP through a raw socket
(native path) and ICMP through the ``ping`` command (shell path, the way a remote vantage host is measured) —
and with iputils ``ping`` itself as the reference, alternating the four in every run. It also reads the
forwarder's own lateness (time a packet was written minus its due time). Then, on loopback: the probes' cost
per sample and per check against a bare ``socket.create_connection`` loop and ``ping``.

Prints Markdown tables (the figures in bench/README.md come from here).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from envprobe.probes.base import ProbeContext  # noqa: E402
from envprobe.probes.net import LatencyParams, LatencyProbe, TcpParams, TcpProbe  # noqa: E402
from envprobe.transport.local import LocalTransport  # noqa: E402
from tests.netlab import NetLab, popen, stop_process  # noqa: E402

PORT = 9000


def probe(native: bool = True, **kw):
    ctx = ProbeContext(LocalTransport(), "local", 120, prefer_native=native)
    t0 = time.perf_counter()
    facts = LatencyProbe().collect(ctx, LatencyParams(**kw))
    return facts, time.perf_counter() - t0


def ping_p50(address: str, count: int, interval: float) -> tuple[float, float]:
    out = subprocess.run(["ping", "-n", "-c", str(count), "-i", f"{interval:g}", "-W", "2", address],
                         capture_output=True, text=True, timeout=120).stdout
    rtts = sorted(float(x) for x in re.findall(r"time=([\d.]+) ms", out))
    return statistics.median(rtts), len(rtts) / count


def accuracy(lab: NetLab, delays: list[float], count: int, interval: float, runs: int) -> None:
    host = lab.add_host("srv")
    link = lab.delayed_link(None, host, delays[0])
    host.listen_tcp(PORT, address=link.b_address)
    print(f"\n### Accuracy: count {count}, interval {interval:g} s, {runs} runs per cell (median of the runs' "
          f"p50; range in brackets)\n")
    print("| one-way delay | expected RTT | tcp p50 | icmp (raw socket) p50 | icmp (ping command) p50 | "
          "iputils ping p50 | tcp jitter | forwarder lateness p50 / p99 / max |")
    print("|---|---|---|---|---|---|---|---|")
    for delay in delays:
        link.set_delay(delay)
        probe(host=link.b_address, port=PORT, count=3, interval=0.05)  # warm-up (ARP-free link; caches)
        link.stats(reset=True)
        cells: dict[str, list[float]] = {"tcp": [], "icmp": [], "ping-cmd": [], "ping": []}
        jitter: list[float] = []
        for _ in range(runs):
            f, _ = probe(host=link.b_address, port=PORT, count=count, interval=interval)
            assert f.received == count, f
            cells["tcp"].append(f.p50_ms)
            jitter.append(f.jitter_ms)
            f, _ = probe(host=link.b_address, method="icmp", count=count, interval=interval)
            assert f.received == count and f.sampler == "icmp-raw-socket", f
            cells["icmp"].append(f.p50_ms)
            f, _ = probe(native=False, host=link.b_address, method="icmp", count=count, interval=interval)
            assert f.received == count and f.sampler == "icmp-ping-command", f
            cells["ping-cmd"].append(f.p50_ms)
            p50, ok = ping_p50(link.b_address, count, interval)
            assert ok == 1.0
            cells["ping"].append(p50)
        late = link.stats()["lateness_ms"]

        def cell(values: list[float]) -> str:
            return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"

        print(f"| {delay:g} ms | {2 * delay:g} ms | {cell(cells['tcp'])} | {cell(cells['icmp'])} | "
              f"{cell(cells['ping-cmd'])} | {cell(cells['ping'])} | {statistics.median(jitter):.3f} | "
              f"{late['p50']:.3f} / {late['p99']:.3f} / {late['max']:.3f} |")


def overhead(count: int, runs: int) -> None:
    listener = popen([sys.executable, "-c", (
        "import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "s.bind(('127.0.0.1',0));s.listen(512);print(s.getsockname()[1],flush=True)\n"
        "while True:\n c,_=s.accept();c.close()\n")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(listener.stdout.readline())
        interval = 0.2
        rows = []
        bare, tcp_p50, icmp_p50, ping_ref, tcp_wall, icmp_wall, one_tcp = [], [], [], [], [], [], []
        for _ in range(runs):
            samples = []
            for _ in range(count):
                t0 = time.perf_counter()
                socket.create_connection(("127.0.0.1", port), 1).close()
                samples.append((time.perf_counter() - t0) * 1000)
                time.sleep(interval)
            bare.append(statistics.median(samples))
            f, wall = probe(host="127.0.0.1", port=port, count=count, interval=interval)
            tcp_p50.append(f.p50_ms)
            tcp_wall.append(wall - (count - 1) * interval)
            f, wall = probe(host="127.0.0.1", method="icmp", count=count, interval=interval)
            icmp_p50.append(f.p50_ms)
            icmp_wall.append(wall - (count - 1) * interval)
            ping_ref.append(ping_p50("127.0.0.1", count, interval)[0])
            ctx = ProbeContext(LocalTransport(), "local", 10)
            probe_tcp, params = TcpProbe(), TcpParams(host="127.0.0.1", port=port)
            t0 = time.perf_counter()
            for _ in range(100):
                probe_tcp.collect(ctx, params)
            one_tcp.append((time.perf_counter() - t0) * 1000 / 100)
        med = statistics.median
        rows.append(("bare `socket.create_connection` + close, per sample (p50)", f"{med(bare):.3f} ms"))
        rows.append((f"`latency` tcp p50 (count {count})", f"{med(tcp_p50):.3f} ms"))
        rows.append(("`latency` tcp: wall time − (count−1) × interval", f"{med(tcp_wall) * 1000:.2f} ms"))
        rows.append((f"iputils `ping` p50 (count {count})", f"{med(ping_ref):.3f} ms"))
        rows.append(("`latency` icmp (raw socket) p50", f"{med(icmp_p50):.3f} ms"))
        rows.append(("`latency` icmp: wall time − (count−1) × interval", f"{med(icmp_wall) * 1000:.2f} ms"))
        rows.append(("one `tcp` check (collect: checks, connect, close), mean of 100", f"{med(one_tcp):.3f} ms"))
        print(f"\n### Overhead on loopback (127.0.0.1, listener in another process; median of {runs} runs)\n")
        print("| what | figure |\n|---|---|")
        for what, fig in rows:
            print(f"| {what} | {fig} |")
    finally:
        stop_process(listener)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delays", default="10,40,100", help="one-way delays in ms (default 10,40,100)")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root: network namespaces and TUN devices", file=sys.stderr)
        return 2
    print(f"# latency accuracy — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with NetLab() as lab:
        accuracy(lab, [float(x) for x in args.delays.split(",")], args.count, args.interval, args.runs)
    overhead(10, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
