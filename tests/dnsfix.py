"""DNS servers for tests: a real dnsmasq with records we define, a tiny DNS server in process, a black hole.

Reusable beyond the dns probe's tests (e.g. to give test network namespaces a resolver)::

    from tests.dnsfix import Dnsmasq, need_dnsmasq
    need_dnsmasq()
    with Dnsmasq(tmp_path, ["host-record=db01.corp.test,10.0.0.6"], zones=["corp.test"]) as dns:
        ...  # dns.address, dns.port, dns.server ("127.0.0.1:PORT"), dns.log_text()

``Dnsmasq`` writes its own configuration and starts ``/usr/sbin/dnsmasq --conf-file=THAT --keep-in-foreground``,
so /etc/dnsmasq.conf and /etc/dnsmasq.d are never read; ``no-resolv`` and ``no-hosts`` keep /etc/resolv.conf
and /etc/hosts out, so it never forwards a query anywhere. It listens on one address (``bind-interfaces``),
on a free port unless one is given, and is ready once it has answered a query (or, inside a network namespace,
once its sockets show in ``/proc/PID/net``). Teardown kills it by PID. Behaviour verified on dnsmasq 2.90:

* names under a domain listed in ``zones`` (``local=/corp.test/``) that no record defines → NXDOMAIN;
  a defined name without a record of the asked type → NOERROR with no answer (NODATA);
* any other name → REFUSED (nothing to forward to);
* CNAMEs to names it knows are followed in the answer; ``host-record`` also serves the reverse (PTR) name;
* ``local-ttl`` sets the TTL of the answers (dnsmasq's default is 0).

``auth_zone=`` switches to dnsmasq's authoritative mode for that zone, which adds SOA and NS records (and stops
following CNAMEs in answers: an authoritative server answers with the CNAME only).

``StubDns`` answers every query with a response made by a function (default: a fixed rcode such as SERVFAIL),
over UDP and TCP, in a thread: dnspython's message API over real sockets. ``BlackHole`` binds UDP and TCP on a
port and never answers (the TCP listener never accepts; the kernel completes the handshake).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DNSMASQ = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)

#: A small zone used by the dns probe's tests; other tests may reuse it.
CORP_RECORDS = [
    "host-record=web01.corp.test,10.0.0.5,fd00::5",
    "host-record=db01.corp.test,10.0.0.6",
    "host-record=dc01.corp.test,10.0.0.7",
    "host-record=mail.corp.test,10.0.0.8",
    "cname=app.corp.test,www.corp.test",  # app → www → web01: a chain of two
    "cname=www.corp.test,web01.corp.test",
    "cname=dangling.corp.test,nothing.corp.test",  # points to a name that does not exist
    "mx-host=corp.test,mail.corp.test,10",
    "mx-host=corp.test,mail2.corp.test,20",
    'txt-record=corp.test,"v=spf1 mx -all"',
    'txt-record=long.corp.test,"part one, ","part two"',
    'txt-record=zh.corp.test,"机房=上海"',
    "srv-host=_ldap._tcp.corp.test,dc01.corp.test,389,0,100",
    "ptr-record=9.0.0.10.in-addr.arpa,printer.corp.test",
]


def need_dnsmasq() -> None:
    from tests.conftest import need

    need(DNSMASQ is not None, "dnsmasq (apt install dnsmasq) for DNS tests")


def free_port(address: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``address`` (DNS uses both)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as u:
            u.bind((address, 0))
            port = u.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as s:
                try:
                    s.bind((address, port))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no free port for UDP and TCP")


def hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def query(address: str, port: int, name: str, rdtype: str = "A", timeout: float = 1.0, tcp: bool = False) -> Any:
    """Ask a server directly (dnspython, explicit address: never the system resolver); the response or None."""
    import dns.exception
    import dns.message
    import dns.query

    q = dns.message.make_query(name, rdtype)
    try:
        if tcp:
            return dns.query.tcp(q, address, port=port, timeout=timeout)
        return dns.query.udp(q, address, port=port, timeout=timeout)
    except (dns.exception.Timeout, OSError):
        return None


class Dnsmasq:
    """A dnsmasq serving ``records`` (dnsmasq.conf lines) on one address and port; a context manager."""

    def __init__(
        self,
        workdir: Path | str,
        records: Sequence[str] = (),
        zones: Sequence[str] = (),
        address: str = "127.0.0.1",
        port: int | None = None,
        ttl: int = 300,
        auth_zone: str | None = None,
        netns: str | None = None,
        extra: Sequence[str] = (),
        log_queries: bool = True,
    ):
        self.workdir = Path(workdir)
        self.records = list(records)
        self.zones = list(zones)
        self.address = address
        self.port = port
        self.ttl = ttl
        self.auth_zone = auth_zone
        self.netns = netns
        self.extra = list(extra)
        self.log_queries = log_queries
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.conf = self.workdir / "dnsmasq.conf"
        self.pid_file = self.workdir / "dnsmasq.pid"
        self.log_file = self.workdir / "dnsmasq.log"

    @property
    def server(self) -> str:
        assert self.port is not None
        return hostport(self.address, self.port)

    def config(self) -> str:
        assert self.port is not None
        lines = [
            "# generated by tests/dnsfix.py",
            "no-resolv",
            "no-hosts",
            "no-poll",
            "bind-interfaces",
            f"listen-address={self.address}",
            f"port={self.port}",
            f"pid-file={self.pid_file}",
            f"log-facility={self.log_file}",
            f"local-ttl={self.ttl}",
        ]
        if self.log_queries:
            lines.append("log-queries")
        lines += [f"local=/{z}/" for z in self.zones]
        if self.auth_zone:
            lines += [
                f"auth-server=ns1.{self.auth_zone},{self.address}",
                f"auth-zone={self.auth_zone}",
                f"auth-soa=2026112601,hostmaster.{self.auth_zone},1200,120,604800",
                f"auth-ttl={self.ttl}",
            ]
        lines += self.records + self.extra
        return "\n".join(lines) + "\n"

    def start(self, wait: float = 5.0) -> Dnsmasq:
        assert DNSMASQ, "dnsmasq is not installed"
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)  # dnsmasq drops to an unprivileged user after reading its files
        fixed = self.port is not None
        for _ in range(1 if fixed else 5):
            if not fixed:
                self.port = free_port(self.address)
            self.conf.write_text(self.config(), encoding="utf-8")
            argv = [DNSMASQ, f"--conf-file={self.conf}", "--keep-in-foreground"]
            if self.netns:
                argv = ["ip", "netns", "exec", self.netns, *argv]
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
            self.pid = self.proc.pid if not self.netns else None
            if self._wait_ready(wait):
                return self
            err = self._stop_and_read_error()
            if fixed or "in use" not in err:
                raise RuntimeError(f"dnsmasq did not start: {err.strip() or f'not ready within {wait} s'}")
        raise RuntimeError("dnsmasq did not start: no free port")

    def _wait_ready(self, wait: float) -> bool:
        assert self.proc is not None and self.port is not None
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.netns:
                if self.pid is None and self.pid_file.exists():
                    text = self.pid_file.read_text().strip()
                    self.pid = int(text) if text.isdigit() else None
                if self.pid is not None and _listening_in(self.pid, self.port):
                    return True
            elif query(self.address, self.port, "ready.invalid", timeout=0.2) is not None:
                return True  # any answer (REFUSED) means it serves
            time.sleep(0.01)
        return False

    def _stop_and_read_error(self) -> str:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate(timeout=5)
        self.proc = None
        return err.decode("utf-8", "replace")

    def stop(self) -> None:
        """Kill dnsmasq by its PID (the process we started, or the one in its pid file inside a namespace)."""
        if self.proc is None:
            return
        pid = self.pid or self.proc.pid
        for target in dict.fromkeys([pid, self.proc.pid]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, 15)
        try:
            self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=5)
        self.proc = None

    def log_text(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.exists() else ""

    def __enter__(self) -> Dnsmasq:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listening_in(pid: int, port: int) -> bool:
    """Does the network namespace of ``pid`` have a UDP socket on ``port``? (/proc/PID/net is per namespace)"""
    want = f":{port:04X} "
    for name in ("udp", "udp6"):
        try:
            with open(f"/proc/{pid}/net/{name}", encoding="ascii") as fh:
                if any(want in line.split(None, 2)[1] + " " for line in fh.readlines()[1:]):
                    return True
        except (OSError, IndexError):
            continue
    return False


# -- in-process servers ---------------------------------------------------------------------------------------
Responder = Callable[[Any], Any]


def rcode_responder(rcode: str) -> Responder:
    """A responder answering every query with an empty response carrying ``rcode`` (e.g. "SERVFAIL")."""

    def respond(q: Any) -> Any:
        import dns.message
        import dns.rcode

        r = dns.message.make_response(q)
        r.set_rcode(dns.rcode.from_text(rcode))
        return r

    return respond


class StubDns:
    """A tiny DNS server in a thread, UDP and TCP on one port: each query gets ``responder(query)``.

    ``truncate_udp=True`` answers UDP with an empty, TC-flagged response, so clients must retry over TCP.
    ``udp``/``tcp`` turn either protocol off. ``queries`` records (protocol, name, type) of what was asked.
    """

    def __init__(self, responder: Responder, address: str = "127.0.0.1", port: int | None = None,
                 udp: bool = True, tcp: bool = True, truncate_udp: bool = False):
        self.responder = responder
        self.address = address
        self.port = port or free_port(address)
        self.truncate_udp = truncate_udp
        self.queries: list[tuple[str, str, str]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self._udp = socket.socket(family, socket.SOCK_DGRAM) if udp else None
        self._tcp = socket.socket(family, socket.SOCK_STREAM) if tcp else None
        if self._udp:
            self._udp.bind((address, self.port))
            self._udp.settimeout(0.1)
        if self._tcp:
            self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._tcp.bind((address, self.port))
            self._tcp.listen(16)
            self._tcp.settimeout(0.1)

    @property
    def server(self) -> str:
        return hostport(self.address, self.port)

    def _answer(self, wire: bytes, proto: str) -> bytes | None:
        import dns.flags
        import dns.message

        try:
            q = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - garbage in: no answer
            return None
        self.queries.append((proto, q.question[0].name.to_text() if q.question else "",
                             str(q.question[0].rdtype.name) if q.question else ""))
        if proto == "udp" and self.truncate_udp:
            r = dns.message.make_response(q)
            r.flags |= dns.flags.TC
            return bytes(r.to_wire())
        return bytes(self.responder(q).to_wire())

    def _serve_udp(self) -> None:
        assert self._udp is not None
        while not self._stop.is_set():
            try:
                wire, peer = self._udp.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            out = self._answer(wire, "udp")
            if out is not None:
                self._udp.sendto(out, peer)

    def _serve_tcp(self) -> None:
        assert self._tcp is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                try:
                    (n,) = struct.unpack("!H", _recv_exact(conn, 2))
                    out = self._answer(_recv_exact(conn, n), "tcp")
                    if out is not None:
                        conn.sendall(struct.pack("!H", len(out)) + out)
                except (OSError, EOFError, struct.error):
                    continue

    def start(self) -> StubDns:
        for sock, fn in ((self._udp, self._serve_udp), (self._tcp, self._serve_tcp)):
            if sock is not None:
                th = threading.Thread(target=fn, daemon=True, name=f"stubdns-{fn.__name__}")
                th.start()
                self._threads.append(th)
        return self

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(2)
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()

    def __enter__(self) -> StubDns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


class BlackHole:
    """A UDP socket and a TCP listener on one port that never answer: queries there time out."""

    def __init__(self, address: str = "127.0.0.1", port: int | None = None):
        self.address = address
        self.port = port or free_port(address)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self._udp = socket.socket(family, socket.SOCK_DGRAM)
        self._udp.bind((address, self.port))
        self._tcp = socket.socket(family, socket.SOCK_STREAM)
        self._tcp.bind((address, self.port))
        self._tcp.listen(16)  # never accepted: the handshake completes, nothing is ever read or answered

    @property
    def server(self) -> str:
        return hostport(self.address, self.port)

    def close(self) -> None:
        self._udp.close()
        self._tcp.close()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dead_port(address: str = "127.0.0.1") -> int:
    """A port where nothing listens (UDP gets ICMP port unreachable, TCP a reset)."""
    return free_port(address)
