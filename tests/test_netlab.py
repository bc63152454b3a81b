"""The test network itself: hosts on a bridge, cleanup (also after a crash), the delayed link's accuracy."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netlab import (
    NETNS_ETC,
    NetLab,
    list_links,
    list_netns,
    machine_lock,
    need_netlab,
    netlab,  # noqa: F401 - the fixture
    pid_alive,
    slow_pair,  # noqa: F401 - the fixture
    used_networks,
)

ROOT = Path(__file__).resolve().parent.parent


def ping_rtts(argv: list[str]) -> list[float]:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]


def connect_ms(address: str, port: int, timeout: float = 3) -> float:
    t0 = time.perf_counter()
    socket.create_connection((address, port), timeout).close()
    return (time.perf_counter() - t0) * 1000


# -- hosts ---------------------------------------------------------------------------------------------------
def test_hosts_sit_on_a_private_bridge_without_a_way_out(netlab):  # noqa: F811
    forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    h1, h2 = netlab.add_host(), netlab.add_host()
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forward_before
    net = netlab.network
    assert re.fullmatch(r"10\.77\.\d+\.0/24", str(net))
    assert {ipaddress.ip_address(h.address) in net for h in (h1, h2)} == {True}
    assert h1.address != h2.address and netlab.bridge_address == str(net.network_address + 1)
    # the lab's /24 overlaps nothing else on this machine
    others = [n for n in used_networks() if n.overlaps(net) and n != net and not n.subnet_of(net)]
    assert others == []
    # names carry the creating PID
    assert h1.ns.startswith(f"ep{os.getpid()}") and netlab.bridge.startswith(f"ep{os.getpid()}")
    assert all(len(n) <= 15 for n in netlab.names() if n not in (h1.ns, h2.ns))
    # lo up, one connected route, no default route
    routes = h1.exec(["ip", "-4", "route"]).stdout
    assert "default" not in routes and routes.strip().startswith(str(net))
    assert "UP" in h1.exec(["ip", "link", "show", "lo"]).stdout
    # this process reaches a host, and hosts reach each other, through the bridge
    listener = h1.listen_tcp(8080)
    assert listener.port == 8080
    connect_ms(h1.address, 8080)
    code = f"import socket; socket.create_connection(({h1.address!r}, 8080), 2).close(); print('ok')"
    assert h2.exec([sys.executable, "-c", code]).stdout.strip() == "ok"
    # nothing leaves: an address off the lab has no route from inside a host
    res = h2.exec(["ping", "-c", "1", "-W", "1", "198.51.100.7"], check=False)
    assert res.returncode != 0 and "unreachable" in (res.stderr + res.stdout).lower()


def test_firewall_helpers_and_sysctl(netlab):  # noqa: F811
    need_netlab(iptables=True, nft=True)
    h = netlab.add_host()
    h.listen_tcp(7001)
    h.listen_tcp(7002)
    h.iptables("-A INPUT -p tcp --dport 7001 -j DROP")
    h.nft("table inet eptest {\n chain input {\n  type filter hook input priority 0;\n"
          "  tcp dport 7002 reject with tcp reset\n }\n}\n")
    with pytest.raises(TimeoutError):
        connect_ms(h.address, 7001, timeout=0.5)
    with pytest.raises(ConnectionRefusedError):
        connect_ms(h.address, 7002)
    before = Path("/proc/sys/net/ipv4/ping_group_range").read_text()
    h.sysctl("net.ipv4.ping_group_range", "0 0")
    assert h.exec(["sysctl", "-n", "net.ipv4.ping_group_range"]).stdout.split() == ["0", "0"]
    assert Path("/proc/sys/net/ipv4/ping_group_range").read_text() == before  # per namespace


def test_netns_transport_is_a_vantage_host(netlab):  # noqa: F811
    a, b = netlab.add_host(), netlab.add_host()
    b.listen_tcp(9090)
    tr = a.transport()
    assert not tr.is_local and tr.name == a.name
    assert a.address in tr.run("ip -4 -o addr show dev eth0").stdout
    sock = tr.connect(b.address, 9090, 2)
    assert sock.getsockname()[0] == a.address  # opened from inside a's namespace
    sock.close()
    with pytest.raises(OSError) as info:
        tr.connect("198.51.100.7", 80, 2)
    assert info.value.errno == 101  # ENETUNREACH: no route out of the lab
    # names resolve at the vantage host: ip netns exec binds /etc/netns/<ns>/hosts over /etc/hosts
    a.etc_file("hosts", f"127.0.0.1 localhost\n{b.address} db.lab.test\n")
    a.etc_file("resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    assert tr.resolve("db.lab.test", 5) == [b.address]
    with pytest.raises(socket.gaierror):
        tr.resolve("nothing.lab.test", 5)


# -- teardown and crash recovery -----------------------------------------------------------------------------
def test_close_kills_processes_and_removes_everything():
    need_netlab(tun=True)
    lab = NetLab(hosts=2)
    h1 = lab.hosts["h1"]
    listener = h1.listen_tcp(8080)
    orphan = h1.spawn(["sleep", "300"], die_with_parent=False)
    link = lab.delayed_link(None, lab.hosts["h2"], 5)
    h1.etc_file("resolv.conf", "nameserver 127.0.0.1\n")
    names = [n for n in lab.names() if n != link.tun_b]  # tun_b lives in h2's namespace
    assert set(names) <= set(list_netns()) | set(list_links())
    assert link.tun_b in lab.hosts["h2"].exec(["ip", "-o", "link"]).stdout
    lab.close()
    lab.close()  # idempotent
    assert not pid_alive(listener.proc.pid) and not pid_alive(orphan.pid) and not pid_alive(link.proc.pid)
    assert not set(names) & (set(list_netns()) | set(list_links()))
    assert not (NETNS_ETC / h1.ns).exists()


CRASHING_LAB = """
import json, sys, time
sys.path.insert(0, {root!r})
from tests.netlab import NetLab
lab = NetLab(hosts=1)
h = lab.hosts["h1"]
listener = h.listen_tcp(8080)
orphan = h.spawn(["sleep", "300"], die_with_parent=False)  # survives its parent: the next lab must kill it
link = lab.delayed_link(None, h, 5)
h.etc_file("hosts", "127.0.0.1 localhost\\n")
print(json.dumps({{"names": lab.names(), "orphan": orphan.pid, "listener": listener.proc.pid,
                  "forwarder": link.proc.pid, "etc": str(h.ns)}}), flush=True)
time.sleep(300)
"""


def test_a_new_lab_removes_what_a_killed_one_left():
    need_netlab(tun=True)
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_LAB.format(root=str(ROOT))], stdout=subprocess.PIPE,
                            text=True)
    try:
        info = json.loads(proc.stdout.readline())
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    # hold the machine-wide lock (labs clean up under it) so that no lab of another test process removes the
    # leftovers before we have looked at them
    with machine_lock():
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        names = info["names"]
        deadline = time.monotonic() + 5
        while pid_alive(info["forwarder"]) and time.monotonic() < deadline:  # stdin EOF ends it
            time.sleep(0.02)
        assert not pid_alive(info["forwarder"]) and not pid_alive(info["listener"])  # died with their parent
        left = set(list_netns()) | set(list_links())
        assert {n for n in names if "-t" not in n} <= left  # namespaces, veth and bridge are left over
        assert pid_alive(info["orphan"])  # and a process inside a namespace
        assert (NETNS_ETC / info["etc"]).exists()

    lab = NetLab()
    try:
        assert not set(names) & (set(list_netns()) | set(list_links()))
        assert not pid_alive(info["orphan"])
        assert not (NETNS_ETC / info["etc"]).exists()
    finally:
        lab.close()


def test_atexit_tears_down_a_lab_nobody_closed():
    need_netlab()
    code = (f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); from tests.netlab import NetLab; "
            "lab = NetLab(hosts=1); lab.hosts['h1'].listen_tcp(8080); print(json.dumps(lab.names()))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    names = json.loads(res.stdout)
    assert not set(names) & (set(list_netns()) | set(list_links()))


# -- the delayed link ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("delay", [10, 40])
def test_delayed_link_round_trip_is_twice_the_delay(netlab, delay):  # noqa: F811
    need_netlab(tun=True, ping=True)
    host = netlab.add_host()
    link = netlab.delayed_link(None, host, delay)
    host.listen_tcp(8080, address=link.b_address)
    rtts = ping_rtts(["ping", "-n", "-c", "20", "-i", "0.05", link.b_address])
    assert len(rtts) == 20
    assert abs(statistics.median(rtts) - 2 * delay) < 1.5, rtts
    tcp = sorted(connect_ms(link.b_address, 8080) for _ in range(10))
    assert abs(statistics.median(tcp) - 2 * delay) < 1.5, tcp
    stats = link.stats()
    assert stats["forwarded"] >= 80 and stats["dropped"] == 0
    late = stats["lateness_ms"]
    print(f"\ndelay {delay} ms: ping p50 {statistics.median(rtts):.3f} ms, tcp connect p50 "
          f"{statistics.median(tcp):.3f} ms, forwarder lateness {late}")
    assert late["p50"] < 0.5 and late["p99"] < 2.0


def test_delayed_pair_between_two_namespaces(netlab):  # noqa: F811
    need_netlab(tun=True, ping=True)
    pair = netlab.delayed_pair(25)
    client, server = pair
    assert (client, server) == (pair.client, pair.server)
    server.listen_tcp(8080, address=pair.server_address)
    out = client.exec(["ping", "-n", "-c", "5", "-i", "0.05", pair.server_address]).stdout
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
    assert len(rtts) == 5 and abs(statistics.median(rtts) - 50) < 1.5, out
    # the bridge path between the same two hosts is not delayed
    fast = [float(x) for x in re.findall(r"time=([\d.]+) ms", client.exec(
        ["ping", "-n", "-c", "3", "-i", "0.05", server.address]).stdout)]
    assert max(fast) < 5
    tr = client.transport()  # connections opened from inside the client namespace cross the link too
    took = []
    for _ in range(5):
        t0 = time.perf_counter()
        tr.connect(pair.server_address, 8080, 3).close()
        took.append((time.perf_counter() - t0) * 1000)
    assert abs(statistics.median(took) - 50) < 3, took


def test_delay_and_loss_change_while_running(netlab):  # noqa: F811
    need_netlab(tun=True, ping=True)
    host = netlab.add_host()
    link = netlab.delayed_link(None, host, 30)
    link.set_delay(5)
    rtts = ping_rtts(["ping", "-n", "-c", "5", "-i", "0.05", link.b_address])
    assert abs(statistics.median(rtts) - 10) < 1.5, rtts
    link.stats(reset=True)
    link.set_loss(50)
    rtts = ping_rtts(["ping", "-n", "-c", "40", "-i", "0.02", "-W", "1", link.b_address])
    stats = link.stats()
    assert 0 < len(rtts) < 40 and stats["dropped"] > 0
    link.set_loss(0)
    assert len(ping_rtts(["ping", "-n", "-c", "3", "-i", "0.05", link.b_address])) == 3


def test_slow_pair_fixture(slow_pair):  # noqa: F811
    out = slow_pair.client.exec(["ping", "-n", "-c", "3", "-i", "0.05", slow_pair.server_address]).stdout
    rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
    assert len(rtts) == 3 and abs(statistics.median(rtts) - 80) < 1.5, out
