"""The tcp and latency probes against real hosts in network namespaces (firewall rules, a delayed link, DNS in a
namespace), plus their pure parts (classification, statistics, ping output) on recorded inputs.

Nothing here resolves a name through the system resolver: names either end in ``.invalid`` (RFC 6761: they
never resolve, and the transports answer so without asking anybody) or are resolved inside a namespace whose
``/etc/resolv.conf`` (``/etc/netns/<ns>/resolv.conf``, bind-mounted by ``ip netns exec``) points at a dnsmasq
in another namespace.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from envprobe.model import Result
from envprobe.probes.base import ProbeContext, ProbeError
from envprobe.probes.net import (
    IcmpNotPermitted,
    LatencyParams,
    LatencyProbe,
    Sampled,
    TcpParams,
    TcpProbe,
    classify,
    error_word,
    latency_facts,
    parse_ping,
    percentile,
    ping_argv,
    tcp_message,
)
from envprobe.schema import ValidationError
from envprobe.transport.local import LocalTransport
from tests.conftest import ROOT, cli, need
from tests.netlab import in_netns, need_netlab, netlab  # noqa: F401 - netlab is a fixture

DNSMASQ = "/usr/sbin/dnsmasq"


def ctx(timeout: float = 10, transport=None, native: bool = True) -> ProbeContext:
    return ProbeContext(transport or LocalTransport(), "local", timeout, prefer_native=native)


def tcp(host: str, port: int, timeout: float = 1.0, context: ProbeContext | None = None):
    probe = TcpProbe()
    params = TcpParams(host=host, port=port, timeout=timeout)
    facts = probe.collect(context or ctx(), params)
    return facts, probe.note(params, facts)


def latency(context: ProbeContext | None = None, **kw):
    probe = LatencyProbe()
    params = LatencyParams(**kw)
    facts = probe.collect(context or ctx(), params)
    return facts, probe.note(params, facts)


# ===========================================================================================================
# pure parts
# ===========================================================================================================
@pytest.mark.parametrize("exc, state, word", [
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "refused", "ECONNREFUSED"),
    (TimeoutError("timed out"), "filtered", "timeout"),
    (OSError(errno.ETIMEDOUT, "kernel gave up"), "filtered", "ETIMEDOUT"),
    (OSError(errno.EHOSTUNREACH, "no route to host"), "unreachable", "EHOSTUNREACH"),
    (OSError(errno.ENETUNREACH, "network unreachable"), "unreachable", "ENETUNREACH"),
    (PermissionError(errno.EACCES, "admin prohibited"), "unreachable", "EACCES"),
    (PermissionError(errno.EPERM, "local OUTPUT rule"), "unreachable", "EPERM"),
    (socket.gaierror(socket.EAI_NONAME, "unknown"), "dns-error", "EAI_NONAME"),
    (socket.gaierror(socket.EAI_AGAIN, "try again"), "dns-error", "EAI_AGAIN"),
    (OSError(errno.ECONNABORTED, "the SSH server refused to open a channel"), None, "ECONNABORTED"),
])
def test_classify_connection_failures(exc, state, word):
    assert classify(exc) == state
    assert error_word(exc) == word


def test_params_take_durations_and_refuse_nonsense():
    assert TcpParams(host="db", port="1433", timeout="500ms").timeout == 0.5
    assert TcpParams(host="db", port=1433).timeout == 3.0
    for bad in ({"host": "db", "port": 0}, {"host": "db", "port": 70000}, {"host": " ", "port": 1},
                {"host": "db", "port": 1, "timeout": 0}):
        with pytest.raises(ValidationError):
            TcpParams(**bad)
    p = LatencyParams(host="db", port=1433, interval="200ms", timeout="2s")
    assert (p.count, p.interval, p.timeout, p.method) == (10, 0.2, 2.0, None)
    assert LatencyParams(host="gw", method="icmp").port is None
    with pytest.raises(ValidationError, match="port"):
        LatencyParams(host="db")
    with pytest.raises(ValidationError, match="port"):
        LatencyParams(host="db", method="tcp")
    with pytest.raises(ValidationError):
        LatencyParams(host="db", port=1, count=0)


def test_percentiles_interpolate_between_ranks():
    values = [float(x) for x in range(1, 11)]
    assert percentile(values, 0.5) == 5.5
    assert percentile(values, 0.95) == pytest.approx(9.55)
    assert percentile([3.0], 0.95) == 3.0


def test_statistics_count_losses_as_losses_never_as_zero():
    s = Sampled([None, 10.0, None, 20.0, 16.0], [ "timeout", None, "refused", None, None], "tcp-connect")
    f = latency_facts("db", "10.0.0.5", 1433, "tcp", s, "local")
    assert (f.samples, f.received, f.loss_percent) == (5, 3, 40.0)
    assert (f.min_ms, f.max_ms, f.p50_ms, f.avg_ms) == (10.0, 20.0, 16.0, pytest.approx(15.333, abs=1e-3))
    assert f.jitter_ms == 7.0  # |20-10| and |16-20|, averaged
    assert f.loss_causes == {"timeout": 1, "refused": 1}
    lost = latency_facts("db", "10.0.0.5", 1433, "tcp", Sampled([None] * 4, ["timeout"] * 4, "tcp-connect"), "x")
    assert lost.loss_percent == 100.0 and lost.received == 0
    assert [lost.min_ms, lost.avg_ms, lost.p50_ms, lost.p95_ms, lost.max_ms, lost.jitter_ms] == [None] * 6
    one = latency_facts("db", "10.0.0.5", None, "icmp", Sampled([5.0], [None], "icmp-raw-socket"), "x")
    assert one.p50_ms == 5.0 and one.jitter_ms is None


IPUTILS = """\
PING 10.0.0.5 (10.0.0.5) 56(84) bytes of data.
64 bytes from 10.0.0.5: icmp_seq=1 ttl=64 time=80.4 ms
64 bytes from 10.0.0.5: icmp_seq=2 ttl=64 time=80.2 ms
64 bytes from 10.0.0.5: icmp_seq=2 ttl=64 time=80.9 ms (DUP!)
64 bytes from 10.0.0.5: icmp_seq=4 ttl=64 time=1200 ms
64 bytes from 10.0.0.5: icmp_seq=5 ttl=64 time=81.0 ms

--- 10.0.0.5 ping statistics ---
5 packets transmitted, 4 received, +1 duplicates, 20% packet loss, time 806ms
rtt min/avg/max/mdev = 80.200/360.400/1200.000/484.900 ms, pipe 2
"""
IPUTILS_UNREACHABLE = """\
PING 10.0.0.9 (10.0.0.9) 56(84) bytes of data.
From 10.0.0.1 icmp_seq=1 Destination Host Unreachable
From 10.0.0.1 icmp_seq=2 Destination Host Unreachable

--- 10.0.0.9 ping statistics ---
3 packets transmitted, 0 received, +2 errors, 100% packet loss, time 2030ms
"""
BUSYBOX = """\
PING 10.0.0.5 (10.0.0.5): 56 data bytes
64 bytes from 10.0.0.5: seq=0 ttl=64 time=0.081 ms
64 bytes from 10.0.0.5: seq=2 ttl=64 time=0.102 ms

--- 10.0.0.5 ping statistics ---
3 packets transmitted, 2 packets received, 33% packet loss
round-trip min/avg/max = 0.081/0.091/0.102 ms
"""


def test_parse_ping_outputs():
    s = parse_ping(IPUTILS, timeout=1.0)  # the 1200 ms reply came after the 1 s timeout: lost, as on sockets
    f = latency_facts("h", "10.0.0.5", None, "icmp", s, "app01")
    assert (f.samples, f.received, f.p50_ms, f.loss_causes) == (5, 3, 80.4, {"timeout": 2})
    s = parse_ping(IPUTILS_UNREACHABLE, timeout=1.0)
    f = latency_facts("h", "10.0.0.9", None, "icmp", s, "app01")
    assert (f.samples, f.received, f.loss_causes) == (3, 0, {"unreachable": 2, "timeout": 1})
    s = parse_ping(BUSYBOX, timeout=1.0)
    assert [r for r in s.rtts if r is not None] == [0.081, 0.102] and len(s.rtts) == 3
    for text in ("ping: socket: Operation not permitted\n", "", "sh: 1: ping: not found\n"):
        with pytest.raises(IcmpNotPermitted):
            parse_ping(text, timeout=1.0)
    argv = ping_argv("10.0.0.5", 10, 0.2, 1.0)
    assert argv == ["ping", "-n", "-c", "10", "-i", "0.2", "-W", "1", "10.0.0.5"]
    assert ping_argv("10.0.0.5", 3, 0.5, 1.5)[-2] == "2"  # whole seconds: older pings take no fractions


def test_messages_say_what_each_state_means_in_both_languages():
    base = {"host": "10.0.0.5", "port": 1433, "address": "10.0.0.5", "addresses": ["10.0.0.5"],
            "elapsed_ms": 1.0, "vantage": "app01", "connect_ms": None}
    cases = {
        ("open", None): (["connected in 0.4 ms", "open"], ["建立连接", "端口开放"]),
        ("refused", "ECONNREFUSED"): (["refused", "nothing listens on port 1433", "REJECT"], ["拒绝", "没有服务在监听"]),
        ("filtered", "timeout"): (["TCP 10.0.0.5:1433 from app01: no answer in 3 s (filtered) — a firewall on the "
                                   "path or on 10.0.0.5 is dropping packets; check inbound rules for 1433/tcp."],
                                  ["3 秒内无应答", "防火墙", "1433/tcp 的入站规则"]),
        ("unreachable", "EHOSTUNREACH"): (["host unreachable", "icmp-admin-prohibited"], ["主机不可达", "管理性禁止"]),
        ("unreachable", "ENETUNREACH"): (["no route to 10.0.0.5", "ip route get"], ["没有到 10.0.0.5 的路由"]),
        ("unreachable", "EPERM"): (["outbound"], ["出站"]),
        ("dns-error", "EAI_NONAME"): (["did not resolve", "/etc/resolv.conf on app01"], ["无法解析", "DNS 服务器"]),
    }
    for (state, err), (en_words, zh_words) in cases.items():
        facts = type("F", (), {**base, "state": state, "error": err,
                               "connect_ms": 0.4 if state == "open" else None})()
        msg = tcp_message(facts, 3.0)
        for w in en_words:
            assert w in msg["en"], (state, msg["en"])
        for w in zh_words:
            assert w in msg["zh-CN"], (state, msg["zh-CN"])
        assert state in msg["en"] and state in msg["zh-CN"]


def test_dns_error_for_an_invalid_name_without_asking_a_resolver():
    f, note = tcp("db01.invalid", 1433)
    assert (f.state, f.address, f.addresses, f.error, f.connect_ms) == ("dns-error", None, [], "EAI_NONAME", None)
    assert "db01.invalid did not resolve" in note["en"] and "无法解析" in note["zh-CN"]
    with pytest.raises(ProbeError) as info:
        latency(host="db01.invalid", port=1433)
    assert "did not resolve" in info.value.message["en"] and "无法解析" in info.value.message["zh-CN"]


def test_local_resolve_literals_invalid_names_and_its_own_timeout(monkeypatch):
    tr = LocalTransport()
    assert tr.resolve("10.0.0.5") == ["10.0.0.5"] and tr.resolve("[::1]") == ["::1"]
    assert tr.resolve("fe80::1%eth0") == ["fe80::1%eth0"]
    for name in ("db01.invalid", "db01.INVALID.", "invalid"):
        with pytest.raises(socket.gaierror):
            tr.resolve(name)

    def slow_getaddrinfo(*args, **kwargs):
        time.sleep(2)
        raise AssertionError("never returns in time")

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        tr.resolve("db.example.test", timeout=0.3)
    assert time.monotonic() - t0 < 1
    f, note = tcp("db.example.test", 1433, timeout=0.3)
    assert (f.state, f.error) == ("dns-error", "timeout")
    assert "no answer from the resolver in time" in note["en"] and "解析器未在时限内应答" in note["zh-CN"]


def test_probe_docs_list_parameters_fields_and_example():
    for name, words in (("tcp", ["state", "connect_ms", "address", "dns-error", "Example:"]),
                        ("latency", ["p50_ms", "p95_ms", "jitter_ms", "loss_percent", "samples", "method",
                                     "ping_group_range", "Example:"])):
        res = cli("probes", name)
        assert res.code == 0
        for w in words:
            assert w in res.out, (name, w)


# ===========================================================================================================
# a firewalled host
# ===========================================================================================================
OPEN, CLOSED, RESET, DROP, ADMIN, NETUNREACH, NFT_DROP = 8080, 8081, 8082, 8083, 8084, 8085, 8086


@pytest.fixture(scope="module")
def fw(netlab):  # noqa: F811
    """A host with a listener on every port but CLOSED, and a different firewall rule per port."""
    need_netlab(iptables=True, nft=True)
    host = netlab.add_host("fw")
    for port in (OPEN, RESET, DROP, ADMIN, NETUNREACH, NFT_DROP):
        host.listen_tcp(port)
    host.iptables(f"-A INPUT -p tcp --dport {RESET} -j REJECT --reject-with tcp-reset",
                  f"-A INPUT -p tcp --dport {DROP} -j DROP",
                  f"-A INPUT -p tcp --dport {ADMIN} -j REJECT --reject-with icmp-admin-prohibited",
                  f"-A INPUT -p tcp --dport {NETUNREACH} -j REJECT --reject-with icmp-net-unreachable")
    host.nft("table inet envprobe_test {\n chain input {\n  type filter hook input priority 0;\n"
             f"  tcp dport {NFT_DROP} drop\n }}\n}}\n")
    return host


@pytest.mark.parametrize("port, state, error", [
    (OPEN, "open", None),
    (CLOSED, "refused", "ECONNREFUSED"),
    (RESET, "refused", "ECONNREFUSED"),
    (DROP, "filtered", "timeout"),
    (NFT_DROP, "filtered", "timeout"),
    (ADMIN, "unreachable", "EHOSTUNREACH"),
    (NETUNREACH, "unreachable", "ENETUNREACH"),
])
def test_tcp_states_against_firewall_rules(fw, port, state, error):
    t0 = time.monotonic()
    f, note = tcp(fw.address, port, timeout=1.0)
    took = time.monotonic() - t0
    assert (f.state, f.error, f.address, f.addresses, f.port) == (state, error, fw.address, [fw.address], port)
    assert f.vantage == "local"
    if state == "open":
        assert f.connect_ms is not None and 0 < f.connect_ms < 100
        assert f"connected in {f.connect_ms:g} ms" in note["en"]
    else:
        assert f.connect_ms is None
    if state == "filtered":
        assert 1.0 <= took < 2.0 and 1000 <= f.elapsed_ms < 2000  # within timeout + 1 s
        assert "no answer in 1 s (filtered)" in note["en"] and "1 秒内无应答" in note["zh-CN"]
    else:
        assert took < 0.5
    assert f"{state})" in note["en"] and state in note["zh-CN"]


def test_tcp_timeout_is_kept_within_the_checks_time(fw):
    t0 = time.monotonic()
    f, note = tcp(fw.address, DROP, timeout=5.0, context=ctx(timeout=1.2))
    assert f.state == "filtered" and time.monotonic() - t0 < 1.3
    assert "no answer in 1.1" in note["en"]


def test_tcp_tries_the_next_address_as_clients_do(netlab, fw):  # noqa: F811
    other = netlab.add_host("other")  # nothing listens on it

    class TwoAddresses(LocalTransport):
        def resolve(self, name, timeout=5.0):
            return [other.address, fw.address]

    f, _ = tcp("db.lab.test", OPEN, context=ctx(transport=TwoAddresses()))
    assert (f.state, f.address, f.addresses) == ("open", fw.address, [other.address, fw.address])
    f, note = tcp("db.lab.test", CLOSED, context=ctx(transport=TwoAddresses()))
    assert (f.state, f.address) == ("refused", fw.address)
    assert f"db.lab.test ({fw.address}:{CLOSED})" in note["en"]


def test_tcp_from_a_vantage_host_without_a_route(netlab, fw):  # noqa: F811
    vantage = netlab.add_host("app01")
    tr = vantage.transport()
    f, note = tcp("198.51.100.7", 1433, context=ctx(transport=tr))
    assert (f.state, f.error, f.vantage) == ("unreachable", "ENETUNREACH", "app01")
    assert "from app01: network unreachable" in note["en"] and "从app01连接" in note["zh-CN"]
    f, note = tcp(fw.address, OPEN, context=ctx(transport=tr))  # the same vantage reaches the lab
    assert f.state == "open" and "from app01" in note["en"]


# ===========================================================================================================
# names resolved at the vantage host, by a real DNS server in a namespace
# ===========================================================================================================
@pytest.fixture(scope="module")
def dns_lab(netlab, fw, tmp_path_factory):  # noqa: F811
    """dnsmasq in its own host, authoritative for lab.test (NXDOMAIN for unknown names), and a client host whose
    resolv.conf points at it."""
    need(os.path.exists(DNSMASQ), "needs dnsmasq at /usr/sbin/dnsmasq")
    server = netlab.add_host("dns")
    conf = tmp_path_factory.mktemp("dnsmasq") / "dnsmasq.conf"
    conf.write_text(f"port=53\nlisten-address={server.address}\nbind-interfaces\nno-resolv\nno-hosts\n"
                    f"local=/lab.test/\nhost-record=db.lab.test,{fw.address}\n")
    proc = server.spawn([DNSMASQ, "--keep-in-foreground", f"--conf-file={conf}", "--pid-file=",
                         "--log-facility=-", "--user=root"], stderr=subprocess.PIPE)
    client = netlab.add_host("client")
    client.etc_file("resolv.conf", f"nameserver {server.address}\noptions timeout:1 attempts:1\n")
    deadline = time.monotonic() + 5
    while client.exec(["getent", "ahosts", "db.lab.test"], check=False).returncode != 0:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "dnsmasq did not answer"
        time.sleep(0.05)
    return client


def test_names_resolve_at_the_vantage_host(dns_lab, fw):
    tr = dns_lab.transport()
    f, note = tcp("db.lab.test", OPEN, context=ctx(transport=tr))
    assert (f.state, f.address) == ("open", fw.address)
    assert f"db.lab.test ({fw.address}:{OPEN})" in note["en"]
    f, note = tcp("nothing.lab.test", OPEN, context=ctx(transport=tr))
    assert (f.state, f.error, f.address) == ("dns-error", "EAI_NONAME", None)
    assert "the name nothing.lab.test did not resolve" in note["en"]


def test_scan_in_a_namespace_reports_dns_errors(dns_lab, fw, tmp_path):
    """The whole CLI in the client namespace, resolving through its own resolv.conf (dnsmasq answers NXDOMAIN)."""
    checklist = tmp_path / "dns.yaml"
    checklist.write_text(yaml.safe_dump({"version": 1, "checks": [
        {"id": "db-by-name", "probe": "tcp", "with": {"host": "db.lab.test", "port": OPEN},
         "expect": {"state": "open"}},
        {"id": "missing-name", "probe": "tcp", "with": {"host": "nxdomain.lab.test", "port": OPEN},
         "expect": {"state": "open"}},
        {"id": "latency-by-name", "probe": "latency", "with": {"host": "db.lab.test", "port": OPEN, "count": 3},
         "expect": {"loss_percent": "== 0"}},
    ]}))
    out = tmp_path / "out.json"
    res = dns_lab.exec([str(ROOT / ".venv" / "bin" / "envprobe"), "scan", str(checklist), "--json", str(out), "-q"],
                       check=False, timeout=60)
    assert res.returncode == 1, res.stderr + res.stdout
    results = {r["check"]: r for r in json.loads(out.read_text())["results"]}
    assert results["db-by-name"]["observed"]["state"] == "open"
    assert results["db-by-name"]["observed"]["address"] == fw.address
    missing = results["missing-name"]
    assert missing["status"] == "fail" and missing["observed"]["state"] == "dns-error"
    assert missing["observed"]["error"] == "EAI_NONAME"
    assert "did not resolve" in missing["message"]["en"] and "无法解析" in missing["message"]["zh-CN"]
    assert results["latency-by-name"]["status"] == "pass"


# ===========================================================================================================
# latency over the delayed link
# ===========================================================================================================
DELAY = 40  # one way: 80 ms round trip
SLOW_OPEN, SLOW_DROP, SLOW_RESET = 9000, 9001, 9002


@pytest.fixture(scope="module")
def slow(netlab):  # noqa: F811
    """A host 40 ms away (each way) from this process, through the user-space delayed link."""
    need_netlab(tun=True, iptables=True, ping=True)
    host = netlab.add_host("slow")
    link = netlab.delayed_link(None, host, DELAY)
    for port in (SLOW_OPEN, SLOW_DROP, SLOW_RESET):
        host.listen_tcp(port, address=link.b_address)
    host.iptables(f"-A INPUT -p tcp --dport {SLOW_DROP} -j DROP",
                  f"-A INPUT -p tcp --dport {SLOW_RESET} -j REJECT --reject-with tcp-reset")
    return link


def test_latency_tcp_over_the_delayed_link(slow):
    f, note = latency(host=slow.b_address, port=SLOW_OPEN, count=10, interval=0.1)
    assert (f.method, f.sampler, f.samples, f.received, f.loss_percent) == ("tcp", "tcp-connect", 10, 10, 0.0)
    assert abs(f.p50_ms - 2 * DELAY) < 3, f
    assert 2 * DELAY - 1 < f.min_ms <= f.p50_ms <= f.p95_ms <= f.max_ms < 2 * DELAY + 20
    assert f.jitter_ms < 3 and f.loss_causes == {}
    assert f"10 TCP connects to {slow.b_address}:{SLOW_OPEN} from this machine: 10 answered" in note["en"]
    assert "10 次有应答" in note["zh-CN"]


def test_latency_icmp_over_the_delayed_link(slow):
    f, note = latency(host=slow.b_address, method="icmp", count=10, interval=0.1)
    assert (f.method, f.port, f.samples, f.received) == ("icmp", None, 10, 10)
    assert f.sampler == "icmp-raw-socket"  # root
    assert abs(f.p50_ms - 2 * DELAY) < 3, f
    assert "ICMP echoes" in note["en"] and "ICMP 回显" in note["zh-CN"]


def test_latency_icmp_through_the_ping_command_agrees(slow):
    """The shell path (a remote vantage host's ping) measures the same link as the socket path."""
    f, _ = latency(ctx(native=False), host=slow.b_address, method="icmp", count=10, interval=0.1)
    assert (f.sampler, f.samples, f.received) == ("icmp-ping-command", 10, 10)
    assert abs(f.p50_ms - 2 * DELAY) < 3, f


def test_latency_against_a_dropped_port_is_all_loss_and_bounded(slow):
    t0 = time.monotonic()
    f, note = latency(host=slow.b_address, port=SLOW_DROP, count=5, interval=0.2, timeout=0.5)
    took = time.monotonic() - t0
    assert took < 4 * 0.2 + 0.5 + 0.5  # (count-1) × interval + timeout, with a little slack
    assert (f.samples, f.received, f.loss_percent, f.loss_causes) == (5, 0, 100.0, {"timeout": 5})
    assert [f.min_ms, f.avg_ms, f.p50_ms, f.p95_ms, f.max_ms, f.jitter_ms] == [None] * 6
    assert "none answered (100 % loss)" in note["en"] and "丢包 100%" in note["zh-CN"]
    assert "firewall drops" in note["en"]


@pytest.mark.parametrize("native", [True, False], ids=["socket", "ping-command"])
def test_latency_icmp_to_a_host_that_drops_echoes(netlab, native):  # noqa: F811
    need_netlab(iptables=True, ping=True)
    mute = netlab.hosts.get("mute") or netlab.add_host("mute")
    if "icmp" not in mute.exec(["iptables", "-S", "INPUT"]).stdout:
        mute.iptables("-A INPUT -p icmp -j DROP")
    t0 = time.monotonic()
    f, note = latency(ctx(native=native), host=mute.address, method="icmp", count=4, interval=0.2, timeout=1)
    assert time.monotonic() - t0 < 3 * 0.2 + 1 + 0.5  # (count-1) × interval + timeout, a little slack
    assert (f.samples, f.received, f.loss_percent, f.loss_causes) == (4, 0, 100.0, {"timeout": 4})
    assert f.p50_ms is None and f.method == "icmp"
    assert "ICMP echo is often blocked: try a TCP port" in note["en"] and "ICMP 常被屏蔽" in note["zh-CN"]


def test_latency_against_a_rejected_port_counts_refusals_as_loss(slow):
    f, note = latency(host=slow.b_address, port=SLOW_RESET, count=4, interval=0.1)
    assert (f.samples, f.received, f.loss_percent, f.loss_causes) == (4, 0, 100.0, {"refused": 4})
    assert f.p50_ms is None
    assert "every connect was refused" in note["en"] and "所有连接均被拒绝" in note["zh-CN"]


def test_latency_on_a_lossy_link_uses_only_received_samples(netlab):  # noqa: F811
    need_netlab(tun=True)
    host = netlab.add_host("lossy")
    link = netlab.delayed_link(None, host, 10, loss_percent=25)
    f, note = latency(host=link.b_address, method="icmp", count=30, interval=0.02, timeout=0.5)
    assert 0 < f.received < 30 and 0 < f.loss_percent < 100
    assert f.loss_causes == {"timeout": 30 - f.received}
    assert abs(f.p50_ms - 20) < 3 and f.min_ms > 19  # no lost sample is counted as a zero
    assert "lost: timeout" in note["en"]


def test_latency_is_kept_within_the_checks_time(slow):
    t0 = time.monotonic()
    f, note = latency(ctx(timeout=1.5), host=slow.b_address, port=SLOW_DROP, count=10, interval=0.2, timeout=1)
    assert time.monotonic() - t0 < 1.5
    assert f.samples < 10 and f.loss_percent == 100.0
    assert f"only {f.samples} of 10 samples fit in the check's 1.5 s timeout" in note["en"]
    assert "检查时限 1.5 秒内" in note["zh-CN"]


def test_latency_between_two_namespaces_from_a_vantage_host(netlab):  # noqa: F811
    """The client namespace is the vantage host: TCP through its transport's connect(), ICMP through its ping."""
    need_netlab(tun=True, ping=True)
    pair = netlab.delayed_pair(20)
    pair.server.listen_tcp(7000, address=pair.server_address)
    tr = pair.client.transport()
    f, note = latency(ctx(transport=tr), host=pair.server_address, port=7000, count=5, interval=0.1)
    assert f.vantage == pair.client.name and f.received == 5 and abs(f.p50_ms - 40) < 3, f
    assert f"from {pair.client.name}" in note["en"]
    f, _ = latency(ctx(transport=tr), host=pair.server_address, method="icmp", count=5, interval=0.1)
    assert f.sampler == "icmp-ping-command" and f.received == 5 and abs(f.p50_ms - 40) < 3, f


def test_latency_loopback_and_ipv6():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    port = server.getsockname()[1]
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                continue

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        f, _ = latency(host="127.0.0.1", port=port, count=5, interval=0.02)
        assert f.received == 5 and f.p50_ms < 5
    finally:
        stop.set()
        th.join()
        server.close()
    if socket.has_ipv6 and Path("/proc/net/if_inet6").exists():
        f, _ = latency(host="::1", method="icmp", count=3, interval=0.02)
        assert f.received == 3 and f.address == "::1" and f.p50_ms < 5


# ===========================================================================================================
# ICMP without root: a thread without CAP_NET_RAW in a namespace
# ===========================================================================================================
CAP_NET_RAW, PR_CAPBSET_DROP = 13, 24


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def unprivileged(ns: str, fn, keep_ping: bool):
    """Run ``fn()`` in a thread that sits in namespace ``ns`` without CAP_NET_RAW, as a non-root user would.
    Credentials are per thread; threads and processes it starts inherit them. ``keep_ping=False`` also drops the
    capability from the bounding set, so the setcap'ed ping binary cannot run either."""
    libc = ctypes.CDLL(None, use_errno=True)
    box: list = []

    def body():
        try:
            with in_netns(ns):
                if not keep_ping:
                    assert libc.prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) == 0
                head, data = _CapHeader(0x20080522, 0), (_CapData * 2)()
                assert libc.capget(ctypes.byref(head), data) == 0
                for field in ("effective", "permitted", "inheritable"):
                    setattr(data[0], field, getattr(data[0], field) & ~(1 << CAP_NET_RAW))
                assert libc.capset(ctypes.byref(head), data) == 0
                with pytest.raises(PermissionError):
                    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
                box.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001
            box.append((False, exc))

    th = threading.Thread(target=body)
    th.start()
    th.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value


@pytest.fixture(scope="module")
def plain(netlab):  # noqa: F811
    need_netlab(ping=True)
    host = netlab.add_host("plain")
    host.listen_tcp(7100)
    return host


def test_icmp_through_a_datagram_socket_when_ping_group_range_allows(plain, netlab):  # noqa: F811
    plain.sysctl("net.ipv4.ping_group_range", "0 0")
    try:
        f, _ = unprivileged(plain.ns, lambda: latency(host=netlab.bridge_address, method="icmp", count=3,
                                                         interval=0.02), keep_ping=False)
    finally:
        plain.sysctl("net.ipv4.ping_group_range", "1 0")
    assert (f.method, f.sampler, f.received) == ("icmp", "icmp-datagram-socket", 3)


def test_icmp_through_the_ping_command_without_sockets(plain, netlab):  # noqa: F811
    f, _ = unprivileged(plain.ns, lambda: latency(host=netlab.bridge_address, method="icmp", count=3,
                                                     interval=0.2), keep_ping=True)
    assert (f.method, f.sampler, f.received) == ("icmp", "icmp-ping-command", 3)


def test_icmp_falls_back_to_tcp_with_a_note_or_fails_cleanly(plain):
    f, note = unprivileged(plain.ns, lambda: latency(host=plain.address, method="icmp", port=7100, count=3,
                                                        interval=0.02), keep_ping=False)
    assert (f.method, f.sampler, f.port, f.received) == ("tcp", "tcp-connect", 7100, 3)
    assert "ICMP echo could not be sent" in note["en"] and "measured by TCP connect to port 7100" in note["en"]
    assert "无法发送 ICMP 回显" in note["zh-CN"] and "TCP 连接采样" in note["zh-CN"]
    with pytest.raises(ProbeError) as info:
        unprivileged(plain.ns, lambda: latency(host=plain.address, method="icmp", count=3), keep_ping=False)
    assert "cannot send ICMP echo" in info.value.message["en"] and "无法向" in info.value.message["zh-CN"]
    assert "ping_group_range" in info.value.hint["en"]


# ===========================================================================================================
# a whole scan, in process
# ===========================================================================================================
def test_scan_mixing_tcp_and_latency_reports_every_state(fw, slow, tmp_path):
    checks = [
        {"id": "open", "probe": "tcp", "with": {"host": fw.address, "port": OPEN}, "expect": {"state": "open"}},
        {"id": "closed", "probe": "tcp", "with": {"host": fw.address, "port": CLOSED}, "expect": {"state": "open"}},
        {"id": "reset", "probe": "tcp", "with": {"host": fw.address, "port": RESET}, "expect": {"state": "open"}},
        {"id": "dropped", "probe": "tcp", "with": {"host": fw.address, "port": DROP, "timeout": "1s"},
         "expect": {"state": "open"}, "timeout": 3},
        {"id": "prohibited", "probe": "tcp", "with": {"host": fw.address, "port": ADMIN},
         "expect": {"state": "open"}},
        {"id": "no-name", "probe": "tcp", "with": {"host": "db01.invalid", "port": OPEN}, "expect": {"state": "open"}},
        {"id": "slow-tcp", "probe": "latency", "with": {"host": slow.b_address, "port": SLOW_OPEN, "count": 10},
         "expect": {"p50_ms": ["> 75", "< 85"], "loss_percent": "== 0"}},
        {"id": "slow-icmp", "probe": "latency", "with": {"host": slow.b_address, "method": "icmp", "count": 10},
         "expect": {"p50_ms": ["> 75", "< 85"], "loss_percent": "== 0"}},
        {"id": "slow-dropped", "probe": "latency",
         "with": {"host": slow.b_address, "port": SLOW_DROP, "count": 5, "timeout": "500ms"},
         "expect": {"loss_percent": "< 5"}},
        {"id": "slow-reset", "probe": "latency", "with": {"host": slow.b_address, "port": SLOW_RESET, "count": 3},
         "expect": {"loss_percent": "< 5"}},
        {"id": "needs-open", "probe": "tcp", "with": {"host": fw.address, "port": OPEN}, "needs": ["closed"],
         "expect": {"state": "open"}},
    ]
    checklist = tmp_path / "net.yaml"
    checklist.write_text(yaml.safe_dump({"version": 1, "name": "network", "checks": checks}, allow_unicode=True))
    out = tmp_path / "run.json"
    t0 = time.monotonic()
    res = cli("scan", str(checklist), "--json", str(out), "--lang", "en")
    took = time.monotonic() - t0
    assert res.code == 1, res.out + res.err
    assert took < 3 + 1  # the longest check's timeout (3 s) bounds the scan: checks run side by side
    run = json.loads(out.read_text())
    results = {r["check"]: Result.from_dict(r) for r in run["results"]}
    state = {k: r.observed.get("state") for k, r in results.items()}
    assert (state["open"], state["closed"], state["reset"], state["dropped"], state["prohibited"], state["no-name"]) \
        == ("open", "refused", "refused", "filtered", "unreachable", "dns-error")
    status = {k: r.status.value for k, r in results.items()}
    assert status == {"open": "pass", "closed": "fail", "reset": "fail", "dropped": "fail", "prohibited": "fail",
                      "no-name": "fail", "slow-tcp": "pass", "slow-icmp": "pass", "slow-dropped": "fail",
                      "slow-reset": "fail", "needs-open": "skip"}
    assert results["slow-dropped"].observed["loss_percent"] == 100.0
    assert results["slow-dropped"].observed["p50_ms"] is None
    assert results["slow-reset"].observed["loss_causes"] == {"refused": 3}
    for r in results.values():
        if r.status.value != "skip":
            assert r.message["en"] and r.message["zh-CN"] and r.message["en"] != r.message["zh-CN"]
    assert "(filtered) — a firewall on the path or on" in results["dropped"].message["en"]
    assert "（filtered，被过滤）" in results["dropped"].message["zh-CN"]
    assert results["closed"].hint and "refused" in results["closed"].hint["en"]
    # both languages on the console
    assert "no answer in 1 s (filtered)" in res.out
    zh = cli("scan", str(checklist), "--lang", "zh-CN", "-q")
    assert "1 秒内无应答" in zh.out and "连接被拒绝" in zh.out and "主机不可达" in zh.out


# ===========================================================================================================
# from: a vantage host over SSH (a real sshd in the client namespace of the delayed pair)
# ===========================================================================================================
def test_scan_from_a_vantage_host_over_ssh(netlab, fw, tmp_path):  # noqa: F811
    """tcp and latency with ``from: app01``: app01's sshd opens the connections (direct-tcpip), runs its ping and
    resolves names with its own /etc/hosts; app01 has no route out of the lab and a 2×20 ms link to a server."""
    from tests.sshfix import SshServer, keygen, need_sshd

    need_sshd()
    need_netlab(tun=True, ping=True)
    pair = netlab.delayed_pair(20)
    app01, server = pair
    server.listen_tcp(7200, address=pair.server_address)
    app01.etc_file("hosts", f"127.0.0.1 localhost\n{fw.address} db.lab.test\n")
    app01.etc_file("resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    key = keygen(tmp_path / "client_key")
    srv = SshServer(tmp_path / "sshd", key, address=app01.address, port=22, netns=app01.ns).start()
    try:
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({"hosts": {"app01": {"address": app01.address, "user": "root",
                                                                 "key": str(key), "port": 22}}}))
        far = pair.server_address
        checks = [
            {"id": "db-by-name", "probe": "tcp", "from": "app01", "with": {"host": "db.lab.test", "port": OPEN},
             "expect": {"state": "open"}},
            {"id": "closed", "probe": "tcp", "from": "app01", "with": {"host": fw.address, "port": CLOSED},
             "expect": {"state": "open"}},
            {"id": "dropped", "probe": "tcp", "from": "app01",
             "with": {"host": fw.address, "port": DROP, "timeout": 1}, "expect": {"state": "open"}},
            {"id": "no-route", "probe": "tcp", "from": "app01", "with": {"host": "198.51.100.7", "port": 1433},
             "expect": {"state": "open"}},
            {"id": "no-name", "probe": "tcp", "from": "app01", "with": {"host": "nothing.lab.test", "port": 1},
             "expect": {"state": "open"}},
            {"id": "far-tcp", "probe": "latency", "from": "app01", "with": {"host": far, "port": 7200, "count": 5},
             "expect": {"p50_ms": ["> 38", "< 50"], "loss_percent": 0}},  # + the SSH channel open
            {"id": "far-icmp", "probe": "latency", "from": "app01", "with": {"host": far, "method": "icmp",
                                                                           "count": 5},
             "expect": {"p50_ms": ["> 38", "< 45"], "loss_percent": 0}},
        ]
        checklist = tmp_path / "from.yaml"
        checklist.write_text(yaml.safe_dump({"version": 1, "checks": checks}))
        out = tmp_path / "run.json"
        res = cli("scan", str(checklist), "-i", str(inventory), "--known-hosts", str(tmp_path / "known_hosts"),
                  "--accept-new-hostkeys", "--json", str(out), "--lang", "en")
        assert res.code == 1, res.out + res.err
        r = {x["check"]: x for x in json.loads(out.read_text())["results"]}
        obs = {k: v["observed"] for k, v in r.items()}
        observed = {k for k, v in r.items() if v["status"] != "error"}
        assert {obs[k]["vantage"] for k in observed} == {"app01"}
        assert (obs["db-by-name"]["state"], obs["db-by-name"]["address"]) == ("open", fw.address)
        assert obs["dropped"]["state"] == "filtered" and obs["no-name"]["state"] == "dns-error"
        # OpenSSH answers a failed direct-tcpip open with "Connect failed" and paramiko keeps only that code in
        # its exception (the server's "Connection refused" text goes to its log): until the SSH transport passes
        # the reason on, refused and unreachable from a vantage host are an explained error, never a guessed state
        for k, state in (("closed", "refused"), ("no-route", "unreachable")):
            if r[k]["status"] == "error":
                assert "could not open the connection and did not say why" in r[k]["message"]["en"], r[k]
                assert "未能建立连接且未说明原因" in r[k]["message"]["zh-CN"] and "nc -vz" in r[k]["hint"]["en"]
            else:
                assert obs[k]["state"] == state, r[k]
        assert r["far-tcp"]["status"] == "pass", r["far-tcp"]["message"]
        assert r["far-icmp"]["status"] == "pass", r["far-icmp"]["message"]
        assert obs["far-icmp"]["sampler"] == "icmp-ping-command"
        assert "from app01" in r["dropped"]["message"]["en"] and "从app01" in r["dropped"]["message"]["zh-CN"]
    finally:
        srv.stop()
