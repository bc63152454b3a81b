"""``port_proof``: prove a firewall path before the product exists.

On the check's host (B) a temporary listener is opened on the port our not-yet-installed service will use —
refused if the port is taken — then a TCP connection is made from the vantage host (A: ``from:``, or this
machine), and the listener is removed. The answer is the path's state: open, refused or filtered.

Which part runs where: the listener runs on B (locally a socket in this process; over SSH a short-lived
``python3`` — or ``perl`` — one-liner started through the transport, never installed, gone when the check
ends); the connection is opened by A's transport (locally a socket; over SSH a ``direct-tcpip`` channel
from A). Nothing is written to either host.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import socket
import threading
import time
from typing import Any, Literal

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model

_READY = "@@envprobe-listening"

# A listener that accepts one connection (or waits up to N seconds), on any address, then exits.
_PY_LISTENER = (
    "import socket,sys,select\n"
    "p=int(sys.argv[1]);w=float(sys.argv[2])\n"
    "R=socket.SOL_SOCKET,socket.SO_REUSEADDR,1\n"
    "try:\n s=socket.socket(socket.AF_INET6);s.setsockopt(*R)\n"
    " s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0);s.bind(('::',p))\n"
    "except OSError as e:\n"
    " if e.errno in (98,13,10048,10013): print('@@envprobe-bind-error',e.errno,flush=True);sys.exit(3)\n"
    " s=socket.socket();s.setsockopt(*R);s.bind(('0.0.0.0',p))\n"
    "s.listen(5);print('" + _READY + "',flush=True)\n"
    "r,_,_=select.select([s],[],[],w)\n"
    "if r:\n c,a=s.accept();print('@@envprobe-accepted',a[0],flush=True);c.close()\n"
)
_PERL_LISTENER = (
    "use IO::Socket::INET;my($p,$w)=@ARGV;$|=1;"
    "my $s=IO::Socket::INET->new(LocalPort=>$p,Listen=>5,ReuseAddr=>1) or do{print \"\\@\\@envprobe-bind-error 98\\n\";"
    "exit 3};print \"" + _READY + "\\n\";my $r='';vec($r,fileno($s),1)=1;"
    "if(select($r,undef,undef,$w)){my $c=$s->accept;print \"\\@\\@envprobe-accepted \",$c->peerhost,\"\\n\";}"
)


class PortProofParams(Model):
    port: int = Field(ge=1, le=65535, description="the port our service will listen on, on the check's host")
    connect_host: str | None = Field(default=None, description="address the vantage host connects to (default: "
                                                               "the check's host address as the inventory gives it)")
    timeout: float = Field(default=3.0, gt=0, le=60, description="seconds to wait for the connection")


class PortProofFacts(Facts):
    state: Literal["open", "refused", "filtered", "unreachable", "port-in-use", "no-listener-tool"] = Field(
        description="open: the connection reached our temporary listener; refused / filtered / unreachable: "
                    "the path blocks it (REJECT / DROP / ICMP); port-in-use: the port is taken on the host, "
                    "so nothing was proven; no-listener-tool: the host has neither python3 nor perl")
    connect_ms: float | None = Field(default=None, description="connection time when open")
    listener: str | None = Field(default=None, description="how the listener was opened: socket, python3, perl")
    target: str = Field(description="address:port that was connected to")
    vantage: str = Field(description="host the connection was made from")
    accepted_from: str | None = Field(default=None, description="peer address the listener saw (NAT shows here)")


class PortProofProbe(Probe):
    name = "port_proof"
    summary = t("Prove a firewall path before installing: temporary listener on the host, connect from another",
                "安装前验证防火墙通路：在主机上临时监听端口，从另一台主机连接")
    Params = PortProofParams
    Facts = PortProofFacts
    vantage = True
    example = """\
- id: mes-port-path
  title: {zh-CN: 应用到 MES 服务端口的通路, en: Path from the app server to the MES service port}
  probe: port_proof
  hosts: [local]
  with: {port: 18080}
  expect: {state: open}
"""
    advice = {
        "state": t("open the port on the host's firewall and on any firewall between the two hosts, or choose "
                   "another port for the service", "在主机防火墙及两台主机之间的防火墙上放行该端口，或为服务另选端口"),
    }
    requires = t("on the listening host: python3 or perl (present on nearly all Linux servers); nothing installed",
                 "监听端的主机需有 python3 或 perl（几乎所有 Linux 服务器都自带）；不安装任何东西")

    def collect(self, ctx: ProbeContext, params: Any) -> PortProofFacts:
        host_tr = ctx.host_transport
        target_addr = params.connect_host or getattr(host_tr, "address", None) or "127.0.0.1"
        vantage = ctx.transport.name if ctx.transport is not host_tr else (
            "local" if ctx.transport.is_local else ctx.transport.name)
        wait = params.timeout + 5.0
        if host_tr.is_local:
            with _LocalListener(params.port) as listener:
                if listener.error is not None:
                    return self._in_use(params, target_addr, vantage, "socket")
                state, ms = self._connect(ctx, target_addr, params)
                return PortProofFacts(state=state, connect_ms=ms, listener="socket",
                                      target=f"{target_addr}:{params.port}", vantage=vantage,
                                      accepted_from=listener.peer)
        return self._remote(ctx, host_tr, target_addr, vantage, params, wait)

    def _remote(self, ctx: ProbeContext, host_tr: Any, target: str, vantage: str, params: Any,
                wait: float) -> PortProofFacts:
        script = (
            f"if command -v python3 >/dev/null 2>&1; then exec python3 -c {shlex.quote(_PY_LISTENER)} "
            f"{params.port} {wait:g}; elif command -v perl >/dev/null 2>&1; then exec perl -e "
            f"{shlex.quote(_PERL_LISTENER)} {params.port} {wait:g}; else echo @@envprobe-no-tool; exit 4; fi"
        )
        started = host_tr.start(script, timeout=wait + 5)
        if not started.wait_for(_READY, min(wait, ctx.remaining())):
            res = started.wait(5.0)
            out = res.stdout if res is not None else ""
            if "@@envprobe-no-tool" in out:
                return PortProofFacts(state="no-listener-tool", target=f"{target}:{params.port}", vantage=vantage)
            if "@@envprobe-bind-error" in out:
                return self._in_use(params, target, vantage, "python3")
            why = ((res.stderr or out) if res is not None else "no answer").strip()[:200]
            raise ProbeError(t(f"the temporary listener on {host_tr.name} did not start: {why}",
                               f"{host_tr.name} 上的临时监听未能启动：{why}"))
        state, ms = self._connect(ctx, target, params)
        res = started.wait(wait + 6)
        out = res.stdout if res is not None else ""
        peer = None
        for line in out.splitlines():
            if line.startswith("@@envprobe-accepted"):
                peer = line.split()[-1].removeprefix("::ffff:")
        return PortProofFacts(state=state, connect_ms=ms, listener="python3 or perl", target=f"{target}:{params.port}",
                              vantage=vantage, accepted_from=peer)

    def _connect(self, ctx: ProbeContext, address: str, params: Any) -> tuple[str, float | None]:
        start = time.perf_counter()
        try:
            sock = ctx.transport.connect(address, params.port, params.timeout)
        except ConnectionRefusedError:
            return "refused", None
        except TimeoutError:
            return "filtered", None
        except OSError:
            return "unreachable", None
        ms = round((time.perf_counter() - start) * 1000, 2)
        with contextlib.suppress(OSError):
            sock.close()
        return "open", ms

    def _in_use(self, params: Any, target: str, vantage: str, tool: str) -> PortProofFacts:
        return PortProofFacts(state="port-in-use", listener=tool, target=f"{target}:{params.port}", vantage=vantage)

    def note(self, params: Any, facts: Any) -> Text | None:
        s = facts.state
        if s == "open":
            return t(f"{facts.vantage} → {facts.target}: the path is open (our temporary listener answered)",
                     f"{facts.vantage} → {facts.target}：通路已打通（临时监听已应答）")
        if s == "refused":
            return t(f"{facts.vantage} → {facts.target}: refused although our listener was up — a firewall "
                     "REJECTs the port (on the host or on the way)",
                     f"{facts.vantage} → {facts.target}：临时监听已开启但连接被拒绝——"
                     "主机或途中的防火墙 REJECT 了该端口")
        if s == "filtered":
            return t(f"{facts.vantage} → {facts.target}: no answer — a firewall DROPs the port (on the host or on "
                     "the way)", f"{facts.vantage} → {facts.target}：无应答——主机或途中的防火墙丢弃（DROP）了该端口")
        if s == "unreachable":
            return t(f"{facts.vantage} → {facts.target}: unreachable (ICMP from a firewall or router)",
                     f"{facts.vantage} → {facts.target}：不可达（防火墙或路由器返回 ICMP）")
        if s == "port-in-use":
            return t(f"port {params.port} is already taken on the host: nothing was proven; free the port or "
                     "choose another", f"主机上 {params.port} 端口已被占用，无法验证；请释放该端口或另选端口")
        return t("the host has neither python3 nor perl to open a temporary listener",
                 "主机上既没有 python3 也没有 perl，无法开启临时监听")


def _reuse(s: socket.socket) -> None:
    """Allow binding over TIME_WAIT leftovers (an earlier proof), never over a live listener: that is
    SO_REUSEADDR on POSIX. On Windows SO_REUSEADDR would steal a port, so nothing is set there."""
    if os.name != "nt":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


class _LocalListener:
    """A listener in this process: bound on all addresses, accepting (and closing) connections until closed."""

    def __init__(self, port: int):
        self.port = port
        self.error: OSError | None = None
        self.peer: str | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _LocalListener:
        try:
            s = socket.socket(socket.AF_INET6)
            try:
                _reuse(s)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                s.bind(("::", self.port))
            except OSError as exc:
                s.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    raise
                s = socket.socket()
                _reuse(s)
                s.bind(("0.0.0.0", self.port))
            s.listen(5)
            s.settimeout(0.2)
            self._sock = s
        except OSError as exc:
            self.error = exc
            return self
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        while self._sock is not None:
            try:
                conn, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.peer = str(addr[0]).removeprefix("::ffff:")
            conn.close()

    def __exit__(self, *exc: object) -> None:
        s, self._sock = self._sock, None
        if s is not None:
            s.close()
        if self._thread is not None:
            self._thread.join(1)
