"""``tcp`` and ``latency``: can a host open a TCP connection to a service, and how slow and lossy is the path?

Where each part runs (the vantage host is the one whose transport the check gets: this machine today, the
``from:`` host once the SSH transport opens connections from there):

* **Name lookup** — :meth:`Transport.resolve`, *at the vantage host*: its ``/etc/hosts``, resolver and
  nsswitch, as the application that will run there sees them (locally ``getaddrinfo``; over SSH one
  ``getent ahosts`` command). An IP address is used as given; the probes then talk to that address only.
* **TCP connect** (``tcp``, and ``latency``'s TCP samples) — :meth:`Transport.connect`, *from the vantage
  host*: locally a plain socket, over SSH a ``direct-tcpip`` channel that the vantage host's sshd opens. Time
  is measured here, around the call: over SSH it will include the channel round trip to the vantage host,
  so a later SSH issue should measure remotely (e.g. a small script run through the transport) if it needs
  sub-millisecond figures from afar.
* **ICMP echo** (``latency`` with ``method: icmp``) — on this machine through a socket (root: a raw socket;
  otherwise an unprivileged ICMP datagram socket where ``net.ipv4.ping_group_range`` allows it), else through
  the host's ``ping`` command via the transport (the *shell path*, also the path for a remote vantage host:
  nothing is installed there; iputils and busybox ``ping`` output are parsed). If neither can send ICMP and a
  ``port`` is given, TCP-connect samples are taken instead and the result says so.

The probes observe; expectations judge. ``tcp`` reports one of five states (a closed vocabulary, DESIGN.md
§4.5) and a message per state that says what it means and what to check next.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import random
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from envprobe.loader import parse_duration
from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator, model_validator
from envprobe.transport.base import TransportError

OPEN, REFUSED, FILTERED, UNREACHABLE, DNS_ERROR = "open", "refused", "filtered", "unreachable", "dns-error"
State = Literal["open", "refused", "filtered", "unreachable", "dns-error"]

#: errno values (POSIX, and Windows' WSA codes) that mean "the network says no" → ``unreachable``.
_UNREACHABLE_ERRNOS = {
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM, errno.ENETDOWN,
    getattr(errno, "EHOSTDOWN", -1001),
    10065, 10051, 10050, 10064,  # WSAEHOSTUNREACH, WSAENETUNREACH, WSAENETDOWN, WSAEHOSTDOWN
}
_TIMEOUT_ERRNOS = {errno.ETIMEDOUT, 10060}
_REFUSED_ERRNOS = {errno.ECONNREFUSED, 10061}
_GAI_WORDS = {getattr(socket, n): n for n in dir(socket)
              if n.startswith("EAI_") and isinstance(getattr(socket, n), int)}

#: Time kept back from the check's deadline so a probe reports in its own words before the runner gives up.
_MARGIN = 0.3


def _seconds(v: Any) -> Any:
    return parse_duration(v) if v is not None else v


def _nonempty_host(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("give a host name or an IP address")
    return v


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.3g}"


def _target(address: str, port: int | None) -> str:
    host = f"[{address}]" if ":" in address else address
    return host if port is None else f"{host}:{port}"


def _where(vantage: str) -> tuple[str, str]:
    return ("this machine", "本机") if vantage == "local" else (vantage, vantage)


def error_word(exc: BaseException) -> str:
    """A short, stable name for a connection or lookup failure: ``ECONNREFUSED``, ``timeout``, ``EAI_NONAME``."""
    if isinstance(exc, socket.gaierror):
        return _GAI_WORDS.get(exc.errno or 0, "EAI_FAIL") if exc.errno is not None else "EAI_FAIL"
    if isinstance(exc, TimeoutError) and exc.errno in (None, 0):
        return "timeout"
    if isinstance(exc, UnicodeError):
        return "invalid-name"
    if isinstance(exc, OSError):
        code = getattr(exc, "winerror", None) or exc.errno
        if code is not None:
            return errno.errorcode.get(code, f"errno {code}")
    return type(exc).__name__


def classify(exc: BaseException) -> str | None:
    """The ``tcp`` state a failed connection attempt means, or None when it says nothing about the path."""
    if isinstance(exc, (socket.gaierror, UnicodeError)):
        return DNS_ERROR
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED
    if isinstance(exc, OSError):
        code = getattr(exc, "winerror", None) or exc.errno
        if isinstance(exc, TimeoutError) or code in _TIMEOUT_ERRNOS:
            return FILTERED
        if code in _REFUSED_ERRNOS:
            return REFUSED
        if code in _UNREACHABLE_ERRNOS:
            return UNREACHABLE
    return None


def _lookup(ctx: ProbeContext, host: str, timeout: float) -> list[str]:
    return ctx.transport.resolve(host, timeout=timeout)


# ===========================================================================================================
# tcp
# ===========================================================================================================
class _TargetParams(Model):
    """What tcp and latency share: a target host, and durations written as 3, '3s' or '500ms'."""

    @field_validator("interval", "timeout", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return _seconds(v)

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return _nonempty_host(v)


class TcpParams(_TargetParams):
    host: str = Field(description="host name or IP address to connect to (resolved at the vantage host)")
    port: int = Field(ge=1, le=65535, description="TCP port, 1-65535")
    timeout: float = Field(default=3.0, gt=0, le=300,
                           description="seconds to wait for the name lookup and, separately, for the connection "
                                       "('3s', '500ms'); no answer within it means filtered")



class TcpFacts(Facts):
    host: str = Field(description="the host as given")
    port: int = Field(description="the port tried")
    state: State = Field(description="open (connected), refused (a reset: nothing listens, or a REJECT rule), "
                                     "filtered (no answer within the timeout: dropped on the path), unreachable "
                                     "(the network answered host/network unreachable or administratively "
                                     "prohibited, or there is no route), dns-error (the name did not resolve)")
    connect_ms: float | None = Field(description="time to establish the connection (null unless open)")
    address: str | None = Field(description="the resolved IP address whose outcome is reported (null on "
                                            "dns-error)")
    addresses: list[str] = Field(description="every address the name resolved to at the vantage host, in the "
                                             "resolver's order; refused or unreachable addresses are passed over "
                                             "for the next one, as clients do")
    error: str | None = Field(description="the raw failure: an errno name (ECONNREFUSED, EHOSTUNREACH, "
                                          "ENETUNREACH, ...), timeout, or a resolver code (EAI_NONAME, EAI_AGAIN); "
                                          "null when open")
    elapsed_ms: float = Field(description="time spent on the lookup and the connection attempts, whatever the "
                                          "outcome")
    vantage: str = Field(description="the host the connection was opened from (local: the machine envprobe "
                                     "runs on)")


class TcpProbe(Probe):
    name = "tcp"
    summary = t("Open a TCP connection to host:port and observe open / refused / filtered / unreachable / "
                "dns-error and the connect time",
                "向 host:port 建立 TCP 连接，观察 open / refused / filtered / unreachable / dns-error 状态与连接耗时")
    Params = TcpParams
    Facts = TcpFacts
    example = """\
- id: db-port
  title: {zh-CN: 数据库端口可达, en: Database port reachable}
  probe: tcp
  with: {host: 10.0.0.5, port: 1433, timeout: 3s}
  expect: {state: open, connect_ms: "< 20"}
"""
    advice = {
        "state": t("the message says what the state means: start the service or open the port (refused), "
                   "open the firewall on the path or on the host (filtered, unreachable), fix the name or the "
                   "DNS servers (dns-error)",
                   "结果消息说明了该状态的含义：启动服务或开放端口（refused），放通路径上或目标主机的防火墙"
                   "（filtered、unreachable），修正主机名或 DNS 服务器（dns-error）"),
        "connect_ms": t("a slow connect: measure the path with the latency probe (loss, jitter) and look for a "
                        "congested, distant or VPN link, or an overloaded server",
                        "连接建立较慢：用 latency 探针测量该路径（丢包、抖动），排查拥塞、远距离或 VPN 链路，"
                        "或服务器负载过高"),
        "*": t("check the connection from the vantage host by hand: nc -vz HOST PORT",
               "在发起端主机上手动验证：nc -vz 主机 端口"),
    }
    requires = t("no privilege. Runs on the vantage host (this machine, or the from: host): the name is resolved "
                 "there (getent over SSH) and the connection opened from there (a direct-tcpip channel over SSH); "
                 "nothing is installed",
                 "无需特权。在发起端主机（本机或 from: 指定的主机）上执行：主机名在该主机解析（经 SSH 时用 getent），"
                 "连接从该主机发起（经 SSH 时为 direct-tcpip 通道）；无需在该主机安装任何软件")
    vantage = True  # from: HOST opens the connection from that host

    def __init__(self) -> None:
        self._timeout_used: float | None = None

    def collect(self, ctx: ProbeContext, params: Any) -> TcpFacts:
        vantage = ctx.transport.name
        start = time.perf_counter()

        def facts(state: str, address: str | None, addresses: list[str], error: str | None,
                  connect_ms: float | None = None) -> TcpFacts:
            return TcpFacts(host=params.host, port=params.port, state=state, connect_ms=connect_ms,
                            address=address, addresses=addresses, error=error,
                            elapsed_ms=_ms(time.perf_counter() - start), vantage=vantage)

        limit = min(params.timeout, ctx.remaining(0.1) - 0.05)
        self._timeout_used = limit
        try:
            addresses = _lookup(ctx, params.host, max(0.1, limit))
        except (OSError, UnicodeError) as exc:  # gaierror, TimeoutError
            if isinstance(exc, TimeoutError):
                return facts(DNS_ERROR, None, [], "timeout")
            if classify(exc) != DNS_ERROR:
                raise
            return facts(DNS_ERROR, None, [], error_word(exc))
        state, address, word = FILTERED, addresses[0], "timeout"
        for address in addresses:
            limit = min(params.timeout, ctx.remaining(0.1) - 0.05)
            self._timeout_used = max(0.1, limit)
            t0 = time.perf_counter()
            try:
                sock = ctx.transport.connect(address, params.port, self._timeout_used)
            except OSError as exc:
                found = classify(exc)
                if found is None or found == DNS_ERROR:
                    raise _unclassified(exc, address, params.port, vantage) from exc
                state, word = found, error_word(exc)
                if found == FILTERED or ctx.remaining(0.0) < 0.2:
                    break
                continue  # refused / unreachable: a client would try the next address
            connect_ms = _ms(time.perf_counter() - t0)
            _close(sock)
            return facts(OPEN, address, addresses, None, connect_ms)
        return facts(state, address, addresses, word)

    def note(self, params: Any, facts: Model) -> Text | None:
        return tcp_message(facts, self._timeout_used if self._timeout_used is not None else params.timeout)


def _unclassified(exc: OSError, address: str, port: int, vantage: str) -> ProbeError:
    """A connection failure that says nothing about the path: an error result, not a guessed state."""
    w_en, w_zh = _where(vantage)
    tgt = _target(address, port)
    if (getattr(exc, "winerror", None) or exc.errno) == errno.ECONNABORTED:
        # an SSH server reports a failed direct-tcpip open without saying whether it was refused or unreachable
        return ProbeError(
            t(f"TCP {tgt} from {w_en}: {w_en} could not open the connection and did not say why ({exc}) — it was "
              f"refused, unreachable, or {w_en} does not allow forwarding",
              f"从{w_zh}连接 TCP {tgt}：{w_zh}未能建立连接且未说明原因（{exc}）——可能被拒绝、不可达，"
              f"或{w_zh}不允许转发"),
            t(f"check by hand on {w_en}: nc -vz {address} {port}; and that its sshd has AllowTcpForwarding yes",
              f"在{w_zh}上手动验证：nc -vz {address} {port}；并确认其 sshd 配置了 AllowTcpForwarding yes"))
    return ProbeError(
        t(f"could not attempt a TCP connection to {tgt} from {w_en}: {exc}",
          f"无法从{w_zh}尝试 TCP 连接 {tgt}：{exc}"),
        t(f"check that {w_en} may open connections (e.g. AllowTcpForwarding on its sshd)",
          f"检查{w_zh}是否允许发起连接（例如其 sshd 的 AllowTcpForwarding）"))


def tcp_message(f: Any, timeout: float) -> Text:
    """What a ``tcp`` outcome means and what to check next, in both languages (DESIGN.md §4 rule 7)."""
    w_en, w_zh = _where(f.vantage)
    tgt = _target(f.address or f.host, f.port)
    named = f.address is not None and f.address != f.host.strip().strip("[]")
    shown = f"{f.host} ({tgt})" if named else tgt
    head_en, head_zh = f"TCP {shown} from {w_en}", f"从{w_zh}连接 TCP {shown}"
    if f.state == OPEN:
        return t(f"{head_en}: connected in {f.connect_ms:g} ms (open)",
                 f"{head_zh}：{f.connect_ms:g} ms 建立连接（open，端口开放）")
    if f.state == REFUSED:
        return t(f"{head_en}: connection refused (refused) — {f.host} answered with a reset: nothing listens on "
                 f"port {f.port}, or a firewall REJECT rule answers for it; check that the service is running and "
                 f"listening on {f.port}/tcp (ss -ltn) and the host's firewall rules.",
                 f"{head_zh}：连接被拒绝（refused）——{f.host} 回复了 RST：端口 {f.port} 上没有服务在监听，或防火墙的 "
                 f"REJECT 规则代为拒绝；请确认服务已启动并监听 {f.port}/tcp（ss -ltn），并检查该主机的防火墙规则。")
    if f.state == FILTERED:
        return t(f"{head_en}: no answer in {_fmt_s(timeout)} s (filtered) — a firewall on the path or on {f.host} "
                 f"is dropping packets; check inbound rules for {f.port}/tcp.",
                 f"{head_zh}：{_fmt_s(timeout)} 秒内无应答（filtered，被过滤）——路径上或 {f.host} 上的防火墙在丢弃"
                 f"数据包；请检查 {f.port}/tcp 的入站规则。")
    if f.state == UNREACHABLE:
        if f.error in ("ENETUNREACH", "WSAENETUNREACH", "ENETDOWN"):
            return t(f"{head_en}: network unreachable ({f.error}, unreachable) — {w_en} has no route to "
                     f"{f.address}, or a router or firewall on the way answered 'network unreachable'; check the "
                     f"routes and default gateway on {w_en} (ip route get {f.address}) and any REJECT rule with "
                     f"icmp-net-unreachable.",
                     f"{head_zh}：网络不可达（{f.error}，unreachable）——{w_zh}没有到 {f.address} 的路由，"
                     f"或途中的路由器/防火墙回复了“网络不可达”；请检查{w_zh}的路由与默认网关"
                     f"（ip route get {f.address}）以及带 icmp-net-unreachable 的 REJECT 规则。")
        if f.error in ("EACCES", "EPERM"):
            return t(f"{head_en}: not permitted ({f.error}, unreachable) — a firewall on {w_en} itself refuses to "
                     f"send to {tgt} (an outbound rule), or the address is not allowed; check the outbound "
                     f"firewall rules on {w_en}.",
                     f"{head_zh}：不允许发送（{f.error}，unreachable）——{w_zh}本机的防火墙拒绝向 {tgt} 发送"
                     f"（出站规则），或该地址不允许访问；请检查{w_zh}的出站防火墙规则。")
        return t(f"{head_en}: host unreachable ({f.error}, unreachable) — a firewall answered "
                 f"'host unreachable / administratively prohibited' (a REJECT rule such as icmp-host-prohibited or "
                 f"icmp-admin-prohibited), or {f.address} is down or absent (no ARP answer on its network); check "
                 f"the firewall on {f.host} and on the path, and that the host is up.",
                 f"{head_zh}：主机不可达（{f.error}，unreachable）——防火墙回复了“主机不可达/管理性禁止”（例如 "
                 f"icmp-host-prohibited 或 icmp-admin-prohibited 的 REJECT 规则），或 {f.address} 已关机/不存在"
                 f"（同网段无 ARP 应答）；请检查 {f.host} 与路径上的防火墙，并确认主机在线。")
    # dns-error
    why = "no answer from the resolver in time" if f.error == "timeout" else f"{f.error}"
    why_zh = "解析器未在时限内应答" if f.error == "timeout" else f"{f.error}"
    return t(f"TCP {f.host}:{f.port} from {w_en}: the name {f.host} did not resolve ({why}, dns-error) — check the "
             f"spelling, /etc/hosts and the DNS servers in /etc/resolv.conf on {w_en}, or use the IP address.",
             f"从{w_zh}连接 TCP {f.host}:{f.port}：主机名 {f.host} 无法解析（{why_zh}，dns-error）——请检查拼写、"
             f"{w_zh}的 /etc/hosts 与 /etc/resolv.conf 中的 DNS 服务器，或直接使用 IP 地址。")


# ===========================================================================================================
# latency
# ===========================================================================================================
class LatencyParams(_TargetParams):
    host: str = Field(description="host name or IP address to measure (resolved once, at the vantage host)")
    port: int | None = Field(default=None, ge=1, le=65535,
                             description="TCP port for connect samples (the default method); with method: icmp, "
                                         "the port to fall back to when ICMP cannot be sent")
    method: Literal["tcp", "icmp"] | None = Field(
        default=None, description="tcp (default: TCP connect samples, needs a port, no privilege) or icmp (echo "
                                  "requests, like ping)")
    count: int = Field(default=10, ge=1, le=1000, description="samples to send")
    interval: float = Field(default=0.2, ge=0.01, le=60,
                            description="seconds between the starts of two samples ('200ms'); samples do not wait "
                                        "for the previous one to finish, as with ping")
    timeout: float = Field(default=1.0, gt=0, le=60,
                           description="seconds each sample waits for its answer ('1s'); later is lost")

    @model_validator()
    def _port_for_tcp(self) -> LatencyParams:
        if self.method != "icmp" and self.port is None:
            raise ValueError("TCP samples need a port: give port (e.g. port: 443), or method: icmp")
        return self


class LatencyFacts(Facts):
    host: str = Field(description="the host as given")
    address: str = Field(description="the IP address that was measured")
    port: int | None = Field(description="the TCP port sampled (null for icmp)")
    method: Literal["tcp", "icmp"] = Field(description="how the samples were taken: tcp (connect) or icmp (echo); "
                                                      "tcp when icmp was asked for but could not be sent")
    sampler: str = Field(description="the mechanism: tcp-connect, icmp-raw-socket (root), icmp-datagram-socket "
                                     "(net.ipv4.ping_group_range) or icmp-ping-command (the host's ping)")
    samples: int = Field(description="samples sent")
    received: int = Field(description="samples answered within the timeout")
    loss_percent: float = Field(description="share of samples without an answer in time (timeouts; for tcp also "
                                            "refused or unreachable connects), 0-100")
    min_ms: float | None = Field(description="fastest round trip (null when nothing was received)")
    avg_ms: float | None = Field(description="mean round trip of the received samples (null when none)")
    p50_ms: float | None = Field(description="median round trip (null when none)")
    p95_ms: float | None = Field(description="95th percentile round trip, interpolated between ranks (null when "
                                             "none)")
    max_ms: float | None = Field(description="slowest round trip (null when none)")
    jitter_ms: float | None = Field(description="mean absolute difference of consecutive received round trips "
                                                "(RFC 3550's delay variation, unsmoothed); null with fewer than two")
    loss_causes: dict[str, int] = Field(description="lost samples by cause: timeout, refused, unreachable, or an "
                                                    "errno name")
    vantage: str = Field(description="the host the samples were sent from (local: the machine envprobe runs on)")


class LatencyProbe(Probe):
    name = "latency"
    summary = t("Round-trip time, jitter and loss to a host, by TCP connect samples or ICMP echo",
                "到目标主机的往返时延、抖动与丢包（TCP 连接采样或 ICMP 回显）")
    Params = LatencyParams
    Facts = LatencyFacts
    example = """\
- id: db-latency
  title: {zh-CN: 应用到数据库的网络时延, en: App to database latency}
  probe: latency
  with: {host: 10.0.0.5, port: 1433, count: 20, interval: 200ms}
  expect: {p95_ms: "< 10", loss_percent: "== 0", jitter_ms: "< 5"}
- id: gateway-ping
  probe: latency
  with: {host: 10.0.0.1, method: icmp, port: 22}
  expect: {p50_ms: "< 2 ms", loss_percent: "< 1"}
"""
    advice = {
        "loss_percent": t("samples are lost: look for a firewall that drops some packets (ICMP echo is often "
                          "blocked: sample a TCP port instead), a flaky link (Wi-Fi, VPN, duplex mismatch) or a "
                          "congested uplink; repeat with a larger count",
                          "存在丢包：排查丢弃部分数据包的防火墙（ICMP 常被屏蔽，可改为对 TCP 端口采样）、不稳定的链路"
                          "（Wi-Fi、VPN、双工不匹配）或拥塞的上行链路；可增大 count 复测"),
        "jitter_ms": t("the delay varies: a congested or wireless link, or a busy host; real-time traffic "
                       "(video, PLC polling) suffers first",
                       "时延波动大：链路拥塞、无线链路或主机繁忙；实时业务（视频、PLC 轮询）首先受影响"),
        "received": t("too few answers: see loss_percent", "应答过少：参见 loss_percent"),
        "*": t("no answers (null): see the message for why samples were lost; a slow path: compare with a host "
               "on the same network (is it the link or the server?), look for VPN or proxy hops and congested "
               "uplinks (traceroute / mtr from the vantage host)",
               "无应答（null）：结果消息说明了采样丢失的原因；路径较慢：与同网段的主机对比（是链路还是服务器的"
               "问题），排查 VPN、代理跳转与拥塞的上行链路（在发起端主机执行 traceroute / mtr）"),
    }
    requires = t("TCP samples: no privilege. ICMP: root (raw socket), the user's group in "
                 "net.ipv4.ping_group_range (datagram socket) or the host's ping command; otherwise TCP samples "
                 "on the given port, with a note. From a from: host: TCP samples are direct-tcpip channels "
                 "opened by it, ICMP is its own ping command; nothing is installed",
                 "TCP 采样无需特权。ICMP：root（原始套接字）、用户组在 net.ipv4.ping_group_range 内（数据报套接字）"
                 "或主机上的 ping 命令；都不可用时改用给定端口的 TCP 采样并在结果中注明。使用 from: 时，TCP 采样"
                 "为该主机发起的 direct-tcpip 通道，ICMP 使用该主机自带的 ping 命令；无需安装任何软件")
    vantage = True  # from: HOST samples from that host

    def __init__(self) -> None:
        self._notes: list[Text] = []

    def collect(self, ctx: ProbeContext, params: Any) -> LatencyFacts:
        self._notes = []
        vantage = ctx.transport.name
        try:
            address = _lookup(ctx, params.host, max(0.1, min(5.0, ctx.remaining(0.1) / 2)))[0]
        except (OSError, UnicodeError) as exc:
            w_en, w_zh = _where(vantage)
            raise ProbeError(
                t(f"the name {params.host} did not resolve on {w_en} ({error_word(exc)}): nothing was measured",
                  f"主机名 {params.host} 在{w_zh}无法解析（{error_word(exc)}），未进行测量"),
                t(f"check the spelling, /etc/hosts and the DNS servers on {w_en}, or use the IP address",
                  f"请检查拼写、{w_zh}的 /etc/hosts 与 DNS 服务器，或直接使用 IP 地址"),
            ) from exc

        count, timeout = self._fit(ctx, params)
        method: str = params.method or "tcp"
        sampled: Sampled | None = None
        if method == "icmp":
            sampled, why = self._icmp(ctx, address, count, params.interval, timeout)
            if sampled is None:
                if params.port is None:
                    raise ProbeError(
                        t(f"cannot send ICMP echo to {address}: {why[0]}",
                          f"无法向 {address} 发送 ICMP 回显：{why[1]}"),
                        t("run as root, add the user's group to net.ipv4.ping_group_range, install ping — or "
                          "give a port to measure by TCP connect instead",
                          "以 root 运行、把用户组加入 net.ipv4.ping_group_range、安装 ping，"
                          "或给出 port 改用 TCP 连接采样"),
                    )
                self._notes.append(t(
                    f"ICMP echo could not be sent ({why[0]}): measured by TCP connect to port {params.port} instead",
                    f"无法发送 ICMP 回显（{why[1]}）：已改为对端口 {params.port} 的 TCP 连接采样"))
                method = "tcp"
        if sampled is None:
            sampled = tcp_samples(ctx.transport.connect, address, params.port, count, params.interval, timeout)
        facts = latency_facts(params.host, address, params.port if method == "tcp" else None, method,
                              sampled, vantage)
        self._explain(params, facts, timeout)
        return facts

    # -- planning ---------------------------------------------------------------------------------------
    def _fit(self, ctx: ProbeContext, params: Any) -> tuple[int, float]:
        """Samples and per-sample timeout that fit in the check's remaining time: (count-1)×interval + timeout."""
        budget = ctx.deadline - time.monotonic() - _MARGIN
        timeout = min(params.timeout, max(0.05, budget))
        count = params.count
        if (count - 1) * params.interval + timeout > budget:
            count = max(1, int((budget - timeout) / params.interval) + 1)
            self._notes.append(t(
                f"only {count} of {params.count} samples fit in the check's {ctx.timeout:g} s timeout; raise "
                f"'timeout:' or lower count or interval",
                f"检查时限 {ctx.timeout:g} 秒内只能完成 {params.count} 个采样中的 {count} 个；请调大 'timeout:' "
                f"或减小 count、interval"))
        if timeout < params.timeout:
            self._notes.append(t(f"each sample waited only {timeout:.2g} s (the check's remaining time)",
                                 f"受检查时限限制，每个采样仅等待 {timeout:.2g} 秒"))
        return count, timeout

    def _icmp(self, ctx: ProbeContext, address: str, count: int, interval: float,
              timeout: float) -> tuple[Sampled | None, tuple[str, str]]:
        """ICMP samples by the best means allowed, or (None, why not)."""
        why = ("", "")
        if ctx.prefer_native:
            try:
                return icmp_samples(address, count, interval, timeout), why
            except IcmpNotPermitted as exc:
                why = (str(exc), str(exc))
            if sys.platform == "win32":  # ping's output is localized there: not parsed
                return None, why
        wait = max(1, math.ceil(timeout))  # ping waits whole seconds for the last replies
        room = ctx.deadline - time.monotonic() - _MARGIN
        if (count - 1) * interval + wait > room:
            count = max(1, int((room - wait) / interval) + 1)
        limit = (count - 1) * interval + wait + 1.0
        res = ctx.run(ping_argv(address, count, interval, timeout), timeout=limit)
        if res.timed_out:
            raise ProbeError(t(f"ping {address} did not finish within {limit:.3g} s and was stopped",
                               f"ping {address} 未在 {limit:.3g} 秒内结束，已被终止"))
        try:
            return parse_ping(res.stdout, timeout), why
        except IcmpNotPermitted as exc:
            detail = (res.stderr.strip() or res.stdout.strip() or str(exc)).splitlines()[-1] if res.rc != 127 \
                else "no ping command"
            en = f"{why[0]}; the ping command: {detail}" if why[0] else f"the ping command: {detail}"
            zh = f"{why[1]}；ping 命令：{detail}" if why[1] else f"ping 命令：{detail}"
            return None, (en, zh)

    # -- the message ------------------------------------------------------------------------------------
    def _explain(self, params: Any, f: LatencyFacts, timeout: float) -> None:
        w_en, w_zh = _where(f.vantage)
        what_en = f"TCP connects to {_target(f.address, f.port)}" if f.method == "tcp" \
            else f"ICMP echoes to {f.address}"
        what_zh = f"对 {_target(f.address, f.port)} 的 TCP 连接" if f.method == "tcp" \
            else f"对 {f.address} 的 ICMP 回显"
        if f.received:
            head = t(f"{f.samples} {what_en} from {w_en}: {f.received} answered, p50 {f.p50_ms:g} ms, "
                     f"p95 {f.p95_ms:g} ms, loss {f.loss_percent:g} %",
                     f"从{w_zh}发起 {f.samples} 次{what_zh}：{f.received} 次有应答，p50 {f.p50_ms:g} ms，"
                     f"p95 {f.p95_ms:g} ms，丢包 {f.loss_percent:g}%")
        else:
            head = t(f"{f.samples} {what_en} from {w_en}: none answered (100 % loss)",
                     f"从{w_zh}发起 {f.samples} 次{what_zh}：全部无应答（丢包 100%）")
        self._notes.insert(0, head)
        lost = f.samples - f.received
        if not lost:
            return
        causes = ", ".join(f"{k} {v}" for k, v in sorted(f.loss_causes.items()))
        if f.loss_causes.get("refused") == lost and not f.received:
            self._notes.append(t(
                f"every connect was refused: nothing listens on {_target(f.address, f.port)} or a REJECT rule answers "
                f"for it — sample a port that is open, or use method: icmp",
                f"所有连接均被拒绝：{_target(f.address, f.port)} 上没有服务监听或有 REJECT 规则——请改用开放的端口，"
                f"或使用 method: icmp"))
        elif f.loss_causes.get("timeout") == lost and not f.received:
            self._notes.append(t(
                f"no answer within {_fmt_s(timeout)} s to any sample: the host is down or a firewall drops the "
                f"packets" + (" (ICMP echo is often blocked: try a TCP port)" if f.method == "icmp" else ""),
                f"所有采样在 {_fmt_s(timeout)} 秒内均无应答：主机未运行，或防火墙丢弃了数据包"
                + ("（ICMP 常被屏蔽，可改为对 TCP 端口采样）" if f.method == "icmp" else "")))
        else:
            self._notes.append(t(f"lost: {causes}", f"丢失原因：{causes}"))

    def note(self, params: Any, facts: Model) -> Text | None:
        if not self._notes:
            return None
        return {"en": "; ".join(n["en"] for n in self._notes), "zh-CN": "；".join(n["zh-CN"] for n in self._notes)}


# -- samples and statistics ---------------------------------------------------------------------------------
class Sampled:
    """Round trips in send order (None: lost) with the cause of each loss, and the mechanism used."""

    def __init__(self, rtts: list[float | None], causes: list[str | None], sampler: str):
        self.rtts = rtts
        self.causes = causes
        self.sampler = sampler


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default; q=0.5 is the median)."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def latency_facts(host: str, address: str, port: int | None, method: str, s: Sampled, vantage: str) -> LatencyFacts:
    got = [r for r in s.rtts if r is not None]
    ordered = sorted(got)
    n = len(s.rtts)
    causes: dict[str, int] = {}
    for r, c in zip(s.rtts, s.causes, strict=True):
        if r is None:
            causes[c or "timeout"] = causes.get(c or "timeout", 0) + 1

    def r3(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    steps = [abs(b - a) for a, b in zip(got, got[1:], strict=False)]
    jitter = sum(steps) / len(steps) if steps else None
    return LatencyFacts(
        host=host, address=address, port=port, method=method, sampler=s.sampler,
        samples=n, received=len(got),
        loss_percent=round(100.0 * (n - len(got)) / n, 1) if n else 100.0,
        min_ms=r3(ordered[0]) if ordered else None,
        avg_ms=r3(sum(got) / len(got)) if got else None,
        p50_ms=r3(percentile(ordered, 0.5)) if ordered else None,
        p95_ms=r3(percentile(ordered, 0.95)) if ordered else None,
        max_ms=r3(ordered[-1]) if ordered else None,
        jitter_ms=r3(jitter),
        loss_causes=causes, vantage=vantage,
    )


def _close(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def _loss_word(exc: BaseException) -> str:
    state = classify(exc)
    if state == FILTERED:
        return "timeout"
    if state in (REFUSED, UNREACHABLE):
        return state
    return error_word(exc)


def tcp_samples(connect: Callable[[str, int, float], Any], address: str, port: int, count: int,
                interval: float, timeout: float) -> Sampled:
    """TCP connect round trips, one started every ``interval`` seconds (each in its own thread, so a lost sample
    does not delay the next), each waiting up to ``timeout``. Bounded by (count-1)×interval + timeout."""
    rtts: list[float | None] = [None] * count
    causes: list[str | None] = [None] * count
    failures: list[BaseException] = []

    def one(i: int) -> None:
        t0 = time.perf_counter()
        try:
            sock = connect(address, port, timeout)
        except OSError as exc:
            causes[i] = _loss_word(exc)
            return
        except TransportError as exc:  # the vantage host itself failed: not a network observation
            causes[i] = "transport-error"
            failures.append(exc)
            return
        elapsed = time.perf_counter() - t0
        _close(sock)
        if elapsed <= timeout:
            rtts[i] = elapsed * 1000.0
        else:
            causes[i] = "timeout"

    workers: list[threading.Thread] = []
    start = time.perf_counter()
    for i in range(count):
        wait = start + i * interval - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        th = threading.Thread(target=one, args=(i,), daemon=True, name=f"latency-tcp-{i}")
        th.start()
        workers.append(th)
    end = time.perf_counter() + timeout + 0.5
    for th in workers:
        th.join(max(0.0, end - time.perf_counter()))
    for i, th in enumerate(workers):
        if th.is_alive() and rtts[i] is None:
            causes[i] = causes[i] or "timeout"
    if failures:
        raise failures[0]
    return Sampled(rtts, causes, "tcp-connect")


# -- ICMP through a socket (this machine) -------------------------------------------------------------------
class IcmpNotPermitted(Exception):
    """This process may not send ICMP echo (no root, no ping_group_range, no usable ping command)."""


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo(v6: bool, ident: int, seq: int) -> bytes:
    kind = 128 if v6 else 8
    payload = struct.pack("!d", time.time()) + bytes(range(48))  # 56 bytes, as ping sends
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if v6:  # the kernel computes ICMPv6 checksums
        return header + payload
    return struct.pack("!BBHHH", kind, 0, _checksum(header + payload), ident, seq) + payload


def _open_icmp(v6: bool) -> tuple[socket.socket, str]:
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    try:
        return socket.socket(fam, socket.SOCK_RAW, proto), "icmp-raw-socket"
    except OSError:
        pass
    try:
        return socket.socket(fam, socket.SOCK_DGRAM, proto), "icmp-datagram-socket"
    except OSError as exc:
        raise IcmpNotPermitted(
            "no raw socket (not root) and no ICMP datagram socket (net.ipv4.ping_group_range excludes this "
            f"user's group: {exc.strerror or exc})") from exc


def icmp_samples(address: str, count: int, interval: float, timeout: float) -> Sampled:
    """ICMP echo round trips from this machine: one request every ``interval`` seconds, each waiting up to
    ``timeout`` for its reply (replies matched by identifier, sequence and source), like ping."""
    v6 = ":" in address
    sock, sampler = _open_icmp(v6)
    raw = sampler == "icmp-raw-socket"
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    dest = socket.getaddrinfo(address, None, fam, socket.SOCK_RAW if raw else socket.SOCK_DGRAM, 0,
                              socket.AI_NUMERICHOST)[0][4]
    ident = (os.getpid() ^ random.getrandbits(16)) & 0xFFFF
    base = random.getrandbits(16)
    reply_type, errors = (129, {1: "unreachable", 3: "ttl-exceeded"}) if v6 else (0, {3: "unreachable",
                                                                                      11: "ttl-exceeded"})
    rtts: list[float | None] = [None] * count
    causes: list[str | None] = [None] * count
    sent: dict[int, tuple[int, float]] = {}  # seq -> (index, send time)
    try:
        sock.setblocking(False)
        start = time.perf_counter()
        nxt = 0
        while True:
            now = time.perf_counter()
            if nxt < count and now >= start + nxt * interval:
                seq = (base + nxt) & 0xFFFF
                try:
                    sock.sendto(_echo(v6, ident, seq), dest)
                    sent[seq] = (nxt, time.perf_counter())
                except OSError as exc:
                    causes[nxt] = _loss_word(exc)
                nxt += 1
                continue
            for seq, (i, t0) in list(sent.items()):
                if now - t0 > timeout:
                    causes[i] = causes[i] or "timeout"
                    del sent[seq]
            if nxt >= count and not sent:
                break
            wake = [t0 + timeout for _, t0 in sent.values()]
            if nxt < count:
                wake.append(start + nxt * interval)
            ready, _, _ = select.select([sock], [], [], max(0.0, min(wake) - time.perf_counter()))
            if not ready:
                continue
            while True:
                try:
                    data, src = sock.recvfrom(4096)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # an ICMP error queued on a datagram socket: the sample times out
                arrived = time.perf_counter()
                if raw and not v6:
                    data = data[(data[0] & 0x0F) * 4:] if data and data[0] >> 4 == 4 else data
                if len(data) < 8:
                    continue
                kind, _code, _ck, rid, rseq = struct.unpack("!BBHHH", data[:8])
                if kind == reply_type and (rid == ident or not raw) and rseq in sent \
                        and _same(src[0], address):
                    i, t0 = sent.pop(rseq)
                    if arrived - t0 <= timeout:
                        rtts[i] = (arrived - t0) * 1000.0
                    else:
                        causes[i] = "timeout"
                elif raw and kind in errors:
                    inner = data[8:]
                    if not v6 and len(inner) >= 20:
                        inner = inner[(inner[0] & 0x0F) * 4:]
                    elif v6:
                        inner = inner[40:]
                    if len(inner) >= 8:
                        ikind, _, _, iid, iseq = struct.unpack("!BBHHH", inner[:8])
                        if ikind in (8, 128) and iid == ident and iseq in sent:
                            i, _t0 = sent.pop(iseq)
                            causes[i] = errors[kind]
    finally:
        sock.close()
    return Sampled(rtts, causes, sampler)


def _same(a: str, b: str) -> bool:
    return a.split("%", 1)[0] == b.split("%", 1)[0]


# -- ICMP through the host's ping command (the shell path; a remote vantage host) ---------------------------
def ping_argv(address: str, count: int, interval: float, timeout: float) -> list[str]:
    """iputils / busybox ping: numeric output, ``count`` echoes ``interval`` apart, then a wait of ``-W`` seconds
    for the last replies: about (count-1)×interval + timeout in all. ``-W`` is rounded up to whole seconds
    (older iputils and busybox take no fractions; replies later than ``timeout`` still count as lost) and there is
    no ``-w`` deadline: with one, ping waits for every reply until the deadline instead."""
    return ["ping", "-n", "-c", str(count), "-i", f"{interval:g}", "-W", f"{max(1, math.ceil(timeout))}", address]


def parse_ping(text: str, timeout: float) -> Sampled:
    """Round trips from ping's output (iputils: ``icmp_seq=N … time=X ms``; busybox: ``seq=N``). Pure.

    Replies later than ``timeout`` count as lost, as on the socket path; duplicates are ignored; lost samples
    are listed after the received ones (their order matters to no statistic). Raises :class:`IcmpNotPermitted`
    when ping printed no statistics (it could not send: no privilege, no command).
    """
    import re

    transmitted: int | None = None
    by_seq: dict[int, float] = {}
    errs: dict[int, str] = {}
    for line in text.splitlines():
        m = re.search(r"(\d+) packets transmitted", line)
        if m:
            transmitted = int(m.group(1))
            continue
        m = re.search(r"\b(?:icmp_seq|seq)=(\d+)", line)
        if not m:
            continue
        seq = int(m.group(1))
        tm = re.search(r"\btime[=<]\s*([\d.]+)\s*ms", line)
        if tm:
            if "DUP!" not in line and seq not in by_seq:
                by_seq[seq] = float(tm.group(1))
        else:
            errs.setdefault(seq, "ttl-exceeded" if "exceeded" in line.lower() else "unreachable")
    if transmitted is None:
        raise IcmpNotPermitted("ping printed no statistics")
    in_time = [by_seq[k] for k in sorted(by_seq) if by_seq[k] <= timeout * 1000.0][:transmitted]
    lost = transmitted - len(in_time)
    err_causes = [errs[k] for k in sorted(errs) if k not in by_seq]
    causes = (err_causes + ["timeout"] * lost)[:lost]
    rtts: list[float | None] = [*in_time, *([None] * lost)]
    return Sampled(rtts, [None] * len(in_time) + list(causes), "icmp-ping-command")
