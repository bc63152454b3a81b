"""The firewall probe over IPv6, against real ip6tables and nft inet rules and real IPv6 connections.

Lab hosts carry an IPv6 ULA beside their IPv4 address (tests/netlab.py). Host B filters with ip6tables (and,
separately, an nft ``inet`` table, which covers both families); for every port the probe's answer — evaluated
with ``family: ipv6`` and host A's IPv6 address as the source — must equal what a real TCP connection from A
to B's IPv6 address meets.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.conftest import need
from tests.netlab import need_netlab, netlab  # noqa: F401 - netlab is a fixture
from tests.test_probes_firewall import expect_truth, probe, tcp_truth

PORTS = {"open": 18601, "reject": 18602, "drop": 18603, "only_a": 18604, "policy": 18605, "v4_only": 18606}


class V6Lab:
    def __init__(self, lab: Any):
        need(shutil.which("ip6tables") is not None, "needs ip6tables (package iptables)")
        self.a = lab.add_host("v6a")
        self.ipt = lab.add_host("v6ipt")
        self.nft = lab.add_host("v6nft")
        self.other = str(lab.network6.network_address + 0x99)  # an address nobody uses
        for host in (self.ipt, self.nft):
            for port in PORTS.values():
                host.listen_tcp(port, address=host.address6)
        p = PORTS
        rules = [
            "-P INPUT DROP",
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "-A INPUT -p ipv6-icmp -j ACCEPT",  # neighbour discovery
            f"-A INPUT -p tcp --dport {p['open']} -j ACCEPT",
            f"-A INPUT -p tcp --dport {p['reject']} -j REJECT --reject-with tcp-reset",
            f"-A INPUT -p tcp --dport {p['drop']} -j DROP",
            f"-A INPUT -p tcp -s {self.a.address6} --dport {p['only_a']} -j ACCEPT",
        ]
        for rule in rules:
            self.ipt.exec(["ip6tables", "-w", *rule.split()])
        # the IPv4 rules of the same host let v4_only through: a family mix-up would show
        self.ipt.exec(["iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", str(p["v4_only"]), "-j", "ACCEPT"])
        self.nft.nft(f"""
table inet filter {{
  chain input {{
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    meta l4proto ipv6-icmp accept
    tcp dport {p['open']} accept
    tcp dport {p['reject']} reject with tcp reset
    tcp dport {p['drop']} drop
    ip6 saddr {self.a.address6} tcp dport {p['only_a']} accept
    ip saddr 0.0.0.0/0 tcp dport {p['v4_only']} accept
  }}
}}
""")


@pytest.fixture(scope="module")
def v6lab(netlab: Any) -> V6Lab:  # noqa: F811
    need_netlab(iptables=True, nft=True)
    return V6Lab(netlab)


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_every_ipv6_port_agrees_with_a_real_ipv6_connection(v6lab: V6Lab, backend: str):
    host = v6lab.ipt if backend == "iptables" else v6lab.nft
    tr = host.transport()
    expected = {"open": "accept", "reject": "reject", "drop": "drop", "only_a": "accept", "policy": "drop",
                "v4_only": "drop"}
    for name, port in PORTS.items():
        truth = tcp_truth(v6lab.a, host.address6, port)
        assert truth == expected[name], (backend, name, truth)
        facts, _ = probe(tr, port=port, family="ipv6", source=v6lab.a.address6)
        expect_truth(facts, truth)
        assert facts.family == "ipv6"
    # the source-limited rule: another source is refused, and without a source the answer says it depends
    facts, _ = probe(tr, port=PORTS["only_a"], source=v6lab.other)
    assert facts.allowed is False
    facts, _ = probe(tr, port=PORTS["only_a"], family="ipv6")
    assert facts.allowed is None and facts.decided_by == "depends-on-source"
    assert facts.allowed_from == [f"{v6lab.a.address6}/128"]
    # and the IPv4 side of the same host is judged on its own rules
    facts, _ = probe(tr, port=PORTS["v4_only"], source=v6lab.a.address)
    assert facts.allowed is True and facts.family == "ipv4"
