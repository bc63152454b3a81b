"""Acceptance of the database/firewall issue: one checklist mixing every case, scanned through the CLI.

A database host (a network namespace) runs real PostgreSQL and MariaDB, an sshd, and a firewall that DROPs one
port; checks from here cover success with the exact versions, a wrong password, a missing database, a missing
privilege, a stopped server, a dropped port, a driver that is not installed, SQLite with no server, FreeTDS
against a closed port — and the firewall probe on the database host over SSH, whose answers must agree with the
connections the db checks made. Every `cause` must be right, in bounded time, with no password anywhere.
"""

from __future__ import annotations

import json
import sqlite3
import time

import yaml

from tests.conftest import cli
from tests.netlab import need_netlab, netlab  # noqa: F401 - fixture used by name
from tests.sshfix import SshServer, keygen, need_sshd
from tests.test_probes_db import MA_PW, PG_PW, READER_PW, dbhost, maria, pg  # noqa: F401 - fixtures used by name


def test_a_checklist_mixing_every_case_gets_every_cause_right(pg, maria, dbhost, tmp_path):  # noqa: F811
    need_sshd()
    need_netlab(iptables=True)
    key = keygen(tmp_path / "key")
    sshd = SshServer(tmp_path / "sshd", key, address=dbhost.address, port=22, netns=dbhost.ns).start()
    dropped_port, closed_port = 15432, 15433
    listener = dbhost.listen_tcp(dropped_port)  # something listens: only the firewall stops it
    dbhost.iptables(f"-A INPUT -p tcp --dport {dropped_port} -j DROP")
    db_file = tmp_path / "app.db"
    with sqlite3.connect(db_file) as conn:
        conn.execute("CREATE TABLE t (x int)")
    conn.close()
    common = {"server": dbhost.address, "database": "shop", "user": "app", "timeout": 3}
    pg_args = {**common, "driver": pg.driver, "port": pg.port, "password": "${env:PG_PW}"}
    ma_args = {**common, "driver": maria.driver, "port": maria.port, "password": "${env:MA_PW}"}
    pg_version = pg.cluster.binary_version()
    ma_version = maria.cluster.binary_version()
    checks = [
        {"id": "pg-ok", "probe": "db", "with": {**pg_args, "require": ["select:public.orders"]},
         "expect": {"connected": True, "product": "postgresql", "version": pg_version, "cause": None}},
        {"id": "ma-ok", "probe": "db", "with": {**ma_args, "require": ["select:shop.orders"]},
         "expect": {"connected": True, "product": "mariadb", "version": ma_version, "cause": None}},
        {"id": "pg-wrong-password", "probe": "db", "with": {**pg_args, "password": "${env:WRONG_PW}"},
         "expect": {"cause": "auth-failed", "stage": "login"}},
        {"id": "ma-wrong-password", "probe": "db", "with": {**ma_args, "password": "${env:WRONG_PW}"},
         "expect": {"cause": "auth-failed"}},
        {"id": "pg-no-database", "probe": "db", "with": {**pg_args, "database": "nosuchdb"},
         "expect": {"cause": "database-missing"}},
        {"id": "pg-no-privilege", "probe": "db",
         "with": {**pg_args, "user": "reader", "password": "${env:READER_PW}",
                  "require": ["select:public.orders", "insert:public.orders"]},
         "expect": {"cause": "permission-denied", "missing_privileges": "contains insert:public.orders"}},
        {"id": "pg-stopped", "probe": "db", "with": {**pg_args, "port": closed_port},
         "expect": {"cause": "port-refused", "stage": "tcp"}},
        {"id": "pg-dropped", "probe": "db", "with": {**pg_args, "port": dropped_port},
         "expect": {"cause": "port-filtered", "stage": "tcp"}},
        {"id": "no-driver", "probe": "db", "with": {**pg_args, "driver": "PostgreSQL Unicod"},
         "expect": {"cause": "driver-missing", "stage": "driver"}},
        {"id": "sqlite", "probe": "db", "with": {"driver": "SQLite3", "database": str(db_file)},
         "expect": {"connected": True, "product": "sqlite"}},
        {"id": "freetds-closed", "probe": "db",
         "with": {"driver": "FreeTDS", "server": dbhost.address, "port": closed_port, "user": "sa",
                  "password": "${env:WRONG_PW}", "timeout": 3},
         "expect": {"cause": "port-refused"}},
        # the firewall on the database host agrees with what the connections above met
        {"id": "fw-pg", "probe": "firewall", "hosts": ["db"], "with": {"port": pg.port},
         "expect": {"allowed": True}},
        {"id": "fw-dropped", "probe": "firewall", "hosts": ["db"], "with": {"port": dropped_port},
         "expect": {"allowed": False, "action": "drop"}},
    ]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"version": 1, "checks": checks}))
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump({"hosts": {"db": {"address": dbhost.address, "user": "root",
                                                                        "key": str(key)}}}))
    outs = {k: tmp_path / f"r.{k}" for k in ("json", "xml", "html")}
    environ = {"PG_PW": PG_PW, "MA_PW": MA_PW, "READER_PW": READER_PW, "WRONG_PW": "Not-The-Pw-42"}
    t0 = time.perf_counter()
    try:
        res = cli("scan", str(tmp_path / "c.yaml"), "-i", str(tmp_path / "inv.yaml"), "--known-hosts",
                  str(tmp_path / "kh"), "--accept-new-hostkeys", "--json", str(outs["json"]), "--junit",
                  str(outs["xml"]), "--html", str(outs["html"]), "--lang", "en", environ=environ)
    finally:
        elapsed = time.perf_counter() - t0
        dbhost.exec(["iptables", "-w", "-F", "INPUT"])
        listener.stop()
        sshd.stop()
    data = json.loads(outs["json"].read_text())
    failed = {r["check"]: (r["status"], r["message"]["en"]) for r in data["results"] if r["status"] != "pass"}
    assert failed == {}, failed
    assert res.code == 0
    # bounded: checks run in parallel and each gives up within its 3 s timeout (+1 s guard)
    assert elapsed < 12, elapsed
    for text in [res.out, res.err] + [p.read_text(encoding="utf-8") for p in outs.values()]:
        for secret in environ.values():
            assert secret not in text
