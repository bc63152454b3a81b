"""SSH hosts in network namespaces: a DROPped SSH port, and port_proof across two hosts through firewalls."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from tests.conftest import cli
from tests.netlab import need_netlab, netlab  # noqa: F401 - the fixture is used by name
from tests.sshfix import SshServer, keygen, need_sshd


def _scan(tmp_path: Path, inv: dict, checks: list[dict]) -> tuple[int, dict[str, dict], float]:
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"version": 1, "checks": checks}))
    out = tmp_path / f"r{time.monotonic_ns()}.json"
    t0 = time.perf_counter()
    res = cli("scan", str(tmp_path / "c.yaml"), "-i", str(tmp_path / "inv.yaml"), "--known-hosts",
              str(tmp_path / "kh"), "--accept-new-hostkeys", "--json", str(out), "--lang", "en")
    elapsed = time.perf_counter() - t0
    data = json.loads(out.read_text())
    return res.code, {f"{r['check']}@{r['host']}": r for r in data["results"]}, elapsed


def test_dropped_ssh_port_is_a_timeout_within_connect_timeout(netlab, tmp_path):  # noqa: F811
    need_sshd()
    need_netlab(iptables=True)
    key = keygen(tmp_path / "key")
    live, dropped = netlab.add_host(), netlab.add_host()
    servers = [SshServer(tmp_path / h.name, key, address=h.address, port=22, netns=h.ns).start()
               for h in (live, dropped)]
    try:
        dropped.iptables("-A INPUT -p tcp --dport 22 -j DROP")
        inv = {"hosts": {
            "live": {"address": live.address, "user": "root", "key": str(key)},
            "dropped": {"address": dropped.address, "user": "root", "key": str(key), "connect_timeout": 2},
        }}
        code, r, elapsed = _scan(tmp_path, inv, [{"id": "os", "probe": "os", "hosts": ["all"],
                                                  "expect": {"family": "linux"}}])
        assert code == 3
        assert r["os@live"]["status"] == "pass"
        assert r["os@dropped"]["status"] == "error" and r["os@dropped"]["reason"] == "timeout"
        assert "no answer within 2 s" in r["os@dropped"]["message"]["en"]
        assert elapsed < 2 + 1 + 2  # connect_timeout + 1 s, plus the scan's own start-up
    finally:
        for s in servers:
            s.stop()


def test_port_proof_across_two_hosts_with_and_without_firewall_rules(netlab, tmp_path):  # noqa: F811
    need_sshd()
    need_netlab(iptables=True)
    key = keygen(tmp_path / "key")
    app, db = netlab.add_host(), netlab.add_host()
    servers = [SshServer(tmp_path / h.name, key, address=h.address, port=22, netns=h.ns).start() for h in (app, db)]
    inv = {"hosts": {"app01": {"address": app.address, "user": "root", "key": str(key)},
                     "db01": {"address": db.address, "user": "root", "key": str(key)}}}
    checks = [
        {"id": f"proof-{port}", "probe": "port_proof", "hosts": ["db01"], "from": "app01",
         "with": {"port": port, "timeout": 1}, "expect": {"state": "open"}}
        for port in (18201, 18202, 18203)
    ]
    try:
        code, r, _ = _scan(tmp_path, inv, checks)
        assert code == 0, {k: v["message"]["en"] for k, v in r.items()}
        obs = r["proof-18201@db01"]["observed"]
        assert obs["vantage"] == "app01" and obs["target"] == f"{db.address}:18201"
        assert obs["accepted_from"] == app.address  # the listener on db01 saw app01, not this machine
        db.iptables("-A INPUT -p tcp --dport 18202 -j DROP",
                    "-A INPUT -p tcp --dport 18203 -j REJECT --reject-with tcp-reset")
        code, r, elapsed = _scan(tmp_path, inv, checks)
        states = {k: v["observed"]["state"] for k, v in r.items()}
        assert states == {"proof-18201@db01": "open", "proof-18202@db01": "filtered",
                          "proof-18203@db01": "refused"}, states
        assert code == 1
        assert "DROP" in r["proof-18202@db01"]["message"]["en"] and "REJECT" in r["proof-18203@db01"]["message"]["en"]
        assert r["proof-18202@db01"]["from"] == "app01"
    finally:
        for s in servers:
            s.stop()


def test_clock_offset_over_a_50ms_link_is_unbiased(netlab, tmp_path):  # noqa: F811
    """The host shares this machine's clock (true offset 0). Over a 50 ms round trip the bracket holds one round
    trip (the channel is opened before it starts), so the estimate is not off by half a round trip."""
    from envprobe.probes.base import ProbeContext
    from envprobe.probes.timesync import measure_offset
    from envprobe.transport.ssh import SshTransport

    need_sshd()
    need_netlab(tun=True)
    key = keygen(tmp_path / "key")
    host = netlab.add_host()
    link = netlab.delayed_link(None, host, 25)
    srv = SshServer(tmp_path / "slow", key, address=link.server_address, port=22, netns=host.ns).start()
    tr = SshTransport("slow", link.server_address, user="root", key_file=str(key), known_hosts=str(tmp_path / "kh"),
                      accept_new_hostkeys=True, connect_timeout=10)
    try:
        tr.run("true")  # log in first: the login is not part of what is measured
        offset, unc = measure_offset(ProbeContext(tr, "slow", 20.0), samples=3)
        assert offset is not None and unc is not None
        assert 25 <= unc <= 60, unc  # half of one ~50 ms round trip plus the command, not of two
        assert abs(offset) <= unc
        assert abs(offset) < 15, offset  # centred: no half-round-trip bias (it was ~+27 ms before)
    finally:
        tr.close()
        srv.stop()
        link.close()
