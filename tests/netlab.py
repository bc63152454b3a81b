"""Network namespaces for envprobe's tests: hosts on a bridge, firewalls inside them, and a slow link without netem.

Reused by later issues (SSH hosts, database clients in namespaces, the slow-UI ladder), so it is a small
library with fixtures at the end.

**Hosts.** :class:`NetLab` creates one Linux bridge in this process's network namespace and, per host, a
network namespace with a veth pair whose outer end is enslaved to the bridge. The bridge holds
``10.77.X.1/24`` and hosts get ``10.77.X.11``, ``.12`` …; ``X`` is chosen so the /24 overlaps no route or
address that exists when the lab starts (checked under a machine-wide lock, so parallel labs do not pick the
same one). Hosts have ``lo`` up and **no default route**, and ``ip_forward`` is left as it is: hosts reach
each other and this process through the bridge, and nothing they send can leave the machine. Addresses from
``10.77.X.200`` up are kept for delayed links.

**Names and cleanup.** Every namespace, bridge, veth and TUN device is named ``ep<pid><letter>-…`` (the PID
of the creating process, a letter per lab in that process; interface names stay within Linux's 15
characters). Teardown kills the processes the lab started, by their recorded PIDs (and, by PID, anything else
still inside its namespaces), then deletes the namespaces, links and ``/etc/netns/<ns>`` folders. It runs
from :meth:`NetLab.close`, from the pytest fixtures' finalisers and from ``atexit``. If a test process dies
hard (SIGKILL, a crash), the next lab to start removes every ``ep<pid>…`` object whose PID no longer runs.
Processes are also started with ``PR_SET_PDEATHSIG`` (SIGKILL), so a listener dies with the thread that
started it: start them from the thread that owns the lab (pytest's main thread).

**A slow link without netem.** This kernel has no ``sch_netem``, so :meth:`NetLab.delayed_link` delays
packets in user space. A forwarder process (this file, run as ``python tests/netlab.py forward …``) opens two
TUN devices (layer 3, no packet info); the lab moves each into its namespace (or leaves one in this
process's namespace, so the test process itself is the client) and gives them point-to-point addresses
(``10.77.X.200`` peer ``.201``, …). A packet the client's kernel routes into its TUN is read by the forwarder,
held ``delay_ms`` in a heap keyed by due time, and written to the other TUN, where the server's kernel
receives it as if it came off a wire; replies take the same way back. Both directions are delayed, so ICMP
echoes, TCP handshakes and everything else see a round trip of 2 × ``delay_ms``; nothing is rewritten
(checksums stay valid). Optional random loss drops that share of packets. The forwarder runs with real-time priority
(SCHED_FIFO, so a busy machine delays it little), waits in ``select`` with 1 ns timer slack until 0.5 ms before
the next packet is due and polls the rest of the way, and measures its own *lateness* (write time − due time) per
packet: :meth:`DelayedLink.stats` reports it (p50/p99/max). It exits when its stdin closes, so it never
outlives the lab, and its TUN devices vanish with it. Delay and loss can be changed while it runs.

**Vantage hosts.** :meth:`Host.transport` gives an envprobe :class:`Transport` whose commands run in the
host's namespace (``ip netns exec``) and whose ``connect()`` opens sockets there (from a thread that joined
the namespace with ``setns``) — a stand-in for the SSH transport's ``direct-tcpip`` channels, so probes can
be run *from* a host in-process.

Tests that need root, ``ip``, ``/dev/net/tun``, iptables or ping call :func:`need_netlab`, which skips on a
laptop and fails under CI (``tests.conftest.need``).

**Use.** Import the fixtures into a test module (``from tests.netlab import netlab  # noqa: F401``): ``netlab``
(a module-scoped lab without hosts) and ``slow_pair`` (two hosts with a 2 × 40 ms link). Or build one by hand::

    with NetLab() as lab:
        db = lab.add_host("db")                       # db.ns, db.address (10.77.X.11)
        db.listen_tcp(5432)                           # accepting server inside the namespace
        db.iptables("-A INPUT -p tcp --dport 1433 -j DROP")
        link = lab.delayed_link(None, db, 25)         # this process → db at link.b_address, RTT 50 ms
        pair = lab.delayed_pair(40)                   # pair.client → pair.server_address, RTT 80 ms
        pair.client.exec(["ping", "-c", "3", pair.server_address])
        link.set_delay(100); link.set_loss(5); link.stats()

Labs take a machine-wide lock (``/tmp/envprobe-netlab.lock``) while they clean up and pick their network;
never hold it while waiting for another process that may start a lab.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import fcntl
import heapq
import ipaddress
import json
import os
import queue
import random
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
LOCK_PATH = "/tmp/envprobe-netlab.lock"
NAME_RE = re.compile(r"^ep(\d+)([a-z])-")
NETNS_ETC = Path("/etc/netns")
_letters = iter("abcdefghijklmnopqrstuvwxyz" * 40)
_letters_lock = threading.Lock()

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_TIMERSLACK = 29


# ===========================================================================================================
# the forwarder (python tests/netlab.py forward TUN_A TUN_B DELAY_MS LOSS_PERCENT)
# ===========================================================================================================
_libc: Any = None


def libc() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


SPIN = 0.0005
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def forward(tun_a: str, tun_b: str, delay_ms: float, loss_percent: float) -> int:
    """Hold each packet ``delay_ms`` between two TUN devices, both ways. Commands on stdin, one per line:
    ``delay MS``, ``loss PERCENT``, ``stats`` (prints a JSON line), ``reset``; EOF on stdin ends it."""
    with contextlib.suppress(Exception):
        libc().prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    with contextlib.suppress(OSError, AttributeError):  # real-time priority: on time even when the CPUs are busy
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    fa, fb = open_tun(tun_a), open_tun(tun_b)
    other = {fa: fb, fb: fa}
    delay = delay_ms / 1000.0
    loss = loss_percent / 100.0
    rng = random.Random(1234)
    heap: list[tuple[float, int, int, bytes]] = []
    counter = 0
    late: list[float] = []
    forwarded = dropped = write_errors = 0
    inbuf = b""
    os.set_blocking(0, False)
    print("ready", flush=True)
    clock = time.perf_counter
    while True:
        now = clock()
        while heap and heap[0][0] <= now:
            due, _, fd, pkt = heapq.heappop(heap)
            try:
                os.write(fd, pkt)
                forwarded += 1
            except OSError:
                write_errors += 1
            now = clock()
            if len(late) < 1_000_000:
                late.append(now - due)
        # wake up SPIN early and poll the rest: a VM's timer wake-up is late by ~0.1-0.3 ms otherwise
        timeout = max(0.0, heap[0][0] - now - SPIN) if heap else None
        try:
            ready, _, _ = select.select([fa, fb, 0], [], [], timeout)
        except InterruptedError:
            continue
        arrived = clock()
        for fd in ready:
            if fd == 0:
                try:
                    chunk = os.read(0, 4096)
                except BlockingIOError:
                    continue
                if not chunk:
                    return 0
                inbuf += chunk
                while b"\n" in inbuf:
                    line, inbuf = inbuf.split(b"\n", 1)
                    words = line.decode().split()
                    if not words:
                        continue
                    if words[0] == "delay":
                        delay = float(words[1]) / 1000.0
                        print("ok", flush=True)
                    elif words[0] == "loss":
                        loss = float(words[1]) / 100.0
                        print("ok", flush=True)
                    elif words[0] == "reset":
                        late.clear()
                        forwarded = dropped = write_errors = 0
                        print("ok", flush=True)
                    elif words[0] == "stats":
                        ms = sorted(x * 1000.0 for x in late)

                        def q(p: float, ms: list[float] = ms) -> float | None:
                            return round(ms[min(len(ms) - 1, int(p * len(ms)))], 4) if ms else None

                        print(json.dumps({
                            "forwarded": forwarded, "dropped": dropped, "write_errors": write_errors,
                            "delay_ms": delay * 1000.0, "loss_percent": loss * 100.0,
                            "lateness_ms": {"p50": q(0.5), "p99": q(0.99), "max": round(ms[-1], 4) if ms else None,
                                            "mean": round(sum(ms) / len(ms), 4) if ms else None},
                        }), flush=True)
                continue
            while True:  # drain: several packets may be waiting
                try:
                    pkt = os.read(fd, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    if exc.errno == errno.EBADFD:
                        return 1
                    break
                if loss and rng.random() < loss:
                    dropped += 1
                    continue
                counter += 1
                heapq.heappush(heap, (arrived + delay, counter, other[fd], pkt))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "forward":
        sys.exit(forward(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])))
    print("usage: netlab.py forward TUN_A TUN_B DELAY_MS LOSS_PERCENT", file=sys.stderr)
    sys.exit(2)

import pytest  # noqa: E402 - after the forwarder's entry, which needs neither pytest nor envprobe

from envprobe.transport.base import Transport  # noqa: E402
from envprobe.transport.local import LocalTransport  # noqa: E402


# ===========================================================================================================
# small helpers
# ===========================================================================================================
def sh(*argv: str, check: bool = True, timeout: float = 20, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command (no shell), capture its output; raise with its stderr if ``check`` and it fails."""
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input)
    if check and res.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
    return res


def pid_alive(pid: int) -> bool:
    """Does the process run? A zombie (dead, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _die_with_parent() -> None:  # runs in the child between fork and exec: no allocation, no locks
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def popen(argv: Sequence[str], die_with_parent: bool = True, **kw: Any) -> subprocess.Popen[Any]:
    """Popen with PR_SET_PDEATHSIG=SIGKILL (the child dies with the thread that started it)."""
    libc()
    return subprocess.Popen(list(argv), preexec_fn=_die_with_parent if die_with_parent else None, **kw)


def stop_process(proc: subprocess.Popen[Any], grace: float = 1.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds: by PID, the process we started."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def kill_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 3
    for pid in pids:
        while pid_alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            time.sleep(0.01)


def netns_pids(ns: str) -> list[int]:
    res = sh("ip", "netns", "pids", ns, check=False)
    return [int(x) for x in res.stdout.split() if x.isdigit()]


def list_netns() -> list[str]:
    res = sh("ip", "netns", "list", check=False)
    return [line.split()[0] for line in res.stdout.splitlines() if line.strip()]


def list_links() -> list[str]:
    res = sh("ip", "-o", "link", "show", check=False)
    names = []
    for line in res.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 route destination and interface network in this namespace (all tables)."""
    nets: list[ipaddress.IPv4Network] = []
    for line in sh("ip", "-4", "route", "show", "table", "all", check=False).stdout.splitlines():
        words = line.split()
        if not words:
            continue
        dest = words[1] if words[0] in ("local", "broadcast", "unreachable", "blackhole", "prohibit",
                                        "throw", "unicast", "multicast", "anycast", "nat") else words[0]
        if dest == "default":
            continue
        with contextlib.suppress(ValueError):
            nets.append(ipaddress.IPv4Network(dest, strict=False))
    for line in sh("ip", "-4", "-o", "addr", "show", check=False).stdout.splitlines():
        m = re.search(r"\binet (\S+)", line)
        if m:
            nets.append(ipaddress.IPv4Interface(m.group(1)).network)
    return nets


def cleanup_stale() -> list[str]:
    """Remove namespaces, links and /etc/netns folders of labs whose creating process no longer runs.

    Processes left inside those namespaces (a listener of a killed test) are killed by PID first, or the
    namespace would live on. Returns what was removed.
    """
    removed: list[str] = []
    stale_ns = [n for n in list_netns() if (m := NAME_RE.match(n)) and not pid_alive(int(m.group(1)))]
    for ns in stale_ns:
        kill_pids(netns_pids(ns))
    for ns in stale_ns:
        if sh("ip", "netns", "del", ns, check=False).returncode == 0:
            removed.append(ns)
    for link in list_links():
        m = NAME_RE.match(link)
        if m and not pid_alive(int(m.group(1))) and sh("ip", "link", "del", link, check=False).returncode == 0:
            removed.append(link)
    if NETNS_ETC.is_dir():
        for d in NETNS_ETC.iterdir():
            m = NAME_RE.match(d.name)
            if m and not pid_alive(int(m.group(1))):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(str(d))
    return removed


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    with open(LOCK_PATH, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def in_netns(ns: str) -> Iterator[None]:
    """Run the body with *this thread* in namespace ``ns`` (network namespaces are per thread). Use it only in
    a thread of your own that ends afterwards (see :func:`run_in_netns`)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc().setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)
    yield


def run_in_netns(ns: str, fn: Any, *args: Any) -> Any:
    """Call ``fn(*args)`` in a fresh thread that joined ``ns``; sockets it creates stay in ``ns``."""
    box: list[Any] = []

    def body() -> None:
        try:
            with in_netns(ns):
                box.append((True, fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box.append((False, exc))

    th = threading.Thread(target=body, daemon=True, name=f"netns-{ns}")
    th.start()
    th.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value


# ===========================================================================================================
# hosts
# ===========================================================================================================
_LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(128)
print("ready", s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""


class Host:
    """One namespace on the lab's bridge."""

    def __init__(self, lab: NetLab, name: str, index: int, address: str, address6: str = ""):
        self.lab = lab
        self.name = name
        self.index = index
        self.ns = f"{lab.prefix}-{name}"
        self.address = address
        #: the host's IPv6 address on the bridge (a ULA in the lab's /64, no duplicate-address detection)
        self.address6 = address6
        self.veth = f"{lab.prefix}-v{index}"

    def __repr__(self) -> str:
        return f"Host({self.name!r}, ns={self.ns!r}, address={self.address!r})"

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def exec(self, argv: Sequence[str] | str, check: bool = True, timeout: float = 20,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command in the namespace (``ip netns exec``) and wait; a string is split with shlex."""
        args = shlex.split(argv) if isinstance(argv, str) else list(argv)
        return sh(*self.argv(args), check=check, timeout=timeout, input=input)

    def spawn(self, argv: Sequence[str], die_with_parent: bool = True, **kw: Any) -> subprocess.Popen[Any]:
        """Start a process in the namespace; the lab records it and kills it by PID at teardown."""
        proc = popen(self.argv(argv), die_with_parent=die_with_parent, **kw)
        self.lab._procs.append(proc)
        return proc

    def listen_tcp(self, port: int = 0, address: str | None = None, timeout: float = 10) -> Listener:
        """A TCP server in the namespace that accepts and closes every connection. ``port=0`` picks one."""
        proc = self.spawn([sys.executable, "-c", _LISTENER, address or self.address, str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("ready"):
            stop_process(proc)
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"listener on {self.name}:{port} did not start: {err.strip()}")
        return Listener(proc, address or self.address, int(line.split()[1]))

    def iptables(self, *rules: str | Sequence[str]) -> None:
        """Apply iptables rules in the namespace, e.g. ``host.iptables("-A INPUT -p tcp --dport 81 -j DROP")``."""
        for rule in rules:
            args = shlex.split(rule) if isinstance(rule, str) else list(rule)
            self.exec(["iptables", "-w", *args])

    def nft(self, script: str) -> None:
        """Load an nft script in the namespace (``nft -f -``)."""
        self.exec(["nft", "-f", "-"], input=script)

    def sysctl(self, key: str, value: str) -> None:
        """Set a per-namespace sysctl (e.g. ``net.ipv4.ping_group_range``)."""
        self.exec(["sysctl", "-q", "-w", f"{key}={value}"])

    def etc_file(self, name: str, text: str) -> Path:
        """``/etc/netns/<ns>/<name>``: ``ip netns exec`` bind-mounts it over ``/etc/<name>`` (resolv.conf, hosts)
        for commands run in this host; removed at teardown."""
        d = NETNS_ETC / self.ns
        d.mkdir(parents=True, exist_ok=True)
        path = d / name
        path.write_text(text, encoding="utf-8")
        return path

    def transport(self) -> NetnsTransport:
        """An envprobe transport whose vantage point is this host (commands and connections run in it)."""
        return NetnsTransport(self)


class Listener:
    def __init__(self, proc: subprocess.Popen[Any], address: str, port: int):
        self.proc = proc
        self.address = address
        self.port = port

    def stop(self) -> None:
        stop_process(self.proc)


class NetnsTransport(LocalTransport):
    """An envprobe transport to a lab host: ``run`` through ``ip netns exec``, ``connect`` from a thread inside
    the namespace, ``resolve`` through the host's own ``getent`` (so ``/etc/netns/<ns>/resolv.conf`` applies).
    Files are this machine's (a namespace isolates only the network)."""

    is_local = False

    def __init__(self, host: Host):
        super().__init__()
        self.host = host
        self.name = host.name
        self._requests: queue.Queue[tuple[int, queue.Queue[Any]]] | None = None
        self._start_lock = threading.Lock()

    def run(self, cmd: Sequence[str] | str, timeout: float = 10.0, env: dict[str, str] | None = None,
            stdin: str | None = None) -> Any:
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return super().run(self.host.argv(argv), timeout=timeout, env=env, stdin=stdin)

    def _socket(self, family: int) -> socket.socket:
        """A TCP socket created in the host's namespace by a long-lived worker thread that joined it (a new
        setns'd thread per connection would add ~0.2 ms to every measured connect)."""
        with self._start_lock:
            if self._requests is None:
                requests: queue.Queue[tuple[int, queue.Queue[Any]]] = queue.Queue()

                def worker() -> None:
                    with in_netns(self.host.ns):
                        while True:
                            fam, reply = requests.get()
                            try:
                                reply.put(socket.socket(fam, socket.SOCK_STREAM))
                            except OSError as exc:
                                reply.put(exc)

                threading.Thread(target=worker, daemon=True, name=f"netns-{self.host.ns}").start()
                self._requests = requests
        reply: queue.Queue[Any] = queue.Queue()
        self._requests.put((family, reply))
        made = reply.get()
        if isinstance(made, BaseException):
            raise made
        return made  # type: ignore[no-any-return]

    def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        """Connect from inside the host's namespace (the socket belongs to the namespace it was created in)."""
        address = self.resolve(host, timeout)[0]
        sock = self._socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
        try:
            sock.settimeout(timeout)
            sock.connect((address, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def resolve(self, name: str, timeout: float = 5.0) -> list[str]:
        return Transport.resolve(self, name, timeout)


# ===========================================================================================================
# the slow link
# ===========================================================================================================
class DelayedLink:
    """Two TUN devices joined by a forwarder that holds every packet ``delay_ms`` in each direction."""

    def __init__(self, lab: NetLab, index: int, a: Host | None, b: Host, delay_ms: float, loss_percent: float):
        self.lab = lab
        self.a, self.b = a, b
        self.tun_a, self.tun_b = f"{lab.prefix}-t{index}a", f"{lab.prefix}-t{index}b"
        base = ipaddress.IPv4Address(lab.network.network_address) + 200 + 2 * (index - 1)
        self.a_address, self.b_address = str(base), str(base + 1)
        self.proc = popen([sys.executable, str(HERE), "forward", self.tun_a, self.tun_b, str(delay_ms),
                           str(loss_percent)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, bufsize=1)
        lab._procs.append(self.proc)
        self._lock = threading.Lock()
        line = self._read_line(10)
        if line.strip() != "ready":
            stop_process(self.proc)
            raise RuntimeError(f"the forwarder did not start: {line} {self.proc.stderr.read() if self.proc.stderr else ''}")
        for host, tun, local, peer in ((a, self.tun_a, self.a_address, self.b_address),
                                       (b, self.tun_b, self.b_address, self.a_address)):
            pre = [] if host is None else ["-n", host.ns]
            if host is not None:
                sh("ip", "link", "set", "dev", tun, "netns", host.ns)
            sh("ip", *pre, "addr", "add", local, "peer", peer, "dev", tun)
            sh("ip", *pre, "link", "set", "dev", tun, "up")
        self.delay_ms = delay_ms

    @property
    def client_address(self) -> str:
        return self.a_address

    @property
    def server_address(self) -> str:
        return self.b_address

    def _read_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else ""

    def _command(self, line: str) -> str:
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            return self._read_line(5).strip()

    def set_delay(self, delay_ms: float) -> None:
        self._command(f"delay {delay_ms}")
        self.delay_ms = delay_ms

    def set_loss(self, loss_percent: float) -> None:
        self._command(f"loss {loss_percent}")

    def stats(self, reset: bool = False) -> dict[str, Any]:
        """Forwarded/dropped packets and the forwarder's lateness (ms): p50, p99, max, mean."""
        out = json.loads(self._command("stats"))
        if reset:
            self._command("reset")
        return dict(out)

    def close(self) -> None:
        stop_process(self.proc)


class DelayedPair:
    def __init__(self, client: Host, server: Host, link: DelayedLink):
        self.client, self.server, self.link = client, server, link

    @property
    def server_address(self) -> str:
        return self.link.b_address

    @property
    def client_address(self) -> str:
        return self.link.a_address

    def __iter__(self) -> Iterator[Any]:
        return iter((self.client, self.server))


# ===========================================================================================================
# the lab
# ===========================================================================================================
class NetLab:
    """A bridge and network namespaces ("hosts") behind it. See the module docstring."""

    def __init__(self, hosts: int = 0):
        if os.geteuid() != 0:
            raise PermissionError("NetLab needs root (network namespaces, veth, bridges)")
        with _letters_lock:
            self.prefix = f"ep{os.getpid()}{next(_letters)}"
        self.hosts: dict[str, Host] = {}
        self.links: list[DelayedLink] = []
        self._procs: list[subprocess.Popen[Any]] = []
        self._closed = False
        self.bridge = f"{self.prefix}-br"
        with machine_lock():
            self.removed_stale = cleanup_stale()
            self.network = self._free_network()
            self.bridge_address = str(self.network.network_address + 1)
            # IPv6 beside it: fd77:0:X::/64 (X = the IPv4 network's third byte), addresses without DAD delay
            self.network6 = ipaddress.IPv6Network(f"fd77:0:{self.network.network_address.packed[2]:x}::/64")
            self.bridge_address6 = str(self.network6.network_address + 1)
            try:
                sh("ip", "link", "add", self.bridge, "type", "bridge")
                sh("ip", "addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
                sh("ip", "-6", "addr", "add", f"{self.bridge_address6}/64", "dev", self.bridge, "nodad")
                sh("ip", "link", "set", self.bridge, "up")
            except Exception:
                sh("ip", "link", "del", self.bridge, check=False)
                raise
        ref = weakref.ref(self)
        self._atexit = lambda: (lab := ref()) is not None and lab.close()
        atexit.register(self._atexit)
        for _ in range(hosts):
            self.add_host()

    def __enter__(self) -> NetLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _free_network() -> ipaddress.IPv4Network:
        used = used_networks()
        for x in range(100, 255):
            net = ipaddress.IPv4Network(f"10.77.{x}.0/24")
            if not any(net.overlaps(u) for u in used):
                return net
        raise RuntimeError("no free 10.77.X.0/24 network")

    def add_host(self, name: str | None = None) -> Host:
        index = len(self.hosts) + 1
        if index > 99:
            raise RuntimeError("a lab holds at most 99 hosts")
        name = name or f"h{index}"
        if name in self.hosts or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", name):
            raise ValueError(f"bad or duplicate host name {name!r}")
        host = Host(self, name, index, str(self.network.network_address + 10 + index),
                    str(self.network6.network_address + 10 + index))
        peer = f"{self.prefix}-p{index}"
        try:
            sh("ip", "netns", "add", host.ns)
            sh("ip", "link", "add", host.veth, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", peer, "netns", host.ns)
            sh("ip", "-n", host.ns, "link", "set", peer, "name", "eth0")
            sh("ip", "-n", host.ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            sh("ip", "-n", host.ns, "-6", "addr", "add", f"{host.address6}/64", "dev", "eth0", "nodad")
            sh("ip", "-n", host.ns, "link", "set", "eth0", "up")
            sh("ip", "-n", host.ns, "link", "set", "lo", "up")
            sh("ip", "link", "set", host.veth, "master", self.bridge)
            sh("ip", "link", "set", host.veth, "up")
        except Exception:
            sh("ip", "netns", "del", host.ns, check=False)
            sh("ip", "link", "del", host.veth, check=False)
            raise
        self.hosts[name] = host
        return host

    def delayed_link(self, a: Host | None, b: Host, delay_ms: float, loss_percent: float = 0.0) -> DelayedLink:
        """A point-to-point link between ``a`` (None: this process's namespace) and ``b`` whose packets are held
        ``delay_ms`` in each direction (round trip 2 × delay_ms). ``b`` is reached at ``link.b_address``."""
        index = len(self.links) + 1
        if index > 26:
            raise RuntimeError("a lab holds at most 26 delayed links")
        link = DelayedLink(self, index, a, b, delay_ms, loss_percent)
        self.links.append(link)
        return link

    def delayed_pair(self, delay_ms: float, loss_percent: float = 0.0) -> DelayedPair:
        """Two new hosts joined by a delayed link: ``client`` reaches ``server`` at ``pair.server_address``."""
        client = self.add_host(f"c{len(self.hosts) + 1}")
        server = self.add_host(f"s{len(self.hosts) + 1}")
        return DelayedPair(client, server, self.delayed_link(client, server, delay_ms, loss_percent))

    def names(self) -> list[str]:
        """Every namespace and link name this lab owns (for tests of cleanup)."""
        out = [h.ns for h in self.hosts.values()] + [h.veth for h in self.hosts.values()] + [self.bridge]
        for link in self.links:
            out += [link.tun_a, link.tun_b]
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self._atexit)
        for proc in reversed(self._procs):
            with contextlib.suppress(Exception):
                stop_process(proc)
        for host in self.hosts.values():
            kill_pids(netns_pids(host.ns))
        for host in self.hosts.values():
            sh("ip", "netns", "del", host.ns, check=False)
            sh("ip", "link", "del", host.veth, check=False)
            shutil.rmtree(NETNS_ETC / host.ns, ignore_errors=True)
        for link in self.links:
            for tun in (link.tun_a, link.tun_b):
                if tun in list_links():
                    sh("ip", "link", "del", tun, check=False)
        sh("ip", "link", "del", self.bridge, check=False)


# ===========================================================================================================
# pytest
# ===========================================================================================================
def need_netlab(tun: bool = False, iptables: bool = False, ping: bool = False, nft: bool = False) -> None:
    """Skip (laptop) or fail (CI) unless this machine can run a NetLab with the parts asked for."""
    from tests.conftest import need

    need(sys.platform.startswith("linux"), "network namespaces need Linux")
    need(os.geteuid() == 0, "needs root for network namespaces")
    need(shutil.which("ip") is not None, "needs iproute2 (ip)")
    if tun:
        need(os.path.exists("/dev/net/tun"), "needs /dev/net/tun for the delayed link")
    if iptables:
        need(shutil.which("iptables") is not None, "needs iptables")
    if nft:
        need(shutil.which("nft") is not None, "needs nftables (nft)")
    if ping:
        need(shutil.which("ping") is not None, "needs ping (iputils-ping)")


@pytest.fixture(scope="module")
def netlab() -> Iterator[NetLab]:
    """A NetLab for the test module (no hosts yet: add them with ``netlab.add_host()``)."""
    need_netlab()
    lab = NetLab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module")
def slow_pair(netlab: NetLab) -> DelayedPair:
    """Two hosts with a 40 ms one-way (80 ms round trip) link between them."""
    need_netlab(tun=True)
    return netlab.delayed_pair(40)
