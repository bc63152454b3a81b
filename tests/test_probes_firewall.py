"""The firewall probe.

Real parts: rule sets built with iptables and, separately, with nftables inside network-namespace hosts, with
listeners on the ports; for every port the probe's ``allowed`` and ``action`` must equal what a real connection
from another namespace host meets (connected ↔ accept, refused ↔ reject, timeout ↔ drop) — the connection is
the ground truth. The probe runs through the namespace transport for the bulk and over SSH (a real sshd inside the
host, the CLI, an inventory) once per backend. Also: a host without any firewall, the non-root and
no-CAP_NET_ADMIN errors, unevaluable rules.

Pure parts: the parsers and evaluators on recorded outputs in tests/fixtures/firewall/ (see its README): whole
snapshots of the probe's script from a Debian 12 host with iptables-nft, one with native nftables, an Ubuntu
22.04 host with ufw, a RHEL 9 host with firewalld (nftables backend) and a CentOS 7 host with firewalld
(iptables backend), plus firewalld, ufw, netsh and Get-NetFirewallRule outputs on their own.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from envprobe.probes.base import ProbeContext, ProbeError
from envprobe.probes.firewall import FirewallParams, FirewallProbe, analyze_linux, analyze_windows, query_of
from envprobe.probes.fwrules import firewalld as fwd
from envprobe.probes.fwrules import iptables as ipt
from envprobe.probes.fwrules import nft
from envprobe.probes.fwrules import ufw as ufwmod
from envprobe.probes.fwrules import windows as win
from envprobe.probes.fwrules.analyze import Query
from envprobe.probes.fwrules.linux import SCRIPT, parse_snapshot, privilege_problem
from envprobe.schema import ValidationError
from envprobe.transport.base import CommandResult
from tests.conftest import cli, need
from tests.netlab import Host, NetnsTransport, need_netlab, netlab  # noqa: F401 - netlab is a fixture
from tests.sshfix import SshServer, keygen, need_sshd

FIX = Path(__file__).parent / "fixtures" / "firewall"

# ===========================================================================================================
# helpers
# ===========================================================================================================
_LISTENERS = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
addr = sys.argv[1]
for spec in sys.argv[2:]:
    proto, port = spec.split(":")
    if proto == "tcp":
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, int(port)))
        s.listen(64)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, int(port)))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, proto)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        try:
            if key.data == "tcp":
                c, _ = s.accept()
                c.close()
            else:
                data, peer = s.recvfrom(2048)
                s.sendto(data, peer)
        except OSError:
            pass
"""


def listen(host: Host, tcp: list[int], udp: list[int] = ()) -> None:  # type: ignore[assignment]
    """One process in the host serving every port: TCP accept-and-close, UDP echo. Killed by PID at teardown."""
    specs = [f"tcp:{p}" for p in tcp] + [f"udp:{p}" for p in udp]
    proc = host.spawn([sys.executable, "-c", _LISTENERS, host.address, *specs],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready"), proc.stderr.read() if proc.stderr else ""


def tcp_truth(client: Host, address: str, port: int, timeout: float = 1.5) -> str:
    """What a real connection from ``client`` meets: accept (connected), reject (refused or an ICMP error at once)
    or drop (no answer)."""
    tr = client.transport()
    try:
        tr.connect(address, port, timeout).close()
        return "accept"
    except ConnectionRefusedError:
        return "reject"
    except TimeoutError:
        return "drop"
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES):
            return "reject"  # REJECT with an ICMP host/admin-prohibited
        raise


_UDP_PROBE = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(float(sys.argv[3]))
s.connect((sys.argv[1], int(sys.argv[2])))
try:
    s.send(b"ping")
    print("accept" if s.recv(100) == b"ping" else "other")
except ConnectionRefusedError:
    print("reject")
except TimeoutError:
    print("drop")
"""


def udp_truth(client: Host, address: str, port: int, timeout: float = 1.5) -> str:
    """A connected UDP socket from ``client``: the echo answers (accept), ICMP port unreachable gives ECONNREFUSED
    (reject), nothing comes back (drop)."""
    res = client.exec([sys.executable, "-c", _UDP_PROBE, address, str(port), str(timeout)])
    return res.stdout.strip()


def truths(client: Host, address: str, ports: list[int]) -> dict[int, str]:
    """Ground truth for many TCP ports at once (DROPped ones each wait for their timeout)."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip(ports, pool.map(lambda p: tcp_truth(client, address, p), ports), strict=True))


def probe(transport: Any, **params: Any) -> Any:
    p = FirewallParams(**params)
    pr = FirewallProbe()
    facts = pr.collect(ProbeContext(transport, transport.name, 20.0), p)
    return facts, pr.note(p, facts)


def expect_truth(facts: Any, truth: str) -> None:
    assert facts.allowed == (truth == "accept"), (facts, truth)
    assert facts.action == truth, (facts.action, truth, facts.matched_rule)


# ===========================================================================================================
# the lab: a client, an iptables host, an nftables host, a host without firewall
# ===========================================================================================================
P = {name: 18400 + i for i, name in enumerate([
    "open1", "open2", "range_lo", "range_mid", "range_hi", "rej_rst", "rej_icmp", "rej_prohib", "only_a", "only_x",
    "chain_acc", "chain_drop", "pre_drop", "late_drop", "vmap_acc", "vmap_drop", "policy", "set1", "set2",
    "mark", "limited", "after_limit_log",
])}
U = {"open": 18500, "rej": 18501, "policy": 18502}
TCP_PORTS = sorted(P.values())


class Lab:
    def __init__(self, lab: Any):
        self.lab = lab
        self.a = lab.add_host("fwa")  # the client
        self.ipt = lab.add_host("fwipt")
        self.nft = lab.add_host("fwnft")
        self.bare = lab.add_host("fwbare")
        self.mix = lab.add_host("fwmix")
        net = lab.network
        self.x = str(net.network_address + 99)  # an address nobody uses: rules limited to it exclude A
        for h in (self.ipt, self.nft, self.bare, self.mix):
            listen(h, TCP_PORTS, list(U.values()))
        self._iptables()
        self._nft()
        self._mix()

    def _mix(self) -> None:
        """A table named like iptables-nft's ('ip filter') but written with nft — iptables-save shows it
        lossily — next to a real iptables-nft table (raw)."""
        self.mix.nft(f"""
table ip filter {{
  set ports {{ type inet_service; elements = {{ {P['open1']}, {P['open2']} }} }}
  chain INPUT {{ type filter hook input priority 0; policy drop; tcp dport 22 accept; tcp dport @ports accept; }}
}}
""")
        self.mix.iptables(f"-t raw -A PREROUTING -p tcp --dport {P['open2']} -j DROP")

    def _iptables(self) -> None:
        a, x = self.a.address, self.x
        rules = [
            "-P INPUT DROP",
            "-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "-A INPUT -i lo -j ACCEPT",
            "-A INPUT -m limit --limit 100/sec -j LOG --log-prefix fw-",  # unevaluable, decides nothing
            "-A INPUT -p tcp --dport 22 -j ACCEPT",
            f"-A INPUT -p tcp -m multiport --dports {P['open1']},{P['open2']} -j ACCEPT",
            f"-A INPUT -p tcp --dport {P['range_lo']}:{P['range_hi']} -j ACCEPT",
            f"-A INPUT -p tcp --dport {P['rej_rst']} -j REJECT --reject-with tcp-reset",
            f"-A INPUT -p tcp --dport {P['rej_icmp']} -j REJECT",
            f"-A INPUT -p tcp --dport {P['rej_prohib']} -j REJECT --reject-with icmp-host-prohibited",
            f"-A INPUT -s {a}/32 -p tcp --dport {P['only_a']} -j ACCEPT",
            f"-A INPUT -s {x}/32 -p tcp --dport {P['only_x']} -j ACCEPT",
            "-N APP",
            "-A INPUT -p tcp -j APP",
            f"-A APP -p tcp --dport {P['chain_acc']} -j ACCEPT",
            f"-A APP -p tcp --dport {P['chain_drop']} -j DROP",
            "-A APP -j RETURN",
            f"-A INPUT -p tcp -m multiport --dports {P['set1']},{P['set2']},{P['pre_drop']} -j ACCEPT",
            f"-t raw -A PREROUTING -p tcp --dport {P['pre_drop']} -j DROP",  # a second base chain, earlier
            f"-A INPUT -p tcp --dport {P['limited']} -m limit --limit 5/min -j ACCEPT",  # unevaluable, decides
            f"-A INPUT -p udp --dport {U['open']} -j ACCEPT",
            f"-A INPUT -p udp --dport {U['rej']} -j REJECT",
        ]
        self.ipt.iptables(*rules)

    def _nft(self) -> None:
        a, x = self.a.address, self.x
        self.nft.nft(f"""
table inet filter {{
  set allowed {{ type inet_service; elements = {{ {P['set1']}, {P['set2']} }} }}
  chain input {{
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    ct state invalid drop
    iif lo accept
    limit rate 100/second log prefix "fw "
    tcp dport 22 accept
    tcp dport {{ {P['open1']}, {P['open2']} }} accept
    tcp dport @allowed accept
    tcp dport {P['range_lo']}-{P['range_hi']} accept
    ip saddr {a} tcp dport {P['only_a']} accept
    ip saddr {x} tcp dport {P['only_x']} accept
    tcp dport {P['rej_rst']} reject with tcp reset
    tcp dport {P['rej_icmp']} reject
    tcp dport {P['rej_prohib']} reject with icmpx admin-prohibited
    tcp dport {{ {P['chain_acc']}, {P['chain_drop']} }} jump app
    tcp dport vmap {{ {P['vmap_acc']} : accept, {P['vmap_drop']} : drop }}
    meta mark 0x1 tcp dport {P['mark']} accept
    tcp dport {{ {P['pre_drop']}, {P['late_drop']} }} accept
    udp dport {U['open']} accept
    udp dport {U['rej']} reject
  }}
  chain app {{
    tcp dport {P['chain_acc']} accept
    tcp dport {P['chain_drop']} drop
  }}
}}
table ip early {{
  chain pre {{ type filter hook prerouting priority -150; policy accept; tcp dport {P['pre_drop']} drop; }}
}}
table inet late {{
  chain in2 {{ type filter hook input priority 10; policy accept; tcp dport {P['late_drop']} drop; }}
}}
""")


@pytest.fixture(scope="module")
def fwlab(netlab: Any) -> Lab:  # noqa: F811
    need_netlab(iptables=True, nft=True)
    return Lab(netlab)


# ===========================================================================================================
# real rule sets, the connection as ground truth
# ===========================================================================================================
@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_every_port_agrees_with_a_real_connection(fwlab: Lab, backend: str):
    host = fwlab.ipt if backend == "iptables" else fwlab.nft
    tr = host.transport()
    truth = truths(fwlab.a, host.address, TCP_PORTS)
    seen = {"accept": 0, "drop": 0, "reject": 0}
    for name, port in P.items():
        facts, note = probe(tr, port=port, source=fwlab.a.address)
        if facts.allowed is None:  # unevaluable rules: answered unknown, never guessed
            assert name in ("mark", "limited"), (name, facts)
            continue
        expect_truth(facts, truth[port])
        seen[truth[port]] += 1
        assert facts.source == fwlab.a.address and facts.interface == "eth0"
        assert facts.backend == backend, (name, facts.backend, facts.matched_rule)
        assert note and (note["en"] and note["zh-CN"])
    assert min(seen.values()) >= 3, seen  # the lab exercises each outcome several times
    # the ports whose rules do not look at the source: the same answer without a source
    for name in ("open1", "range_mid", "rej_rst", "rej_icmp", "rej_prohib", "chain_acc", "chain_drop", "pre_drop",
                 "policy", "set2"):
        port = P[name]
        facts, _ = probe(tr, port=port)
        expect_truth(facts, truth[port])
        assert facts.source is None and facts.allowed_from == (["0.0.0.0/0"] if facts.allowed else [])


def test_iptables_details(fwlab: Lab):
    tr = fwlab.ipt.transport()
    f, _ = probe(tr, port=P["rej_rst"], source=fwlab.a.address)
    assert f.matched_rule == f"-A INPUT -p tcp -m tcp --dport {P['rej_rst']} -j REJECT --reject-with tcp-reset"
    assert f.chain == "filter INPUT" and f.policy == "drop" and f.reject_with == "tcp-reset"
    f, note = probe(tr, port=P["rej_prohib"], source=fwlab.a.address)
    assert f.reject_with == "icmp-host-prohibited" and "no route to host" in note["en"]
    f, _ = probe(tr, port=P["chain_acc"], source=fwlab.a.address)
    assert f.chain == "filter APP" and f.matched_rule.startswith("-A APP") and f.decided_by == "rule"
    f, note = probe(tr, port=P["policy"], source=fwlab.a.address)
    assert (f.decided_by, f.matched_rule, f.policy, f.action) == ("policy", None, "drop", "drop")
    assert "times out" in note["en"]
    f, _ = probe(tr, port=P["pre_drop"], source=fwlab.a.address)  # filter accepts it; raw PREROUTING drops first
    assert (f.chain, f.action) == ("raw PREROUTING", "drop")
    # the LOG rule behind `-m limit` cannot be evaluated, yet decides nothing: the answer is definite
    f, note = probe(tr, port=P["open1"], source=fwlab.a.address)
    assert (f.allowed, f.decided_by, f.unevaluable_rules) == (True, "rule", [])
    # Debian's iptables is iptables-nft: its rules are in nft's ruleset too, with opaque xt expressions there;
    # they are evaluated once, from iptables-save
    ruleset = fwlab.ipt.exec(["nft", "-j", "list", "ruleset"]).stdout
    assert '"xt"' in ruleset
    assert not any('"xt"' in r or "conntrack" in r for r in f.unevaluable_rules)
    assert f.backends == ["iptables"]


def test_nftables_details(fwlab: Lab):
    tr = fwlab.nft.transport()
    f, _ = probe(tr, port=P["late_drop"], source=fwlab.a.address)
    # accepted by inet filter input (priority 0), dropped by inet late in2 (priority 10): accept ends one chain
    assert (f.action, f.chain, f.matched_rule) == ("drop", "inet late in2", f"tcp dport {P['late_drop']} drop")
    f, _ = probe(tr, port=P["pre_drop"], source=fwlab.a.address)
    assert (f.action, f.chain) == ("drop", "ip early pre")
    f, _ = probe(tr, port=P["vmap_drop"], source=fwlab.a.address)
    assert f.action == "drop" and "vmap" in f.matched_rule
    f, _ = probe(tr, port=P["set1"], source=fwlab.a.address)
    assert f.matched_rule == "tcp dport @allowed accept" and f.chain == "inet filter input"
    f, _ = probe(tr, port=P["rej_prohib"], source=fwlab.a.address)
    assert f.reject_with == "icmpx admin-prohibited"
    f, _ = probe(tr, port=P["chain_drop"], source=fwlab.a.address)
    assert (f.chain, f.policy) == ("inet filter app", "drop")


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_source_limited_rules(fwlab: Lab, backend: str):
    host = fwlab.ipt if backend == "iptables" else fwlab.nft
    tr = host.transport()
    truth = truths(fwlab.a, host.address, [P["only_a"], P["only_x"]])
    assert truth == {P["only_a"]: "accept", P["only_x"]: "drop"}
    f, _ = probe(tr, port=P["only_a"], source=fwlab.a.address)
    expect_truth(f, "accept")
    f, _ = probe(tr, port=P["only_x"], source=fwlab.a.address)
    expect_truth(f, "drop")
    f, _ = probe(tr, port=P["only_x"], source=fwlab.x)
    assert f.allowed is True
    # without a source the answer depends on it, and says from where
    f, note = probe(tr, port=P["only_a"])
    assert (f.allowed, f.action, f.decided_by) == (None, "unknown", "depends-on-source")
    assert f.allowed_from == [f"{fwlab.a.address}/32"]
    assert fwlab.a.address in note["en"] and "source" in note["en"] and note["zh-CN"]


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_udp_agrees_with_a_connected_udp_socket(fwlab: Lab, backend: str):
    host = fwlab.ipt if backend == "iptables" else fwlab.nft
    tr = host.transport()
    for name, port in U.items():
        truth = udp_truth(fwlab.a, host.address, port)
        f, _ = probe(tr, port=port, protocol="udp", source=fwlab.a.address)
        assert truth == {"open": "accept", "rej": "reject", "policy": "drop"}[name]
        expect_truth(f, truth)


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_unevaluable_rule_ahead_of_the_decision_is_unknown(fwlab: Lab, backend: str):
    host = fwlab.ipt if backend == "iptables" else fwlab.nft
    port = P["limited"] if backend == "iptables" else P["mark"]
    f, note = probe(host.transport(), port=port, source=fwlab.a.address)
    assert (f.allowed, f.action, f.decided_by) == (None, "unknown", "unevaluable-rule")
    assert ("-m limit --limit 5/min" in f.matched_rule) if backend == "iptables" else ("meta mark" in f.matched_rule)
    assert f.matched_rule in f.unevaluable_rules
    assert "cannot tell" in note["en"] and "port_proof" in note["en"] and note["zh-CN"]


def test_nft_table_under_an_iptables_name_is_read_with_nft(fwlab: Lab):
    # iptables-nft prints it without a word of warning, and wrong: the set lookup is simply left out
    save = fwlab.mix.exec(["iptables-save"]).stdout
    assert "-A INPUT -p tcp -j ACCEPT" in save and "incompatible" not in save
    truth = truths(fwlab.a, fwlab.mix.address, [P["open1"], P["open2"], P["policy"]])
    assert truth == {P["open1"]: "accept", P["open2"]: "drop", P["policy"]: "drop"}
    tr = fwlab.mix.transport()
    for port in truth:
        f, _ = probe(tr, port=port, source=fwlab.a.address)
        expect_truth(f, truth[port])
    f, note = probe(tr, port=P["open1"], source=fwlab.a.address)
    assert (f.backend, f.chain, f.matched_rule) == ("nftables", "ip filter INPUT", "tcp dport @ports accept")
    assert "read with nft" in note["en"]
    f, _ = probe(tr, port=P["open2"], source=fwlab.a.address)
    assert (f.backend, f.chain) == ("iptables", "raw PREROUTING")
    assert sorted(f.backends) == ["iptables", "nftables"]


def test_host_without_firewall(fwlab: Lab):
    truth = tcp_truth(fwlab.a, fwlab.bare.address, P["policy"])
    assert truth == "accept"
    f, note = probe(fwlab.bare.transport(), port=P["policy"], source=fwlab.a.address)
    assert (f.backend, f.active, f.allowed, f.action, f.decided_by) == ("none", False, True, "accept", "no-firewall")
    assert f.backends == [] and f.matched_rule is None and "no firewall" in note["en"]
    f, _ = probe(fwlab.bare.transport(), port=P["policy"])
    assert f.allowed is True and f.allowed_from == ["0.0.0.0/0"]


def test_one_snapshot_per_host_and_scan(fwlab: Lab):
    """Every firewall check on a host shares one privileged command (a per-scan memo on the transport)."""
    tr = fwlab.nft.transport()
    calls: list[str] = []
    real = tr.run_privileged

    def counting(cmd: str, timeout: float = 10.0, env: dict[str, str] | None = None) -> CommandResult:
        calls.append(cmd)
        return real(cmd, timeout=timeout, env=env)

    tr.run_privileged = counting  # type: ignore[method-assign]
    for port in (P["open1"], P["policy"], P["rej_rst"]):
        probe(tr, port=port, source=fwlab.a.address)
    assert len(calls) == 1


# ===========================================================================================================
# over SSH: the CLI, an inventory, a real sshd in each host
# ===========================================================================================================
def test_over_ssh_for_each_backend(fwlab: Lab, tmp_path: Path):
    need_sshd()
    key = keygen(tmp_path / "key")
    servers = [SshServer(tmp_path / h.name, key, address=h.address, port=22, netns=h.ns).start()
               for h in (fwlab.ipt, fwlab.nft)]
    try:
        inv = {"hosts": {"ipt01": {"address": fwlab.ipt.address, "user": "root", "key": str(key)},
                         "nft01": {"address": fwlab.nft.address, "user": "root", "key": str(key)}}}
        ports = {"open1": True, "rej_rst": False, "only_a": True, "only_x": False, "policy": False}
        checks = [{"id": f"fw-{name.replace('_', '-')}", "probe": "firewall", "hosts": ["ipt01", "nft01"],
                   "with": {"port": P[name], "source": fwlab.a.address}, "expect": {"allowed": want}}
                  for name, want in ports.items()]
        checks.append({"id": "fw-any-source", "probe": "firewall", "hosts": ["ipt01", "nft01"],
                       "with": {"port": P["only_a"]}, "expect": {"decided_by": "depends-on-source"}})
        (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
        (tmp_path / "c.yaml").write_text(yaml.safe_dump({"version": 1, "checks": checks}))
        out = tmp_path / "r.json"
        res = cli("scan", str(tmp_path / "c.yaml"), "-i", str(tmp_path / "inv.yaml"), "--known-hosts",
                  str(tmp_path / "kh"), "--accept-new-hostkeys", "--json", str(out), "--lang", "en")
        assert out.exists(), (res.code, res.err, res.out)
        data = json.loads(out.read_text())
        results = {f"{r['check']}@{r['host']}": r for r in data["results"]}
        assert res.code == 0, {k: (v["status"], v["message"]["en"]) for k, v in results.items()}
        for host, backend, h in (("ipt01", "iptables", fwlab.ipt), ("nft01", "nftables", fwlab.nft)):
            truth = truths(fwlab.a, h.address, [P[n] for n in ports])
            for name in ports:
                obs = results[f"fw-{name.replace('_', '-')}@{host}"]["observed"]
                assert obs["allowed"] == (truth[P[name]] == "accept") and obs["action"] == truth[P[name]]
                assert obs["backend"] == backend
            assert results[f"fw-any-source@{host}"]["observed"]["allowed_from"] == [f"{fwlab.a.address}/32"]
    finally:
        for s in servers:
            s.stop()


# ===========================================================================================================
# privilege
# ===========================================================================================================
class AsNobody(NetnsTransport):
    """Commands run as user nobody inside the host (runuser); sudo is off, as for a non-root login."""

    def run(self, cmd: Any, timeout: float = 10.0, env: dict[str, str] | None = None,
            stdin: str | None = None) -> Any:
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return super().run(["runuser", "-u", "nobody", "--", *argv], timeout=timeout, env=env, stdin=stdin)


class ScriptAsNobody(AsNobody):
    """The probe's script itself runs as nobody (as if sudo had let it through without root)."""

    def run_privileged(self, cmd: str, timeout: float = 10.0, env: dict[str, str] | None = None) -> Any:
        return self.run(cmd, timeout=timeout, env=env)


class NoNetAdmin(NetnsTransport):
    """Root, but without CAP_NET_ADMIN (as in an unprivileged container)."""

    def run_privileged(self, cmd: str, timeout: float = 10.0, env: dict[str, str] | None = None) -> Any:
        return self.run(["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", "--", "/bin/sh", "-c",
                         cmd], timeout=timeout, env=env)


def _clean_error(exc: ProbeError) -> None:
    msg, hint = exc.message, exc.hint
    assert msg["en"] and msg["zh-CN"] and hint and hint["en"] and hint["zh-CN"]
    assert "Traceback" not in msg["en"] + (hint["en"] if hint else "")


def test_without_root_is_a_privilege_error_not_no_firewall(fwlab: Lab):
    need(shutil.which("runuser") is not None, "needs runuser (util-linux)")
    with pytest.raises(ProbeError) as info:
        probe(AsNobody(fwlab.ipt), port=P["open1"])
    _clean_error(info.value)
    assert "root" in info.value.message["en"] and "sudo" in (info.value.hint or {})["en"]
    # the script run without root anyway: iptables says 'you must be root', nft 'Operation not permitted'
    res = ScriptAsNobody(fwlab.ipt).run(SCRIPT)
    snap = parse_snapshot(res.stdout)
    assert snap.get("iptables-save").rc == 4 and "you must be root" in snap.text("iptables-save")
    assert snap.get("nft-json").rc == 1 and "Operation not permitted" in snap.text("nft-json")
    assert privilege_problem(snap) == "not-root"
    with pytest.raises(ProbeError) as info:
        probe(ScriptAsNobody(fwlab.ipt), port=P["open1"])
    _clean_error(info.value)
    assert "does not mean there is no firewall" in info.value.message["en"]


def test_root_without_cap_net_admin(fwlab: Lab):
    need(shutil.which("setpriv") is not None, "needs setpriv (util-linux)")
    with pytest.raises(ProbeError) as info:
        probe(NoNetAdmin(fwlab.nft), port=P["open1"])
    _clean_error(info.value)
    assert "CAP_NET_ADMIN" in info.value.message["en"]


# ===========================================================================================================
# params
# ===========================================================================================================
def test_params():
    assert FirewallParams(port=22).ip_family == 4
    assert FirewallParams(port=22, source="2001:db8::5").ip_family == 6
    assert FirewallParams(port=22, source="::ffff:10.0.0.1").source == "10.0.0.1"
    assert FirewallParams(port=22, source="any").source is None
    with pytest.raises(ValidationError, match="IP address"):
        FirewallParams(port=22, source="app01.example.test")
    with pytest.raises(ValidationError, match="not an ipv6 address"):
        FirewallParams(port=22, source="10.0.0.1", family="ipv6")
    with pytest.raises(ValidationError):
        FirewallParams(port=70000)


# ===========================================================================================================
# recorded outputs: whole snapshots of the probe's script
# ===========================================================================================================
def snapshot(name: str) -> Any:
    snap = parse_snapshot((FIX / f"{name}.snapshot").read_text())
    assert snap.complete and privilege_problem(snap) is None
    return snap


def ana(name: str, port: int, source: str | None = None, proto: str = "tcp", family: int = 4,
        interface: str | None = None) -> Any:
    q = Query(port, proto, family, ipaddress.ip_address(source) if source else None, interface)
    return analyze_linux(snapshot(name), q)[0]


def verdict_of(a: Any) -> tuple[Any, str, str]:
    return a.allowed, a.action, a.decided_by


@pytest.mark.parametrize("port, source, proto, family, expected, rule", [
    (22, None, "tcp", 4, (True, "accept", "rule"), "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"),
    (443, None, "tcp", 4, (True, "accept", "rule"), "-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT"),
    (5432, "10.20.5.5", "tcp", 4, (True, "accept", "rule"), "-A INPUT -s 10.20.0.0/16 -p tcp -m tcp --dport 5432 -j ACCEPT"),
    (5432, "10.99.0.1", "tcp", 4, (False, "drop", "rule"), "-A LOGDROP -j DROP"),
    (5432, None, "tcp", 4, (None, "unknown", "depends-on-source"), "-A INPUT -s 10.20.0.0/16 -p tcp -m tcp --dport 5432 -j ACCEPT"),
    (3306, None, "tcp", 4, (False, "reject", "rule"), "-A INPUT -p tcp -m tcp --dport 3306 -j REJECT --reject-with tcp-reset"),
    (8050, None, "tcp", 4, (True, "accept", "rule"), '-A INPUT -p tcp -m tcp --dport 8000:8099 -m comment --comment "app cluster" -j ACCEPT'),
    (161, "10.20.30.40", "udp", 4, (True, "accept", "rule"), "-A INPUT -s 10.20.30.40/32 -p udp -m udp --dport 161 -j ACCEPT"),
    (161, "10.20.30.41", "udp", 4, (False, "drop", "rule"), "-A LOGDROP -j DROP"),
    (22, None, "tcp", 6, (True, "accept", "rule"), "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"),
    (5432, None, "tcp", 6, (False, "drop", "policy"), None),
])
def test_debian_iptables_nft_snapshot(port, source, proto, family, expected, rule):
    a = ana("debian12-iptables", port, source, proto, family)
    assert verdict_of(a) == expected and a.matched_rule == rule
    # iptables-nft's tables appear in nft's ruleset too (opaque xt expressions there): evaluated once
    assert a.present == ["iptables"] and a.backend == "iptables"
    assert not any("xt" in r for r in a.unevaluable_rules)
    assert a.interface == "eth0"


def test_debian_iptables_snapshot_details():
    text = (FIX / "debian12-iptables.snapshot").read_text()
    assert '"xt": {"type": "match", "name": "conntrack"}' in text
    a = ana("debian12-iptables", 5432)
    assert a.allowed_from == ["10.20.0.0/16"] and "10.20.0.0/16" not in (a.denied_from or [])
    a = ana("debian12-iptables", 9999)
    assert (a.chain, a.policy, a.denied_from) == ("filter LOGDROP", "drop", ["0.0.0.0/0"])


@pytest.mark.parametrize("port, source, expected, rule", [
    (22, None, (True, "accept", "rule"), "tcp dport 22 accept"),
    (5432, "192.168.50.7", (True, "accept", "rule"), "ip saddr @admin_nets tcp dport { 5432, 9090 } accept"),
    (9090, "10.20.7.7", (True, "accept", "rule"), "ip saddr @admin_nets tcp dport { 5432, 9090 } accept"),
    (5432, "10.99.0.1", (False, "drop", "rule"), 'counter packets 0 bytes 0 drop comment "default drop"'),
    (3306, None, (False, "reject", "rule"), "tcp dport 3306 reject with tcp reset"),
    (8080, None, (None, "unknown", "unevaluable-rule"), "tcp dport 8080 dnat to 10.20.1.9:80"),
])
def test_debian_nftables_snapshot(port, source, expected, rule):
    a = ana("debian12-nftables", port, source)
    assert verdict_of(a) == expected and a.matched_rule == rule
    assert a.present == ["nftables"]
    if a.allowed is None:
        assert a.unknown_reason == "dnat" and a.chain == "ip nat prerouting"


def test_debian_nftables_named_interval_set_gives_exact_networks():
    a = ana("debian12-nftables", 5432)
    assert a.decided_by == "depends-on-source" and a.allowed_from == ["10.20.0.0/16", "192.168.50.0/24"]
    a = ana("debian12-nftables", 53, proto="udp")
    assert a.allowed and a.matched_rule == "udp dport 53 accept"


@pytest.mark.parametrize("port, source, family, expected, rule", [
    (22, None, 4, (True, "accept", "rule"), "22/tcp                     LIMIT IN    Anywhere"),
    (22, "203.0.113.7", 4, (True, "accept", "rule"), "22/tcp                     LIMIT IN    Anywhere"),
    (443, None, 4, (True, "accept", "rule"), "80,443/tcp (Nginx Full)    ALLOW IN    Anywhere"),
    (5432, "10.20.1.1", 4, (True, "accept", "rule"), "5432/tcp                   ALLOW IN    10.20.0.0/16"),
    (5432, "10.21.1.1", 4, (False, "drop", "policy"), None),
    (3306, None, 4, (False, "reject", "rule"), "3306/tcp                   REJECT IN   Anywhere"),
    (8005, "203.0.113.7", 4, (False, "drop", "rule"), "Anywhere                   DENY IN     203.0.113.7"),
    (8005, "198.51.100.1", 4, (True, "accept", "rule"),
     "8000:8010/tcp              ALLOW IN    Anywhere                   # app cluster"),
    (9100, None, 4, (False, "drop", "policy"), None),  # allowed on eth1 only, and the host has no eth1
    (6379, "10.20.3.3", 4, (True, "accept", "rule"), "10.20.1.5 6379/tcp         ALLOW IN    10.20.0.0/16"),
    (22, None, 6, (True, "accept", "rule"), "22/tcp (v6)                LIMIT IN    Anywhere (v6)"),
    (443, None, 6, (True, "accept", "rule"), "80,443/tcp (Nginx Full (v6)) ALLOW IN    Anywhere (v6)"),
    (5432, None, 6, (False, "drop", "policy"), None),
])
def test_ubuntu_ufw_snapshot(port, source, family, expected, rule):
    a = ana("ubuntu2204-ufw", port, source, family=family)
    assert verdict_of(a) == expected and a.matched_rule == rule
    assert a.backend == "ufw" and a.present == ["ufw"] and (a.chain, a.policy) == ("ufw", "deny")
    assert a.limited == (port == 22)


def test_ufw_limit_and_deny_notes():
    facts, note = _facts_and_note("ubuntu2204-ufw", port=22)
    assert "LIMIT" in note["en"] and "30 s" in note["en"] and "30 秒" in note["zh-CN"]
    facts, note = _facts_and_note("ubuntu2204-ufw", port=8005)
    assert facts.decided_by == "depends-on-source" and facts.denied_from == ["203.0.113.7/32"]
    assert "except 203.0.113.7/32" in note["en"]


def _facts_and_note(name: str, **params: Any) -> tuple[Any, Any]:
    """The probe's facts and message for a recorded snapshot (the probe's pure half)."""
    p = FirewallParams(**params)
    a, notes = analyze_linux(snapshot(name), query_of(p))
    pr = FirewallProbe()
    pr._notes, pr._limited = notes, a.limited
    from envprobe.probes.firewall import facts_of  # noqa: PLC0415

    facts = facts_of(p, a)
    return facts, pr.note(p, facts)


FW_CASES = [
    # port, source, expected, matched rule, zone
    (22, "10.20.1.1", (True, "accept", "rule"), "service ssh (22/tcp)", "public"),
    (22, "203.0.113.9", (False, "reject", "rule"),
     'rule family="ipv4" source address="203.0.113.0/24" service name="ssh" reject', "public"),
    (9090, None, (True, "accept", "rule"), "service cockpit (9090/tcp)", "public"),  # through an include
    (8080, None, (True, "accept", "rule"), "port 8080/tcp", "public"),
    (5005, None, (True, "accept", "rule"), "port 5000-5010/tcp", "public"),
    (5432, "10.20.4.4", (True, "accept", "rule"),
     'rule family="ipv4" source address="10.20.0.0/16" service name="postgresql" accept', "public"),
    (5432, "10.21.0.1", (False, "reject", "policy"), None, "public"),
    (3306, "10.30.1.1", (True, "accept", "policy"), None, "trusted"),  # a source-bound zone wins
    (3306, "10.21.0.1", (False, "reject", "policy"), None, "public"),
    (6379, "10.20.9.9", (None, "unknown", "unevaluable-rule"),
     'rule family="ipv4" source address="10.20.9.9" port port="6379" protocol="tcp" accept limit value="10/m"',
     "public"),
]


@pytest.mark.parametrize("port, source, expected, rule, zone", FW_CASES)
def test_rhel9_firewalld_snapshot(port, source, expected, rule, zone):
    a = ana("rhel9-firewalld", port, source)
    assert verdict_of(a) == expected and a.matched_rule == rule and a.zone == zone
    assert a.backend == "firewalld" and a.present == ["firewalld"]
    if a.action == "reject" and a.decided_by == "policy":
        assert (a.policy, a.reject_with) == ("default", "icmpx admin-prohibited")


def test_firewalld_model_agrees_with_its_own_nftables_table():
    """firewalld's nftables table, evaluated as plain nftables (as if firewalld were stopped but its table left),
    gives the same answers as the zone model."""
    text = (FIX / "rhel9-firewalld.snapshot").read_text()
    stopped = text.replace("@@envprobe-fw firewalld-state\nrunning\n@@envprobe-fw rc 0",
                           "@@envprobe-fw firewalld-state\nnot running\n@@envprobe-fw rc 252")
    assert stopped != text
    snap = parse_snapshot(stopped)
    for port, source, _expected, _rule, _zone in FW_CASES:
        q = Query(port, "tcp", 4, ipaddress.ip_address(source) if source else None)
        raw = analyze_linux(snap, q)[0]
        model = ana("rhel9-firewalld", port, source)
        assert (raw.allowed, raw.action) == (model.allowed, model.action), (port, source, raw.matched_rule)
        assert raw.backend == "nftables" and raw.chain.startswith("inet firewalld")


def test_firewalld_any_source_and_ipv6():
    a = ana("rhel9-firewalld", 22)
    assert a.decided_by == "depends-on-source" and a.denied_from == ["203.0.113.0/24"]
    a = ana("rhel9-firewalld", 2222)  # forward-port of the inactive zone external: not used
    assert a.decided_by == "depends-on-source" and a.allowed_from == ["10.30.0.0/16"]
    a = ana("rhel9-firewalld", 22, family=6)
    assert (a.allowed, a.matched_rule) == (True, "service ssh (22/tcp)")
    # dhcpv6-client is bound to fe80::/64: whether a packet gets through depends on which of the host's
    # addresses it is sent to — unknown, not guessed
    a = ana("rhel9-firewalld", 546, proto="udp", family=6)
    assert (a.allowed, a.decided_by) == (None, "unevaluable-rule")


@pytest.mark.parametrize("port, source, expected, rule, chain", [
    (22, "10.40.1.1", (True, "accept", "rule"), "service ssh (22/tcp)", "zone public"),
    (9200, None, (False, "reject", "rule"), "-A INPUT_direct -p tcp -m tcp --dport 9200 -j REJECT --reject-with "
                                             "tcp-reset", "filter INPUT_direct"),  # a direct rule, as iptables
    (1521, "10.40.3.3", (True, "accept", "rule"),
     'rule family="ipv4" source address="10.40.0.0/16" port port="1521" protocol="tcp" accept', "zone public"),
    (1521, "10.40.5.5", (False, "drop", "rule"), 'rule family="ipv4" source address="10.40.5.5" drop',
     "zone public"),
    (1521, "10.50.0.1", (False, "reject", "policy"), None, "zone public"),
    (3306, "10.30.1.1", (True, "accept", "policy"), None, "zone trusted"),
    (8443, "10.40.1.1", (None, "unknown", "unevaluable-rule"), "forward-port port=8443:proto=tcp:toport=443:toaddr=",
     "zone public"),
])
def test_centos7_firewalld_iptables_backend_snapshot(port, source, expected, rule, chain):
    a = ana("centos7-firewalld", port, source)
    assert verdict_of(a) == expected and a.matched_rule == rule and a.chain == chain
    assert a.interface == "ens192"
    if a.action == "reject" and a.decided_by == "policy":
        assert a.reject_with == "icmp-host-prohibited"


def test_centos7_ipv6_and_nothing_from_nft():
    a = ana("centos7-firewalld", 3306, family=6)
    assert verdict_of(a) == (False, "reject", "policy") and a.zone == "public"
    a = ana("centos7-firewalld", 546, proto="udp", family=6)  # the host's only IPv6 address is link-local
    assert verdict_of(a) == (True, "accept", "rule")


# ===========================================================================================================
# the parsers on their own
# ===========================================================================================================
def test_snapshot_sections_and_privilege_detection():
    snap = snapshot("debian12-nftables")
    assert {"uid", "tools", "nft-json", "nft-text", "iptables-save", "addr", "route4"} <= set(snap.sections)
    assert snap.get("nft-json").rc == 0 and "nft" in snap.tools() and snap.uid() == 0
    not_root = parse_snapshot(
        "@@envprobe-fw uid\n1000\n@@envprobe-fw nft-json\nOperation not permitted (you must be root)\n"
        "netlink: Error: cache initialization failed: Operation not permitted\n@@envprobe-fw rc 1\n"
        "@@envprobe-fw iptables-save\niptables-save v1.8.7 (nf_tables): Could not fetch rule set generation id: "
        "Permission denied (you must be root)\n@@envprobe-fw rc 4\n@@envprobe-fw end\n")
    assert privilege_problem(not_root) == "not-root"
    no_cap = parse_snapshot(not_root.sections and "@@envprobe-fw uid\n0\n@@envprobe-fw nft-json\n"
                            "netlink: Error: cache initialization failed: Operation not permitted\n"
                            "@@envprobe-fw rc 1\n@@envprobe-fw end\n")
    assert privilege_problem(no_cap) == "no-capability"
    cut = parse_snapshot("@@envprobe-fw uid\n0\n@@envprobe-fw nft-json\n{")
    assert not cut.complete


def test_nft_text_listing():
    text = parse_snapshot((FIX / "ubuntu2204-ufw.snapshot").read_text()).text("nft-text")
    listing = nft.parse_nft_text(text)
    assert ("ip", "filter") in listing.iptables_managed
    assert listing.rules[("ip", "filter", "INPUT", 37)] == "counter packets 0 bytes 0 jump ufw-before-input"
    dev = nft.parse_nft_text('table netdev ingr { # handle 3\n\tchain ing { # handle 1\n\t\ttype filter hook '
                             'ingress device "eth0" priority filter; policy drop;\n\t\ttcp dport 22 accept # '
                             'handle 2\n\t}\n}\n')
    assert dev.devices[("netdev", "ingr", "ing")] == ("eth0",)
    assert dev.rules[("netdev", "ingr", "ing", 2)] == "tcp dport 22 accept"


def test_iptables_save_parser():
    save = ipt.parse_iptables_save(snapshot("centos7-firewalld").text("iptables-save"))
    assert set(save.tables) == {"nat", "mangle", "raw", "security", "filter"}
    f = save.tables["filter"]
    assert f.chains["INPUT"].policy == "ACCEPT" and f.chains["IN_public"].policy is None
    assert f.chains["INPUT"].rules[-1] == "-A INPUT -j REJECT --reject-with icmp-host-prohibited"
    assert save.variant is None  # iptables 1.4 does not say
    save = ipt.parse_iptables_save(snapshot("debian12-iptables").text("iptables-save"))
    assert save.variant == "nf_tables"
    save = ipt.parse_iptables_save("# Table `nat' contains incompatible base-chains, use 'nft' tool to list them.\n"
                                   "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n")
    assert save.incompatible == {"nat"}
    counted = ipt.parse_iptables_save("*filter\n:INPUT DROP [10:600]\n[3:180] -A INPUT -p tcp --dport 22 -j ACCEPT\n"
                                      "COMMIT\n")
    assert counted.tables["filter"].chains["INPUT"].rules == ["-A INPUT -p tcp --dport 22 -j ACCEPT"]


def test_firewalld_zone_listings():
    zones = fwd.parse_zones((FIX / "parts" / "rhel9-firewalld-zones.txt").read_text())
    assert len(zones) == 10
    pub = zones["public"]
    assert pub.default and pub.active and pub.target == "default" and pub.interfaces == ["eth0"]
    assert pub.services == ["cockpit", "dhcpv6-client", "http", "https", "ssh"]
    assert pub.ports == ["8080/tcp", "5000-5010/tcp"] and len(pub.rich_rules) == 3
    assert zones["trusted"].sources == ["10.30.0.0/16"] and zones["trusted"].target == "ACCEPT"
    assert zones["external"].forward_ports == ["port=2222:proto=tcp:toport=22:toaddr="]
    assert zones["nm-shared"].rich_rules == ['rule priority="32767" reject']
    old = fwd.parse_zones(snapshot("centos7-firewalld").text("firewalld-zones"))  # firewalld 0.6 layout
    assert old["public"].forward_ports == ["port=8443:proto=tcp:toport=443:toaddr="]
    assert old["public"].active and not old["public"].default and old["block"].rich_rules == []
    policies = fwd.parse_zones((FIX / "parts" / "rhel9-firewalld-policies.txt").read_text())
    p = policies["allow-host-ipv6"]
    assert (p.priority, p.target, p.ingress_zones, p.egress_zones) == (-15000, "CONTINUE", ["ANY"], ["HOST"])
    active = fwd.parse_active_zones("public\n  interfaces: eth0 eth1\ntrusted\n  sources: 10.30.0.0/16 ipset:lab\n")
    assert active == {"public": {"interfaces": ["eth0", "eth1"], "sources": []},
                      "trusted": {"interfaces": [], "sources": ["10.30.0.0/16", "ipset:lab"]}}


def test_firewalld_rich_rules_and_services():
    r = fwd.parse_rich_rule('rule family="ipv4" priority="-10" source not address="10.0.0.0/8" '
                            'port port="8000-8010" protocol="tcp" log prefix="x " level="info" limit value="1/m" '
                            'reject type="icmp-host-prohibited"')
    assert r is not None
    assert (r.family, r.priority, r.source, r.action, r.reject_type, r.action_limited) == (
        "ipv4", -10, ("address", "10.0.0.0/8", True), "reject", "icmp-host-prohibited", False)
    assert r.element == ("port", {"port": "8000-8010", "protocol": "tcp"})
    r = fwd.parse_rich_rule('rule service name="http" accept limit value="5/s"')
    assert r is not None and r.action_limited and r.element == ("service", {"name": "http"})
    assert fwd.parse_rich_rule("not a rule") is None
    svc = fwd.parse_service("dhcpv6-client", (FIX / "parts" / "services" / "dhcpv6-client.xml").read_text())
    assert svc.ports == [(546, 546, "udp")] and svc.destinations == {"ipv6": "fe80::/64"}
    svc = fwd.parse_service("cockpit", (FIX / "parts" / "services" / "cockpit.xml").read_text())
    assert svc.includes == ["websm"] and svc.ports == []
    with pytest.raises(ValueError):
        fwd.parse_service("broken", "<service><port")


def test_ufw_status_parser():
    text = (FIX / "parts" / "ubuntu2204-ufw-status-verbose.txt").read_text()
    u = ufwmod.parse_status(text)
    assert u.active and u.default_in == "deny" and u.logging == "on (low)" and len(u.rules) == 13
    r = u.rules[1]
    assert (r.action, r.proto, r.ports, r.v6) == ("allow", "tcp", [(80, 80), (443, 443)], False)
    r = u.rules[4]
    assert (r.action, r.ports, str(r.from_net), r.proto) == ("deny", None, "203.0.113.7/32", None)
    r = u.rules[5]
    assert r.ports == [(8000, 8010)] and r.text.endswith("# app cluster")
    assert u.rules[6].iface == "eth1" and str(u.rules[7].to_net) == "10.20.1.5/32"
    assert u.rules[9].v6 and u.rules[9].ports == [(80, 80), (443, 443)]
    # without "verbose" an application rule shows its name only: user.rules' tuples give the ports
    tuples = ufwmod.parse_user_rules((FIX / "parts" / "ubuntu2204-ufw-user.rules").read_text())
    assert tuples == {"Nginx Full": "80,443/tcp"}
    short = ufwmod.parse_rule_line("Nginx Full                 ALLOW       Anywhere", tuples)
    assert short is not None and short.ports == [(80, 80), (443, 443)] and short.proto == "tcp"
    unknown = ufwmod.parse_rule_line("Some App                   ALLOW       Anywhere", {})
    assert unknown is not None and unknown.unreadable
    assert not ufwmod.parse_status("Status: inactive\n").active


# ===========================================================================================================
# Windows (recorded outputs only: no Windows host here)
# ===========================================================================================================
WIN = FIX / "windows"


def windows_inputs() -> dict[str, win.WinFirewall]:
    netsh = win.WinFirewall(rules=win.parse_netsh_rules((WIN / "win2019-netsh-show-rule-verbose.txt").read_text()),
                            profiles=win.parse_netsh_profiles((WIN / "win2019-netsh-allprofiles.txt").read_text()))
    netsh.active = win.parse_netsh_current((WIN / "win2019-netsh-currentprofile.txt").read_text())
    return {"netsh": netsh,
            "powershell": win.parse_powershell((WIN / "win2022-powershell.json").read_text()),
            "powershell51": win.parse_powershell((WIN / "win2016-powershell51.json").read_text())}


def test_windows_parsers():
    inputs = windows_inputs()
    netsh = inputs["netsh"]
    assert len(netsh.rules) == 12 and netsh.active == ["Domain"]
    rdp = netsh.rules[0]
    assert (rdp.name, rdp.enabled, rdp.action, rdp.protocol, rdp.local_ports, rdp.service) == (
        "Remote Desktop - User Mode (TCP-In)", True, "allow", "tcp", ["3389"], "termservice")
    assert rdp.profiles == {"Domain", "Private", "Public"}
    assert netsh.rules[1].enabled is False and netsh.rules[2].profiles == {"Domain", "Private"}
    assert netsh.rules[5].remote_addresses == ["10.0.0.0/24", "10.0.9.20-10.0.9.29"]
    assert netsh.profiles["Public"].allow_inbound_rules is False  # BlockInboundAlways
    assert netsh.profiles["Domain"].default_inbound == "block"
    for name in ("powershell", "powershell51"):
        fw = inputs[name]
        assert len(fw.rules) == 11 and fw.connections == {"Ethernet0": "Domain"} and fw.active == ["Domain"]
        assert fw.rules[0].text == "Remote Desktop - User Mode (TCP-In)" and fw.rules[1].enabled is False
        assert fw.rules[4].remote_addresses == ["10.0.0.0/255.255.255.0", "10.0.9.20-10.0.9.29"]
        assert fw.rules[6].action == "block" and fw.rules[2].profiles == {"Domain", "Private"}
        assert fw.profiles["Private"].default_inbound == "block" and fw.profiles["Private"].allow_inbound_rules
        assert fw.profiles["Public"].allow_inbound_rules is False
    with pytest.raises(ValueError):
        win.parse_powershell("Get-NetFirewallRule : The term is not recognized")


@pytest.mark.parametrize("port, source, program, expected, rule", [
    (1433, "10.0.0.7", None, (True, "accept", "rule"), "MES SQL Server (TCP 1433)"),
    (1433, "10.0.9.25", None, (True, "accept", "rule"), "MES SQL Server (TCP 1433)"),
    (23, None, None, (False, "drop", "rule"), "Block Telnet"),  # block beats allow
    (8080, "192.168.100.5", None, (False, "drop", "rule"), "Block SMB from guest network"),
    (9005, "10.0.0.7", None, (True, "accept", "rule"), "MES app ports"),
    (3389, "10.0.0.7", "TermService", (True, "accept", "rule"), "Remote Desktop - User Mode (TCP-In)"),
    (3389, "10.0.0.7", None, (None, "unknown", "depends-on-program"), "Remote Desktop - User Mode (TCP-In)"),
    (7777, "10.0.0.7", r"c:\program files\java\jre1.8.0_381\bin\java.exe", (True, "accept", "rule"),
     "Java(TM) Platform SE binary"),
    (7777, "10.0.0.7", r"C:\app\server.exe", (False, "drop", "policy"), None),
    (1521, "10.0.0.7", r"C:\app\server.exe", (None, "unknown", "unevaluable-rule"),
     "Oracle listener (wireless only)"),
])
def test_windows_evaluation_is_the_same_from_every_input(port, source, program, expected, rule):
    for name, fw in windows_inputs().items():
        a = analyze_windows(fw, Query(port, "tcp", 4, ipaddress.ip_address(source) if source else None,
                                      None, program))
        assert verdict_of(a) == expected and a.matched_rule == rule, name
        assert a.backend == "windows" and a.chain == "Windows Firewall (Domain profile)" and a.policy == "block"


def test_windows_profiles():
    fw = windows_inputs()["powershell"]
    fw.connections = {"Ethernet0": "Public"}
    fw.active = ["Public"]
    a = analyze_windows(fw, Query(1433, "tcp", 4, ipaddress.ip_address("10.0.0.7")))
    assert (a.allowed, a.action, a.policy) == (False, "drop", "block all incoming connections")
    fw.profiles["Public"].enabled = False
    a = analyze_windows(fw, Query(1433, "tcp", 4, ipaddress.ip_address("10.0.0.7")))
    assert (a.allowed, a.policy, a.active, a.backend, a.decided_by) == (True, "off", False, "none", "no-firewall")
    # two connections in different profiles: the answer depends on the interface
    fw = windows_inputs()["powershell"]
    fw.connections = {"Ethernet0": "Domain", "Wi-Fi": "Public"}
    fw.active = ["Domain", "Public"]
    a = analyze_windows(fw, Query(8080, "tcp", 4, ipaddress.ip_address("10.0.0.7")))
    assert a.decided_by == "depends-on-interface"
    a = analyze_windows(fw, Query(8080, "tcp", 4, ipaddress.ip_address("10.0.0.7"), "Ethernet0"))
    assert (a.allowed, a.matched_rule) == (True, "MES app ports")


def test_legacy_tables_next_to_iptables_nft_are_evaluated_too():
    """Both kinds hook into the kernel: a legacy DROP counts although the iptables-nft rules accept."""
    text = (FIX / "debian12-iptables.snapshot").read_text().replace("@@envprobe-fw end", (
        "@@envprobe-fw iptables-legacy-save\n# Generated by iptables-save v1.8.9 (legacy) on Fri Nov 27 01:00:00 2026\n"
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -p tcp -m tcp --dport 443 -j DROP\nCOMMIT\n@@envprobe-fw rc 0\n@@envprobe-fw end"))
    snap = parse_snapshot(text)
    a, notes = analyze_linux(snap, Query(443, "tcp", 4))
    assert (a.allowed, a.action, a.chain) == (False, "drop", "filter INPUT (legacy)")
    assert a.matched_rule == "-A INPUT -p tcp -m tcp --dport 443 -j DROP" and ("legacy-tables", "") in notes
    a, _ = analyze_linux(snap, Query(22, "tcp", 4))
    assert a.allowed is True


def test_messages_for_unknown_and_missing_tools():
    facts, note = _facts_and_note("debian12-nftables", port=8080)
    assert facts.unknown_reason == "dnat" and "hands the connection on (dnat)" in note["en"]
    assert "dnat" in note["zh-CN"]
    bare = parse_snapshot("@@envprobe-fw uid\n0\n@@envprobe-fw tools\n/usr/sbin/ip\n@@envprobe-fw addr\n"
                          "2: eth0    inet 10.1.1.5/24 scope global eth0\n@@envprobe-fw end\n")
    a, notes = analyze_linux(bare, Query(22, "tcp", 4))
    assert (a.allowed, a.decided_by, a.backend) == (True, "no-firewall", "none") and ("no-tools", "") in notes


def test_engine_follows_both_ways_and_names_the_rule_that_matters():
    """Twelve unevaluable LOG rules decide nothing (skipped); an unevaluable ACCEPT before the policy decides."""
    save = ipt.parse_iptables_save(
        "*filter\n:INPUT DROP [0:0]\n" + "".join(
            f"-A INPUT -m limit --limit {i}/min -j LOG\n" for i in range(1, 13)) +
        "-A INPUT -p tcp -m tcp --dport 80 -m recent --rcheck --seconds 60 -j ACCEPT\n"
        "-A INPUT -p tcp -m tcp --dport 81 -m limit --limit 1/sec -j LOG\n"
        "-A INPUT -p tcp -m tcp --dport 81 -j ACCEPT\nCOMMIT\n")
    from envprobe.probes.fwrules.analyze import evaluate  # noqa: PLC0415
    from envprobe.probes.fwrules.engine import Atoms, HostInfo  # noqa: PLC0415

    atoms = Atoms()
    stages = ipt.build_stages(save, 4, atoms)
    host = HostInfo({"eth0": (ipaddress.ip_interface("10.1.1.5/24"),)}, ())
    a = evaluate(stages, host, Query(80, "tcp", 4, ipaddress.ip_address("10.1.1.9")), atoms, ["iptables"], True)
    assert (a.allowed, a.decided_by) == (None, "unevaluable-rule") and "--rcheck" in a.matched_rule
    a = evaluate(stages, host, Query(81, "tcp", 4, ipaddress.ip_address("10.1.1.9")), atoms, ["iptables"], True)
    assert (a.allowed, a.matched_rule, a.rules_evaluated) == (True, "-A INPUT -p tcp -m tcp --dport 81 -j ACCEPT", 15)
    a = evaluate(stages, host, Query(82, "tcp", 4, ipaddress.ip_address("10.1.1.9")), atoms, ["iptables"], True)
    assert (a.allowed, a.decided_by, a.policy) == (False, "policy", "drop")


def _snapshot_text(sections: dict[str, str]) -> str:
    body = "".join(f"@@envprobe-fw {name}\n{text.rstrip()}\n" for name, text in sections.items())
    return (f"@@envprobe-fw uid\n0\n{body}@@envprobe-fw addr\n2: eth0    inet 10.1.1.5/24 scope global eth0\n"
            "@@envprobe-fw route4\ndefault via 10.1.1.1 dev eth0\n10.1.1.0/24 dev eth0 proto kernel scope link\n"
            "@@envprobe-fw end\n")


def test_thousands_of_source_rules():
    """A fail2ban-like chain of 3000 banned addresses, jumped to for port 22 only."""
    banned = [f"1.{i // 250}.{i % 250}.7" for i in range(3000)]
    rules = ("*filter\n:INPUT DROP [0:0]\n:f2b-sshd - [0:0]\n-A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd\n"
             + "".join(f"-A f2b-sshd -s {ip}/32 -j REJECT --reject-with icmp-port-unreachable\n" for ip in banned)
             + "-A f2b-sshd -j RETURN\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
               "-A INPUT -p tcp -m tcp --dport 5432 -j ACCEPT\nCOMMIT\n")
    snap = parse_snapshot(_snapshot_text({"tools": "/usr/sbin/iptables-save", "iptables-version":
                                          "iptables v1.8.9 (legacy)", "iptables-save": rules}))
    a, _ = analyze_linux(snap, Query(5432, "tcp", 4))  # the banned list is out of reach for this port
    assert (a.allowed, a.matched_rule, a.allowed_from) == (True, "-A INPUT -p tcp -m tcp --dport 5432 -j ACCEPT",
                                                          ["0.0.0.0/0"])
    a, _ = analyze_linux(snap, Query(22, "tcp", 4, ipaddress.ip_address(banned[1234])))
    assert (a.allowed, a.action, a.rules_evaluated) == (False, "reject", 1236)
    a, _ = analyze_linux(snap, Query(22, "tcp", 4, ipaddress.ip_address("10.9.9.9")))
    assert a.allowed is True
    pr, p = FirewallProbe(), FirewallParams(port=22)
    a, _ = analyze_linux(snap, query_of(p))  # too many source ranges to try one by one: said, not guessed
    assert (a.allowed, a.decided_by, a.allowed_from) == (None, "depends-on-source", None)
    from envprobe.probes.firewall import facts_of  # noqa: PLC0415

    note = pr.note(p, facts_of(p, a))
    assert note is not None and "give `source`" in note["en"] and "source" in (a.unknown_reason or "")


def test_a_large_address_set_is_evaluated_for_every_source():
    nets = [f"{1 + i // 256}.{i % 256}.0.0/24" for i in range(2000)]
    ruleset = {"nftables": [
        {"table": {"family": "inet", "name": "f", "handle": 1}},
        {"set": {"family": "inet", "name": "bad", "table": "f", "type": "ipv4_addr", "flags": ["interval"],
                 "elem": [{"prefix": {"addr": n.split("/")[0], "len": 24}} for n in nets]}},
        {"chain": {"family": "inet", "table": "f", "name": "input", "handle": 1, "type": "filter", "hook": "input",
                   "prio": 0, "policy": "accept"}},
        {"rule": {"family": "inet", "table": "f", "chain": "input", "handle": 2, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@bad"}},
            {"drop": None}]}}]}
    snap = parse_snapshot(_snapshot_text({"tools": "/usr/sbin/nft", "nft-json": json.dumps(ruleset)}))
    a, _ = analyze_linux(snap, Query(22, "tcp", 4))
    assert a.decided_by == "depends-on-source" and a.denied_from is not None and len(a.denied_from) == 50
    assert a.denied_from[0] == "1.0.0.0/24" and "0.0.0.0/0" not in (a.allowed_from or [])
    a, _ = analyze_linux(snap, Query(22, "tcp", 4, ipaddress.ip_address("3.4.0.9")))
    assert (a.allowed, a.matched_rule) == (False, "ip saddr @bad drop")
