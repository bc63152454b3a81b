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
