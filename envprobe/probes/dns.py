"""``dns``: ask a DNS server for a name and observe what it answers, how fast, and from which server.

What is observed is one stub-resolver lookup, as an application on the host would make it: a query with the
RD (recursion desired) bit, sent to one server (``server:``) or to the nameservers the host is configured
with, tried in order; SERVFAIL, REFUSED, NOTIMP, a timeout or an unreachable server move on to the next one,
as glibc does. CNAMEs are followed inside the answer (the recursive server chases them; a stub does not ask
again). The name is queried as given (absolute): the ``search``/``domain`` lists of resolv.conf are not
applied, and neither are /etc/hosts or nsswitch (run ``getent ahosts NAME`` with the ``command`` probe for
"what would the application get through NSS").

``rcode`` is the server's response code, with one refinement and two observations of our own:

* ``NODATA`` — the server said NOERROR but gave no record of the asked type (``dig`` shows ``status:
  NOERROR, ANSWER: 0``; RFC 2308 calls this NODATA). It is told apart from NOERROR so that ``rcode: NOERROR``
  means "the name resolves", which is what a readiness check asks. An answer that ends at a CNAME whose
  target the server did not resolve is NODATA too, with the chain in ``cname_chain``.
* ``timeout`` — nothing answered within ``timeout`` seconds; ``unreachable`` — the network said no (ICMP port
  or host unreachable, TCP connection refused, no route). Both are observations, not probe errors.

Other response codes keep their DNS names (FORMERR, NOTIMP, YXDOMAIN ...).

Where each part runs (vantage). "The host" below is the transport the probe is given: the check's host, or
with ``from: HOST`` that vantage host (the probe declares ``vantage = True``).

* **Which servers.** With ``server:``, that address; the system's resolver configuration is not read
  (dnspython's ``Resolver(configure=False)`` contract). Without it, the nameservers in the *host's*
  ``/etc/resolv.conf``, read through the transport as a declared source: locally this machine's file, over
  SSH the remote host's file, fetched in that host's batch. A Windows laptop has no resolv.conf: locally there,
  dnspython's reading of the system configuration is used.
* **The query.** UDP queries are sent from the machine running envprobe. With ``tcp: true`` the TCP stream is
  opened with ``transport.connect()``, i.e. *from the host* (over SSH a ``direct-tcpip`` channel), so that path
  is already the host's. Sending UDP from the host itself is a later issue's concern: SSH cannot carry UDP, so
  it will run a one-shot query on the host (``getent ahosts``, or ``dig``/``python3`` when present) or fall
  back to TCP through the transport. Until then, a remote host's UDP result says that the query left from
  here. A loopback nameserver in a remote host's resolv.conf (127.0.0.53 for systemd-resolved, a local
  dnsmasq) would be this machine's loopback when asked over UDP from here: it is skipped with a note, and a
  probe error says so when nothing else is configured; with ``tcp: true`` it is asked on the host.

Timing: ``timeout`` bounds the whole lookup. Several nameservers share it in order (each gets an equal part of
what is left); within a server's part a UDP query is sent again once, halfway, since a lost datagram is not a
dead server. ``resolve_ms`` runs from the first query to the answer used (failover included: a dead first
nameserver costs every lookup on the host its share of the timeout); it is null when no answer came.

dnspython is imported inside :meth:`DnsProbe.collect` only: a scan without dns checks does not pay for it.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import socket
import struct
import sys
import time
from typing import Any, Literal

from envprobe.loader import parse_duration
from envprobe.model import Text, join_text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator
from envprobe.transport.base import Source

RESOLV_CONF = "/etc/resolv.conf"
RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "PTR", "NS", "SOA"]
#: Response codes after which a stub resolver asks the next nameserver (as glibc does).
_NEXT_SERVER = {"SERVFAIL", "REFUSED", "NOTIMP", "timeout", "unreachable"}
#: glibc reads at most three nameservers (MAXNS).
MAXNS = 3
EDNS_PAYLOAD = 1232
_GIVE_SERVER = t("give the DNS server to ask with 'server:'", "请用 'server:' 指定要查询的 DNS 服务器")


class DnsParams(Model):
    name: str = Field(description="the name to look up (e.g. db01.corp.example); for type PTR an IP address "
                                  "(the reverse name is built) or an in-addr.arpa/ip6.arpa name")
    type: RecordType = Field(default="A", description="record type: A (default), AAAA, CNAME, MX, TXT, SRV, "
                                                      "PTR, NS or SOA")
    server: str | None = Field(default=None, description="IP address of the DNS server to ask; default: the "
                                                         "nameservers in the host's /etc/resolv.conf, in order")
    port: int = Field(default=53, ge=1, le=65535, description="DNS port on the server(s) (default 53)")
    timeout: float = Field(default=3.0, gt=0, le=60, description="seconds the whole lookup may take, failover "
                                                                 "included (default 3; '500ms' and '3s' work)")
    tcp: bool = Field(default=False, description="query over TCP instead of UDP (a truncated UDP answer is "
                                                 "retried over TCP anyway)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        s = v.strip()
        if s.endswith(".") and s != ".":
            s = s[:-1]
        if not s or any(c.isspace() for c in s) or ".." in s or s.startswith("."):
            raise ValueError("give a DNS name such as db01.corp.example (no spaces, no empty labels)")
        if len(s) > 253 or any(len(label) > 63 for label in s.split(".")):
            raise ValueError("a DNS name has at most 253 characters and each label at most 63")
        return s

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("server")
    @classmethod
    def _server(cls, v: str | None) -> str | None:
        if v is None:
            return None
        raw = v.strip().strip("[]")
        try:
            return str(ipaddress.ip_address(raw))
        except ValueError:
            raise ValueError("give the DNS server's IP address (a name would itself need a DNS lookup); "
                             "put a non-standard port in 'port:'") from None

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> Any:
        return parse_duration(v)


class DnsFacts(Facts):
    name: str = Field(description="the name that was asked, without the trailing dot (for PTR: the reverse "
                                  "name, e.g. 5.0.0.10.in-addr.arpa)")
    type: str = Field(description="the record type asked for")
    rcode: str = Field(description="NOERROR (records of the type came back), NODATA (NOERROR with no record of "
                                   "that type), NXDOMAIN (no such name), SERVFAIL, REFUSED, timeout (nothing "
                                   "answered in time), unreachable (port or host unreachable, connection "
                                   "refused); rarer DNS codes by name (FORMERR, NOTIMP ...)")
    answers: list[str] = Field(description="the records of the asked type, in the server's order: addresses "
                                           "for A/AAAA; names without the trailing dot, lower-case, for "
                                           "CNAME/PTR/NS; 'preference exchange' for MX ('10 mail.corp.example'); "
                                           "the joined text of each TXT record; 'priority weight port target' "
                                           "for SRV; 'mname rname serial refresh retry expire minimum' for SOA")
    cname_chain: list[str] = Field(description="the aliases followed from the name to the records, in order "
                                               "(www.corp.example → app.corp.example gives "
                                               "['app.corp.example']); empty without CNAMEs or for type CNAME")
    ttl: int | None = Field(description="seconds the answer records may be cached (their TTL); null "
                                        "without answers")
    resolve_ms: float | None = Field(description="from the first query to the answer used, failover to later "
                                                 "nameservers included; null when no answer came")
    server: str = Field(description="the server that gave the answer used, or the last one tried, as ip:port "
                                    "([ip]:port for IPv6)")
    protocol: Literal["udp", "tcp"] = Field(description="udp, or tcp when asked for or when a UDP answer was "
                                                        "truncated")
    tried: list[str] = Field(description="each server asked, in order, with what it gave, e.g. "
                                         "['10.0.0.2:53 timeout', '10.0.0.3:53 NOERROR']")
    detail: str | None = Field(description="for timeout and unreachable, what happened on the network: 'port "
                                           "unreachable', 'host unreachable', 'connection refused', '2 UDP "
                                           "queries sent, no answer in 3 s', 'TCP connection not established "
                                           "in 3 s', 'TCP connected, no answer in 3 s'; else null")


# -- pure helpers -------------------------------------------------------------------------------------------
def parse_resolv_conf(text: str) -> list[str]:
    """The nameserver addresses in a resolv.conf, in order, at most three (glibc's MAXNS); pure."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            addr = words[1]
            try:
                ipaddress.ip_address(addr.split("%", 1)[0])
            except ValueError:
                continue  # glibc ignores what is not an address
            if addr not in out:
                out.append(addr)
    return out[:MAXNS]


def hostport(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback


def _bare(name: Any) -> str:
    """A dnspython name as text: no trailing dot, lower-case (DNS names are case-insensitive)."""
    s: str = name.to_text(omit_final_dot=True)
    return s.lower()


def format_rdata(rd: Any) -> str:
    """One record's data as envprobe shows it (see DnsFacts.answers)."""
    import dns.rdatatype as rt

    kind = rd.rdtype
    if kind in (rt.A, rt.AAAA):
        return str(rd.address)
    if kind in (rt.CNAME, rt.PTR, rt.NS):
        return _bare(rd.target)
    if kind == rt.MX:
        return f"{rd.preference} {_bare(rd.exchange)}"
    if kind == rt.TXT:
        return b"".join(rd.strings).decode("utf-8", "replace")
    if kind == rt.SRV:
        return f"{rd.priority} {rd.weight} {rd.port} {_bare(rd.target)}"
    if kind == rt.SOA:
        return (f"{_bare(rd.mname)} {_bare(rd.rname)} {rd.serial} {rd.refresh} {rd.retry} {rd.expire} "
                f"{rd.minimum}")
    return str(rd.to_text())


def read_answer(response: Any, qname: Any, rdtype: Any) -> tuple[str, list[str], list[str], int | None]:
    """(rcode, answers, cname_chain, ttl) from a response message; pure."""
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype as rt

    rcode = dns.rcode.to_text(response.rcode())
    chain: list[str] = []
    name = qname
    if rdtype != rt.CNAME:
        seen = {name}
        for _ in range(16):
            alias = response.get_rrset(response.answer, name, dns.rdataclass.IN, rt.CNAME)
            if alias is None or not len(alias):
                break
            name = alias[0].target
            chain.append(_bare(name))
            if name in seen:
                break  # a CNAME loop
            seen.add(name)
    rrset = response.get_rrset(response.answer, name, dns.rdataclass.IN, rdtype)
    answers = [format_rdata(rd) for rd in rrset] if rrset is not None else []
    ttl = int(rrset.ttl) if rrset is not None and answers else None
    if rcode == "NOERROR" and not answers:
        rcode = "NODATA"
    return rcode, answers, chain, ttl


# -- talking to a server ------------------------------------------------------------------------------------
class _Reply:
    """What one server gave: a response message, or a network outcome (timeout / unreachable)."""

    def __init__(self, response: Any = None, outcome: str = "", detail: str | None = None,
                 protocol: str = "udp", elapsed: float = 0.0):
        self.response = response
        self.outcome = outcome
        self.detail = detail
        self.protocol = protocol
        self.elapsed = elapsed


_UNREACHABLE_ERRNO = {
    errno.ECONNREFUSED: "port unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EACCES: "sending prohibited (a local firewall rule)",
    errno.EPERM: "sending prohibited (a local firewall rule)",
    errno.EADDRNOTAVAIL: "address not available from this host",
    errno.ECONNRESET: "port unreachable",  # Windows reports ICMP port unreachable on UDP as a reset
}


def _net_word(exc: OSError, proto: str) -> str:
    if proto == "tcp" and isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if proto == "tcp" and isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    return _UNREACHABLE_ERRNO.get(exc.errno or 0) or exc.strerror or str(exc) or type(exc).__name__


def _ask_udp(wire: bytes, query: Any, ip: str, port: int, budget: float) -> _Reply:
    """One UDP exchange on a connected socket (so ICMP errors are seen), resent once halfway."""
    import dns.exception
    import dns.message

    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    start = time.monotonic()
    deadline = start + budget
    resend_at = start + budget / 2 if budget >= 0.4 else deadline
    bad = sent = 0
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((ip, port))
            sock.send(wire)
            sent = 1
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                if now >= resend_at:
                    sock.send(wire)
                    sent += 1
                    resend_at = deadline
                sock.settimeout(max(0.001, min(deadline, resend_at) - now))
                try:
                    data = sock.recv(65535)
                except TimeoutError:
                    continue
                try:
                    resp = dns.message.from_wire(data)
                except dns.exception.DNSException:
                    bad += 1
                    continue
                if query.is_response(resp):
                    return _Reply(resp, elapsed=time.monotonic() - start)
                bad += 1
        except OSError as exc:
            return _Reply(outcome="unreachable", detail=_net_word(exc, "udp"), elapsed=time.monotonic() - start)
    detail = f"{sent} UDP {'query' if sent == 1 else 'queries'} sent, no answer in {budget:.3g} s"
    if bad:
        detail += f" ({bad} unusable replies ignored)"
    return _Reply(outcome="timeout", detail=detail, elapsed=time.monotonic() - start)


def _recv_exact(stream: Any, n: int, deadline: float) -> bytes:
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        stream.settimeout(left)
        chunk = stream.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _ask_tcp(ctx: ProbeContext, wire: bytes, query: Any, ip: str, port: int, budget: float) -> _Reply:
    """One TCP exchange over a stream opened by the transport, i.e. from the host (RFC 1035 4.2.2 framing)."""
    import dns.exception
    import dns.message

    start = time.monotonic()
    deadline = start + budget
    stream = None
    try:
        try:
            stream = ctx.transport.connect(ip, port, timeout=budget)
        except TimeoutError:
            return _Reply(outcome="timeout", detail=f"TCP connection not established in {budget:.3g} s",
                          protocol="tcp", elapsed=time.monotonic() - start)
        stream.settimeout(max(0.001, deadline - time.monotonic()))
        stream.sendall(struct.pack("!H", len(wire)) + wire)
        while True:
            (length,) = struct.unpack("!H", _recv_exact(stream, 2, deadline))
            data = _recv_exact(stream, length, deadline)
            try:
                resp = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue
            if query.is_response(resp):
                return _Reply(resp, protocol="tcp", elapsed=time.monotonic() - start)
    except TimeoutError:
        return _Reply(outcome="timeout", detail=f"TCP connected, no answer in {budget:.3g} s", protocol="tcp",
                      elapsed=time.monotonic() - start)
    except EOFError:
        return _Reply(outcome="unreachable", detail="the server closed the TCP connection without answering",
                      protocol="tcp", elapsed=time.monotonic() - start)
    except OSError as exc:
        return _Reply(outcome="unreachable", detail=_net_word(exc, "tcp"), protocol="tcp",
                      elapsed=time.monotonic() - start)
    finally:
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


# -- the probe ----------------------------------------------------------------------------------------------
class DnsProbe(Probe):
    name = "dns"
    summary = t("DNS lookup: does a name resolve on the client's DNS server, to what, and how fast",
                "DNS 解析：名称能否在客户 DNS 服务器上解析、解析结果与耗时")
    Params = DnsParams
    Facts = DnsFacts
    #: ``from: HOST`` makes HOST's transport the one used: its resolv.conf, and its TCP path with ``tcp: true``
    vantage = True
    requires = t("UDP (or TCP) port 53 to the DNS server from the machine running envprobe — with tcp: true, "
                 "from the host; without 'server', read access to /etc/resolv.conf on the host",
                 "运行 envprobe 的机器能以 UDP（或 TCP）53 端口访问 DNS 服务器（tcp: true 时由被检主机发起）；"
                 "未指定 server 时需能读取主机上的 /etc/resolv.conf")
    example = """\
- id: dns-db-host
  title: {zh-CN: 数据库主机名可解析, en: The database host name resolves}
  probe: dns
  with: {name: db01.corp.example, type: A, server: 10.0.0.2}
  expect: {rcode: NOERROR, answers: contains 10.0.0.5, resolve_ms: "< 200"}
- id: dns-ldap-srv
  title: {zh-CN: 域控 LDAP 服务记录, en: LDAP service record of the domain controllers}
  probe: dns
  with: {name: _ldap._tcp.corp.example, type: SRV, timeout: 2s}
  expect: {rcode: NOERROR}
- id: dns-reverse
  title: {zh-CN: 应用服务器反向解析, en: Reverse lookup of the application server}
  probe: dns
  with: {name: 10.0.0.10, type: PTR, server: 10.0.0.2}
  expect: {answers: contains app01.corp.example}
"""
    advice = {
        "rcode": t("the message says what the answer means and what to check; to compare by hand: "
                   "dig @SERVER -p PORT NAME TYPE (add +tcp for TCP; Windows: nslookup -type=TYPE NAME SERVER)",
                   "结果说明中给出了应答的含义及排查方向；可手工复现对比：dig @服务器 -p 端口 名称 类型"
                   "（TCP 加 +tcp；Windows：nslookup -type=类型 名称 服务器）"),
        "answers": t("the name resolves to something else than expected: check the record in the client's DNS "
                     "(a stale record, a split-horizon view that answers differently inside and outside, "
                     "or a cache still holding the old value until its TTL runs out)",
                     "解析结果与预期不符：请核对客户 DNS 中的记录（记录过期未更新、内外网视图不同，"
                     "或缓存在 TTL 到期前仍保留旧值）"),
        "resolve_ms": t("resolution is slow: check that the first nameserver in /etc/resolv.conf answers (a dead "
                        "first nameserver delays every lookup by its timeout) and the server's forwarders",
                        "解析较慢：请确认 /etc/resolv.conf 中第一个 nameserver 可用（首个服务器失效会让每次解析"
                        "都先等待其超时），并检查 DNS 服务器的转发配置"),
        "ttl": t("ask the DNS administrator to adjust the record's TTL", "请 DNS 管理员调整该记录的 TTL"),
        "cname_chain": t("the name is an alias of a different target than expected: check the CNAME record",
                         "该名称的别名指向与预期不同：请核对 CNAME 记录"),
        "server": t("a different server answered than expected: check the order of nameservers in "
                    "/etc/resolv.conf and whether the first ones answer",
                    "应答的服务器与预期不同：请检查 /etc/resolv.conf 中 nameserver 的顺序以及前面的服务器是否可用"),
        "*": t("check the host's DNS settings (/etc/resolv.conf) with the client's network administrator",
               "请与客户网络管理员核对主机的 DNS 设置（/etc/resolv.conf）"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [] if params.server else [Source.file(RESOLV_CONF)]

    # -- which servers ---------------------------------------------------------------------------------
    def _servers(self, ctx: ProbeContext, params: Any) -> tuple[list[str], list[str]]:
        """(servers to ask, loopback servers skipped because the host is not this machine)."""
        if params.server:
            return [params.server], []
        src = Source.file(RESOLV_CONF)
        res = ctx.fetch([src])[src]
        if res.rc != 0 or res.timed_out:
            if ctx.transport.is_local and sys.platform == "win32":
                return _system_nameservers(), []
            why = (res.stderr or "timed out").strip()
            raise ProbeError(
                t(f"cannot read the host's resolver configuration {RESOLV_CONF} ({why})",
                  f"无法读取主机的解析配置 {RESOLV_CONF}（{why}）"),
                _GIVE_SERVER)
        servers = parse_resolv_conf(res.stdout)
        if not servers:
            raise ProbeError(
                t(f"the host's {RESOLV_CONF} lists no nameserver", f"主机的 {RESOLV_CONF} 中没有 nameserver"),
                t("the host cannot resolve names through DNS: ask the administrator which DNS servers it should "
                  "use, or give one with 'server:'",
                  "该主机无法通过 DNS 解析名称：请向管理员确认应使用的 DNS 服务器，或用 'server:' 指定"))
        skipped: list[str] = []
        if not ctx.transport.is_local and not params.tcp:
            skipped = [s for s in servers if _is_loopback(s)]
            servers = [s for s in servers if not _is_loopback(s)]
            if not servers:
                shown = ", ".join(skipped)
                raise ProbeError(
                    t(f"the host's only nameservers are on its loopback ({shown}), which cannot be asked from "
                      "the machine running envprobe",
                      f"主机仅配置了本机回环地址上的 nameserver（{shown}），无法从运行 envprobe 的机器查询"),
                    t("use tcp: true (the query then starts on the host), or check with the command probe: "
                      "getent ahosts NAME",
                      "可设置 tcp: true（查询由主机发起），或用 command 探针检查：getent ahosts 名称"))
        return servers, skipped

    # -- the lookup ------------------------------------------------------------------------------------
    def collect(self, ctx: ProbeContext, params: Any) -> DnsFacts:
        import dns.exception
        import dns.flags
        import dns.message
        import dns.name
        import dns.rdata
        import dns.rdataclass
        import dns.rdatatype
        import dns.reversename

        servers, skipped = self._servers(ctx, params)
        rdtype = dns.rdatatype.from_text(params.type)
        try:
            if params.type == "PTR" and _is_ip(params.name):
                qname = dns.reversename.from_address(params.name)
            else:
                qname = dns.name.from_text(params.name)
        except dns.exception.DNSException as exc:
            raise ProbeError(t(f"{params.name!r} is not a valid DNS name: {exc}",
                               f"{params.name!r} 不是有效的 DNS 名称：{exc}")) from None

        # everything but the exchange happens before the clock starts: the query is built once, and the record
        # classes the answer will need are loaded now (dnspython imports them on first use, ~ms each)
        query = dns.message.make_query(qname, rdtype, use_edns=0, payload=EDNS_PAYLOAD)
        for kind in {rdtype, dns.rdatatype.CNAME, dns.rdatatype.SOA, dns.rdatatype.NS}:
            dns.rdata.get_rdata_class(dns.rdataclass.IN, kind)
        budget = min(params.timeout, ctx.remaining())
        start = time.monotonic()
        deadline = start + budget
        tried: list[str] = []
        chosen: tuple[_Reply, str, float] | None = None  # the reply used, its server, ms since the first query
        for i, ip in enumerate(servers):
            share = max(0.05, (deadline - time.monotonic()) / (len(servers) - i))
            reply = self._ask(ctx, query, ip, params.port, share, params.tcp)
            at_ms = round((time.monotonic() - start) * 1000.0, 2)
            outcome = reply.outcome or read_answer(reply.response, qname, rdtype)[0]
            tried.append(f"{hostport(ip, params.port)} {outcome}")
            # when every server fails, a DNS answer (SERVFAIL, REFUSED) says more than a network failure
            if chosen is None or reply.response is not None or chosen[0].response is None:
                chosen = (reply, ip, at_ms)
            if outcome not in _NEXT_SERVER or time.monotonic() >= deadline:
                break
        assert chosen is not None
        reply, ip, elapsed_ms = chosen
        if reply.response is not None:
            rcode, answers, chain, ttl = read_answer(reply.response, qname, rdtype)
            resolve_ms: float | None = elapsed_ms
        else:
            rcode, answers, chain, ttl, resolve_ms = reply.outcome, [], [], None, None
        facts = DnsFacts(
            name=_bare(qname),
            type=params.type,
            rcode=rcode,
            answers=answers,
            cname_chain=chain,
            ttl=ttl,
            resolve_ms=resolve_ms,
            server=hostport(ip, params.port),
            protocol=reply.protocol,
            tried=tried,
            detail=reply.detail,
        )
        # for note() (the runner calls it on the same instance): what the facts alone do not tell
        self._skipped = skipped
        self._remote_udp = not ctx.transport.is_local and reply.protocol == "udp"
        return facts

    def _ask(self, ctx: ProbeContext, query: Any, ip: str, port: int, budget: float, tcp: bool) -> _Reply:
        import dns.flags
        import dns.message

        t0 = time.monotonic()
        if tcp:
            return _ask_tcp(ctx, query.to_wire(), query, ip, port, budget)
        reply = _ask_udp(query.to_wire(), query, ip, port, budget)
        left = budget - (time.monotonic() - t0)
        resp = reply.response
        if resp is not None and resp.rcode() == 1 and query.edns >= 0 and left > 0:  # FORMERR: an old server
            question = query.question[0]
            query = dns.message.make_query(question.name, question.rdtype, use_edns=False)
            reply = _ask_udp(query.to_wire(), query, ip, port, left)
            resp = reply.response
            left = budget - (time.monotonic() - t0)
        if resp is not None and resp.flags & dns.flags.TC and left > 0:
            return _ask_tcp(ctx, query.to_wire(), query, ip, port, left)
        return reply

    # -- explanation -----------------------------------------------------------------------------------
    def note(self, params: Any, facts: Any) -> Text | None:
        parts: list[Text] = [explain(facts)]
        if len(facts.tried) > 1:
            shown = ", ".join(facts.tried)
            parts.append(t(f"servers tried in order: {shown}", f"依次尝试的服务器：{shown}"))
        skipped: list[str] = getattr(self, "_skipped", [])
        if skipped:
            shown = ", ".join(skipped)
            parts.append(t(f"loopback nameservers of the host not asked from here: {shown}",
                           f"未从本机查询主机回环地址上的 nameserver：{shown}"))
        if getattr(self, "_remote_udp", False):
            parts.append(t("the UDP query was sent from the machine running envprobe, not from the host "
                           "(use tcp: true to query from the host)",
                           "UDP 查询由运行 envprobe 的机器发出，而非被检主机（设置 tcp: true 可由主机发起查询）"))
        return join_text(*parts, sep="; ")


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def _system_nameservers() -> list[str]:
    """This machine's nameservers from its system configuration (Windows registry) through dnspython."""
    import dns.exception
    import dns.resolver

    try:
        servers = [str(s) for s in dns.resolver.Resolver().nameservers]
    except dns.exception.DNSException as exc:
        raise ProbeError(t(f"cannot read this machine's DNS configuration: {exc}",
                           f"无法读取本机的 DNS 配置：{exc}"),
                         _GIVE_SERVER) from None
    if not servers:
        raise ProbeError(t("this machine has no DNS server configured", "本机未配置 DNS 服务器"),
                         _GIVE_SERVER)
    return servers[:MAXNS]


_DETAIL_ZH = {
    "port unreachable": "端口不可达",
    "host unreachable": "主机不可达",
    "network unreachable": "网络不可达",
    "connection refused": "连接被拒绝",
    "connection reset by the server": "连接被服务器重置",
    "sending prohibited (a local firewall rule)": "发送被禁止（本机防火墙规则）",
    "address not available from this host": "本机无法使用该地址",
    "the server closed the TCP connection without answering": "服务器未应答即关闭了 TCP 连接",
}
_DETAIL_RE = (
    (re.compile(r"^(\d+) UDP quer(?:y|ies) sent, no answer in ([\d.e+]+) s(?: \((\d+) unusable replies ignored\))?$"),
     lambda m: f"已发送 {m[1]} 个 UDP 查询，{m[2]} 秒内无应答" + (f"（忽略 {m[3]} 个无效应答）" if m[3] else "")),
    (re.compile(r"^TCP connection not established in ([\d.e+]+) s$"), lambda m: f"TCP 连接在 {m[1]} 秒内未建立"),
    (re.compile(r"^TCP connected, no answer in ([\d.e+]+) s$"), lambda m: f"TCP 已连接，{m[1]} 秒内无应答"),
)


def detail_zh(detail: str | None) -> str:
    """The ``detail`` fact in Chinese (the fact itself stays in English, like the rcode words)."""
    if not detail:
        return ""
    if detail in _DETAIL_ZH:
        return _DETAIL_ZH[detail]
    for pattern, fmt in _DETAIL_RE:
        m = pattern.match(detail)
        if m:
            return fmt(m)
    return detail


def _shown(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n})" if len(items) > n else "")


def explain(f: Any) -> Text:
    """What the observed rcode means and what to check next, in both languages."""
    q = f"{f.name} {f.type}"
    srv = f.server
    via = f" (via {' → '.join(f.cname_chain)})" if f.cname_chain else ""
    via_zh = f"（经别名 {' → '.join(f.cname_chain)}）" if f.cname_chain else ""
    ms = f"{f.resolve_ms:g} ms" if f.resolve_ms is not None else ""
    rc = f.rcode
    if rc == "NOERROR":
        return t(f"{q} from {srv}: {_shown(f.answers)} in {ms}{via}",
                 f"{srv} 对 {q} 的应答：{_shown(f.answers)}，耗时 {ms}{via_zh}")
    if rc == "NODATA":
        if f.cname_chain:
            last = f.cname_chain[-1]
            return t(f"{f.name} is an alias of {last}, but {srv} gave no {f.type} record for it (NODATA); "
                     f"check that {last} exists and has {f.type} records, or ask a recursive server",
                     f"{f.name} 是 {last} 的别名，但 {srv} 未给出其 {f.type} 记录（NODATA）；"
                     f"请确认 {last} 存在且有 {f.type} 记录，或改问递归 DNS 服务器")
        return t(f"{f.name} exists on {srv} but has no {f.type} record (NOERROR with an empty answer, NODATA); "
                 f"check the record type (a host with only IPv4 has no AAAA) and the record in the zone",
                 f"{f.name} 在 {srv} 上存在，但没有 {f.type} 记录（NOERROR 空应答，NODATA）；"
                 f"请核对记录类型（仅有 IPv4 的主机没有 AAAA 记录）及区域中的记录")
    if rc == "NXDOMAIN":
        if f.cname_chain:
            last = f.cname_chain[-1]
            return t(f"{f.name} is an alias of {last}, which does not exist on {srv} (NXDOMAIN); check the "
                     f"CNAME target and the client's internal DNS zone",
                     f"{f.name} 是 {last} 的别名，而 {last} 在 {srv} 上不存在（NXDOMAIN）；"
                     f"请检查 CNAME 的目标及客户内部 DNS 区域")
        return t(f"{f.name} does not exist on {srv} (NXDOMAIN); check the spelling and the client's internal "
                 f"DNS zone (is the record created, in a zone this server serves or forwards?)",
                 f"{f.name} 在 {srv} 上不存在（NXDOMAIN）；请检查名称拼写及客户内部 DNS 区域"
                 f"（记录是否已创建、是否位于该服务器负责或转发的区域）")
    if rc == "SERVFAIL":
        return t(f"{srv} failed to answer for {q} (SERVFAIL): it could not get an answer from the servers it "
                 f"forwards to or that hold the zone, or the zone is broken (DNSSEC validation, a lame "
                 f"delegation); check the server's forwarders and its log",
                 f"{srv} 无法给出 {q} 的应答（SERVFAIL）：它未能从转发目标或权威服务器获得应答，"
                 f"或区域配置有误（DNSSEC 校验失败、授权错误）；请检查该服务器的转发配置与日志")
    if rc == "REFUSED":
        return t(f"{srv} refuses to answer for {q} (REFUSED): it is not authoritative for this name and does "
                 f"not recurse for this client; check that it is the client's internal DNS server and that "
                 f"it allows recursion (or forwarding) for our address",
                 f"{srv} 拒绝应答 {q}（REFUSED）：它不负责该名称，也不为本客户端递归查询；"
                 f"请确认这是客户的内部 DNS 服务器，且允许为我方地址递归（或转发）查询")
    if rc == "timeout":
        proto = "TCP" if f.protocol == "tcp" else "UDP"
        return t(f"nothing answered {q} from {srv} ({f.detail}); check the server address, "
                 f"that the DNS service runs, and that {proto} 53 is open on the path (a firewall that drops "
                 f"packets looks like this)",
                 f"{srv} 未应答 {q}（{detail_zh(f.detail)}）；请检查服务器地址、DNS 服务是否运行，"
                 f"以及路径上 {proto} 53 端口是否放通（防火墙丢弃报文时即为此现象）")
    if rc == "unreachable":
        return t(f"{srv} cannot be asked for {q}: {f.detail}; nothing listens for DNS on that address and port, "
                 f"or there is no route to it; check the server address and that the DNS service runs",
                 f"无法向 {srv} 查询 {q}：{detail_zh(f.detail)}；该地址和端口上没有 DNS 服务在监听，或网络不可达；"
                 f"请检查服务器地址及 DNS 服务是否运行")
    if rc == "FORMERR":
        return t(f"{srv} could not parse the query for {q} (FORMERR); an old server or a device on the path "
                 f"that mangles DNS; try tcp: true",
                 f"{srv} 无法解析对 {q} 的查询（FORMERR）；可能是老旧服务器或路径上改写 DNS 的设备；"
                 f"可尝试 tcp: true")
    if rc == "NOTIMP":
        return t(f"{srv} does not implement this kind of query for {q} (NOTIMP)",
                 f"{srv} 不支持对 {q} 的此类查询（NOTIMP）")
    return t(f"{srv} answered {q} with {rc}", f"{srv} 对 {q} 的应答码为 {rc}")
