"""The db and odbc probes: pure parts on recorded inputs, and real logins through ODBC.

Real parts: a PostgreSQL 15 cluster and a MariaDB server, each started once for the module as its own non-root
account inside a netlab namespace host ("db", reached over the lab's bridge), so iptables rules in that host can
DROP or admit traffic; SQLite files; FreeTDS against a closed, a DROPped and a silent port; a real sshd in
another namespace host ("app") for ``from:`` and for the odbc probe's shell path. Nothing resolves a name through
the system resolver: every server is given by IP address.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from envprobe.probes.base import ProbeContext
from envprobe.probes.db import (
    DbFacts,
    DbParams,
    DbProbe,
    Hung,
    Target,
    build_connection_string,
    classify_connect_error,
    classify_query_error,
    detect_product,
    driver_family,
    guarded,
    mssql_privilege_query,
    mysql_has,
    normalise_version,
    parse_connection_string,
    parse_grants,
    parse_privilege,
    parse_pyodbc_error,
    pg_privilege_query,
    quote_value,
    split_server,
    target_from_string,
)
from envprobe.probes.odbc import C_USER_DSNS, F_ODBC, F_ODBCINST, Q_DRIVERS, Q_DSNS, OdbcParams, OdbcProbe, sections
from envprobe.schema import ValidationError
from envprobe.transport.base import CommandResult
from envprobe.transport.local import LocalTransport
from tests.conftest import ROOT, cli, need
from tests.dbfix import MariaServer, PgCluster, Tarpit, free_port, have_mariadb, have_postgres
from tests.netlab import need_netlab, netlab  # noqa: F401 - netlab is a fixture
from tests.sshfix import SshServer, keygen, need_sshd

FIX = ROOT / "tests" / "fixtures" / "db"
PG_PW = "App;pw}1 x{="  # braces, ';', '=' and a space: the connection string must quote it
MA_PW = "App;pw}1 x{="
READER_PW = "Reader-pw-7"

try:
    import pyodbc
except ImportError:  # pragma: no cover - pyodbc is a dependency
    pyodbc = None


def _drivers() -> list[str]:
    return list(pyodbc.drivers()) if pyodbc else []


def need_driver(name: str) -> None:
    need(pyodbc is not None and name in _drivers(), f"needs the ODBC driver {name!r} (odbcinst -q -d)")


def ctx(timeout: float = 10, transport: Any = None) -> ProbeContext:
    return ProbeContext(transport or LocalTransport(), "local", timeout, host_transport=LocalTransport())


def probe(context: ProbeContext | None = None, **kw: Any) -> tuple[DbFacts, str, str, float]:
    """Run the db probe; returns facts, the English and Chinese messages and the elapsed seconds."""
    p = DbProbe()
    params = DbParams(**kw)
    t0 = time.perf_counter()
    facts = p.collect(context or ctx(), params)
    elapsed = time.perf_counter() - t0
    note = p.note(params, facts)
    assert note is not None
    return facts, note["en"], note["zh-CN"], elapsed


def no_secret(secret: str, facts: DbFacts, *texts: str) -> None:
    blob = json.dumps(facts.model_dump(mode="json"), ensure_ascii=False) + "".join(texts)
    assert secret not in blob


# ===========================================================================================================
# pure parts: connection strings
# ===========================================================================================================
@pytest.mark.parametrize("value, quoted", [
    ("plain", "plain"),
    ("p;w", "{p;w}"),
    ("a}b", "{a}}b}"),
    ("{x}", "{{x}}}"),
    (" lead", "{ lead}"),
    ("", "{}"),
    ("a=b", "{a=b}"),
])
def test_quote_value(value, quoted):
    assert quote_value(value) == quoted


@given(st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z_]{0,10}", fullmatch=True),
                          st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)),
                min_size=1, max_size=6))
def test_connection_string_round_trip(pairs):
    text = ";".join(f"{k}={quote_value(v)}" for k, v in pairs) + ";"
    parsed = parse_connection_string(text)
    assert [k for k, _ in parsed] == [k for k, _ in pairs]
    # unbraced values are stripped (as drivers do); quote_value braces any value with edge spaces
    assert [v for _, v in parsed] == [v for _, v in pairs]


@pytest.mark.parametrize("text, problem", [
    ("DRIVER={x};PWD={secret-value", "never closes"),
    ("DRIVER={x};PWD={se}cret}", "after its closing"),
    ("justtext", "has no '='"),
    ("=x", "empty name"),
])
def test_connection_string_errors_never_quote_the_string(text, problem):
    with pytest.raises(ValueError, match=problem) as info:
        parse_connection_string(text)
    assert "secret" not in str(info.value) and "se}cret" not in str(info.value)


@pytest.mark.parametrize("value, expected", [
    ("tcp:10.0.0.5,1433", ("10.0.0.5", 1433, None)),
    ("10.0.0.5\\MES", ("10.0.0.5", None, "MES")),
    ("db01,14330", ("db01", 14330, None)),
    ("[fe80::1],1433", ("fe80::1", 1433, None)),
    ("(local)", ("127.0.0.1", None, None)),
])
def test_split_server(value, expected):
    assert split_server(value) == expected


@pytest.mark.parametrize("driver, family", [
    ("ODBC Driver 18 for SQL Server", "sqlserver"), ("SQL Server Native Client 11.0", "sqlserver"),
    ("FreeTDS", "freetds"), ("PostgreSQL Unicode", "postgresql"), ("MariaDB Unicode", "mariadb"),
    ("MySQL ODBC 8.0 Unicode Driver", "mysql"), ("SQLite3", "sqlite"), ("Oracle in OraClient19Home1", "oracle"),
    ("DM8 ODBC DRIVER", "dm"), ("KingbaseES ODBC", "kingbase"), ("Acme DB", "other"),
])
def test_driver_family(driver, family):
    assert driver_family(driver) == family


def test_connection_strings_per_family():
    pg = Target(driver="PostgreSQL Unicode", family="postgresql", host="10.0.0.5", port=5432, database="mes",
                user="app", password=PG_PW)
    s = build_connection_string(pg, 5)
    assert s == "DRIVER={PostgreSQL Unicode};SERVER=10.0.0.5;PORT=5432;DATABASE=mes;UID=app;PWD={App;pw}}1 x{=};"
    assert dict((k.upper(), v) for k, v in parse_connection_string(s))["PWD"] == PG_PW
    # through a tunnel: the local end replaces the server's address
    assert "SERVER=127.0.0.1;PORT=40001;" in build_connection_string(pg, 5, via=("127.0.0.1", 40001))
    ma = Target(driver="MariaDB Unicode", family="mariadb", host="10.0.0.6", user="app")
    s = build_connection_string(ma, 3)
    assert "CONN_TIMEOUT=3;" in s and "READ_TIMEOUT=3;" in s and "WRITE_TIMEOUT=3;" in s
    ma.extra = [("CONN_TIMEOUT", "9")]
    assert build_connection_string(ma, 3).count("CONN_TIMEOUT") == 1
    ms = Target(driver="ODBC Driver 18 for SQL Server", family="sqlserver", host="db01", port=1433)
    assert "SERVER=tcp:db01,1433;" in build_connection_string(ms, 5)
    named = Target(driver="ODBC Driver 18 for SQL Server", family="sqlserver", host="db01", instance="MES")
    assert named.effective_port is None and "SERVER=db01\\MES;" in build_connection_string(named, 5)
    assert "SERVER=tcp:127.0.0.1,40002;" in build_connection_string(named, 5, via=("127.0.0.1", 40002))
    tds = Target(driver="FreeTDS", family="freetds", host="db01", port=1433)
    assert "SERVER=db01;PORT=1433;" in build_connection_string(tds, 5)
    lite = Target(driver="SQLite3", family="sqlite", database="/tmp/a b.db")
    assert build_connection_string(lite, 5) == "DRIVER={SQLite3};DATABASE=/tmp/a b.db;NoCreat=1;"  # no braces
    lite.database = "/tmp/a;b.db"
    with pytest.raises(ValueError, match="cannot take a DATABASE value that contains ';'"):
        build_connection_string(lite, 5)
    ora = Target(driver="Oracle in OraClient19Home1", family="oracle", host="10.0.0.7", database="ORCLPDB1")
    assert "DBQ=//10.0.0.7:1521/ORCLPDB1;" in build_connection_string(ora, 5)
    dm = Target(driver="DM8 ODBC DRIVER", family="dm", host="10.0.0.8", port=5236)
    assert "SERVER=10.0.0.8;TCP_PORT=5236;" in build_connection_string(dm, 5)


def test_target_from_connection_string():
    tg = target_from_string("Driver={ODBC Driver 18 for SQL Server};Server=tcp:10.1.1.5,14330;Database=MES;"
                            "UID=mes;PWD={p;w};Encrypt=yes")
    assert (tg.family, tg.host, tg.port, tg.database, tg.user, tg.password) == \
        ("sqlserver", "10.1.1.5", 14330, "MES", "mes", "p;w")
    assert tg.extra == [("Encrypt", "yes")]
    assert "p;w" not in repr(tg)
    tg = target_from_string("DSN=mes_report;UID=r", dsn_driver=lambda name: "PostgreSQL Unicode")
    assert tg.dsn == "mes_report" and tg.family == "postgresql"
    tg = target_from_string("DRIVER={Oracle in instantclient_19};DBQ=//10.0.0.7:1522/ORCL;UID=x")
    assert (tg.host, tg.port, tg.database) == ("10.0.0.7", 1522, "ORCL")


# ===========================================================================================================
# pure parts: parameters and the privilege grammar
# ===========================================================================================================
@pytest.mark.parametrize("entry, action, schema, name", [
    ("select:public.orders", "select", "public", "orders"),
    ("INSERT:dbo.event_log", "insert", "dbo", "event_log"),
    ("update:orders", "update", None, "orders"),
    ("delete:sales.*", "delete", "sales", "*"),
    ('select:"my-db"."Order ""Lines"""', "select", "my-db", 'Order "Lines"'),
    ("select:生产.工单", "select", "生产", "工单"),
    ("create_table:public", "create_table", None, "public"),
    ("connect:mes", "connect", None, "mes"),
])
def test_privilege_grammar(entry, action, schema, name):
    p = parse_privilege(entry)
    assert (p.action, p.schema, p.name) == (action, schema, name)


@pytest.mark.parametrize("entry, words", [
    ("slect:public.orders", "unknown action 'slect'"),
    ("public.orders", "not ACTION:OBJECT"),
    ("select:a.b.c", "the object is not"),
    ("select:*", "needs a schema"),
    ("create_table:public.orders", "takes a schema"),
    ("connect:*", "takes a database"),
    ("select:1abc", "the object is not"),
])
def test_privilege_grammar_refuses(entry, words):
    with pytest.raises(ValueError, match=words):
        parse_privilege(entry)


def test_params_rules_and_repr():
    with pytest.raises(ValidationError, match="exactly one of driver, dsn or connection_string"):
        DbParams(server="x")
    with pytest.raises(ValidationError, match="exactly one"):
        DbParams(driver="FreeTDS", dsn="x", server="x")
    with pytest.raises(ValidationError, match="give server"):
        DbParams(driver="PostgreSQL Unicode")
    with pytest.raises(ValidationError, match="SQLite needs database"):
        DbParams(driver="SQLite3")
    with pytest.raises(ValidationError, match="names no DRIVER"):
        DbParams(connection_string="SERVER=x;UID=y")
    with pytest.raises(ValidationError, match=r"require\.1\n  Value error, 'slect:x': unknown action"):
        DbParams(driver="SQLite3", database="/x", require=["select:t", "slect:x"])
    with pytest.raises(ValidationError, match="own parameter"):
        DbParams(driver="SQLite3", database="/x", options={"PWD": "x"})
    p = DbParams(driver="PostgreSQL Unicode", server="h", password="Sekr3t-pw", timeout="1500ms")
    assert p.timeout == 1.5 and "Sekr3t-pw" not in repr(p)
    p = DbParams(connection_string="DRIVER={FreeTDS};SERVER=h;PWD=Sekr3t-pw")
    assert "Sekr3t-pw" not in repr(p)


def test_bad_require_entry_is_a_file_line_error_at_load_time(tmp_path):
    cl = tmp_path / "c.yaml"
    cl.write_text("version: 1\nchecks:\n  - id: db\n    probe: db\n    with:\n      driver: SQLite3\n"
                  "      database: /tmp/x.db\n      require:\n        - select:main.orders\n"
                  "        - slect:main.orders\n    expect: {connected: true}\n"
                  "  - id: db2\n    probe: db\n    with: {connection_string: 'UID=a;PWD=Very-Secret-9'}\n",
                  encoding="utf-8")
    res = cli("validate", str(cl))
    assert res.code == 2
    assert f"{cl}:10:" in res.err and "checks[0].with.require[1]" in res.err  # the bad entry's own line
    assert "'slect:main.orders': unknown action 'slect'" in res.err
    assert f"{cl}:9:" not in res.err  # the good entry is not blamed
    assert "checks[1].with.connection_string" in res.err and "names no DRIVER" in res.err
    assert "Very-Secret-9" not in res.err


# ===========================================================================================================
# pure parts: errors, products, versions, grants
# ===========================================================================================================
ERRORS = json.loads((FIX / "errors.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", ERRORS["connect"], ids=lambda c: f"{c['origin']}-{c['family']}-{c['cause']}")
def test_connect_errors_are_classified(case):
    err = parse_pyodbc_error(tuple(case["args"]))
    assert classify_connect_error(err, case["family"], case.get("elapsed"), case.get("timeout")) == \
        (case["cause"], case["stage"])
    assert err.text and "(SQLDriverConnect)" not in err.text and not err.text.startswith("[")


@pytest.mark.parametrize("case", ERRORS["query"], ids=lambda c: c["cause"])
def test_query_errors_are_classified(case):
    assert classify_query_error(parse_pyodbc_error(tuple(case["args"]))) == case["cause"]


def test_error_records_natives_and_scrubbing():
    err = parse_pyodbc_error(("28000", "[28000] [ma-3.1.15]Access denied for user 'app' using PWD=Sekr3t (1045) "
                                       "(SQLDriverConnect)"), secrets=("Sekr3t",))
    assert (err.sqlstate, err.native) == ("28000", 1045)
    assert "Sekr3t" not in err.text and "******" in err.text
    two = parse_pyodbc_error(tuple(next(c["args"] for c in ERRORS["connect"] if "(4060)" in c["args"][1])))
    assert [r[1] for r in two.records] == [4060, 18456]


@pytest.mark.parametrize("dbms, banner, product", [
    ("PostgreSQL", "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu", "postgresql"),
    ("MariaDB", "10.11.19-MariaDB-0+deb12u1", "mariadb"),
    ("MySQL", "10.6.16-MariaDB", "mariadb"),
    ("MySQL", "8.0.36", "mysql"),
    ("MySQL", "8.0.11-TiDB-v7.5.0", "other"),
    ("Microsoft SQL Server", "", "sqlserver"),
    ("SQLite", "", "sqlite"),
    ("Oracle", "", "oracle"),
    ("DM", "", "dm"),
    ("KingbaseES", "", "kingbase"),
    ("PostgreSQL", "KingbaseES V008R006C008B0014 on x86_64", "kingbase"),
    ("PostgreSQL", "openGauss 5.0.1 build 33b035fd", "other"),
])
def test_detect_product(dbms, banner, product):
    assert detect_product(dbms, banner) == product


@pytest.mark.parametrize("product, raw, version, edition", [
    ("postgresql", "15.18 (Debian 15.18-0+deb12u1)", "15.18", None),
    ("mariadb", "10.11.19-MariaDB-0+deb12u1", "10.11.19", None),
    ("mariadb", "5.5.5-10.6.16-MariaDB-log", "10.6.16", None),
    ("mysql", "8.0.11-TiDB-v7.5.0", "7.5.0", "TiDB"),
    ("sqlserver", "16.0.1000.6", "16.0.1000.6", None),
    ("sqlite", "3.40.1", "3.40.1", None),
    ("oracle", "Oracle Database 19c Enterprise Edition Release 19.0.0.0.0 - Production", "19.0.0.0.0",
     "Enterprise Edition"),
    ("dm", "DM Database Server 64 V8.1.2.84-Build(2021.10.22-149436)ENT", "8.1.2.84", None),
    ("kingbase", "KingbaseES V008R006C008B0014 on x86_64-pc-linux-gnu", "8.6.8.14", None),
])
def test_normalise_version(product, raw, version, edition):
    assert normalise_version(product, raw) == (version, edition)


def test_mysql_grants_parser_and_checks():
    grants = parse_grants((FIX / "mysql8-show-grants.txt").read_text().splitlines())
    assert all("PROXY" not in g.privileges for g in grants)  # role, proxy and routine lines are skipped
    has = {e: mysql_has(grants, parse_privilege(e), "mes") for e in (
        "select:mes.orders", "delete:orders", "create_table:mes", "connect:mes", "connect:report",
        'select:report."daily totals"', "select:report.other", "update:mes.audit", "select:mes.*",
        "insert:report.*", "connect:hr")}
    assert has == {"select:mes.orders": 1, "delete:orders": 1, "create_table:mes": 1, "connect:mes": 1,
                   "connect:report": 1, 'select:report."daily totals"': 1, "select:report.other": 0,
                   "update:mes.audit": 1, "select:mes.*": 1, "insert:report.*": 0, "connect:hr": 0}
    audit = [g for g in grants if g.table == "audit"]
    assert audit and audit[0].columns == {"SELECT", "UPDATE"} and not audit[0].privileges  # column rights only
    recorded = parse_grants((FIX / "mariadb-10.11-show-grants.txt").read_text().splitlines())
    checks = {e: mysql_has(recorded, parse_privilege(e), None) for e in (
        "select:sales_2024.t", "select:salesX2024.t", "insert:shop.orders", "update:shop.orders", "select:t")}
    # `sales\_%`: the escaped _ is literal, % a wildcard; UPDATE (`id`) is a column grant; no current database
    assert checks == {"select:sales_2024.t": 1, "select:salesX2024.t": 0, "insert:shop.orders": 1,
                      "update:shop.orders": 0, "select:t": -1}
    root = parse_grants((FIX / "mariadb-root-show-grants.txt").read_text().splitlines())
    assert mysql_has(root, parse_privilege("create_table:anything"), None) == 1
    assert "invalid" not in repr(root) and "password" not in repr(recorded).lower()


def test_privilege_sql_uses_parameters_and_quoted_identifiers():
    sql, args = pg_privilege_query(parse_privilege('insert:"Sales"."Orders"'))
    assert "?" in sql and args == ['"Sales"."Orders"', '"Sales"."Orders"', "INSERT"]
    sql, args = mssql_privilege_query(parse_privilege('select:dbo."event]log"'))
    assert "HAS_PERMS_BY_NAME(?, 'OBJECT', ?)" in sql and args == ["[dbo].[event]]log]", "SELECT"]
    sql, args = mssql_privilege_query(parse_privilege("create_table:dbo"))
    assert "CREATE TABLE" in sql and args == ["dbo", "[dbo]"]


def test_guarded_gives_up_and_cleans_up_late_results():
    assert guarded(lambda: 42, 1.0, "t-ok") == 42
    with pytest.raises(ZeroDivisionError):
        guarded(lambda: 1 / 0, 1.0, "t-err")
    closed = threading.Event()
    t0 = time.perf_counter()
    with pytest.raises(Hung):
        guarded(lambda: time.sleep(0.4) or "conn", 0.1, "t-hung", on_late=lambda r: closed.set())
    assert time.perf_counter() - t0 < 0.3
    assert closed.wait(2)


# ===========================================================================================================
# odbc probe: pure parts and this machine
# ===========================================================================================================
def _res(text: str = "", rc: int = 0, err: str = "") -> CommandResult:
    return CommandResult(rc, text, err, 1.0)


def _fx(name: str) -> str:
    return (FIX / name).read_text(encoding="utf-8")


def test_odbc_parse_recorded_outputs():
    p = OdbcProbe()
    data = {Q_DRIVERS: _res(_fx("rocky9-odbcinst-q-d.txt")), Q_DSNS: _res(_fx("rocky9-odbcinst-q-s.txt")),
            F_ODBCINST: _res(_fx("rocky9-odbcinst.ini")), F_ODBC: _res(_fx("rocky9-odbc.ini")),
            C_USER_DSNS: _res("", 1, "No such file")}
    f = p.parse(OdbcParams(driver="odbc driver 18 for sql server", dsn="MES"), data)
    assert f.drivers == ["PostgreSQL", "MySQL", "ODBC Driver 18 for SQL Server", "MariaDB"]
    assert f.dsns == ["mes", "mes_report"]  # [ODBC] is no data source
    assert (f.installed, f.matched, f.dsn_defined, f.source) == (True, ["ODBC Driver 18 for SQL Server"], True,
                                                                 "odbcinst")
    # no DSN defined: odbcinst -q -s exits 1 with "SQLGetPrivateProfileString failed"
    data[Q_DRIVERS] = _res(_fx("debian12-odbcinst-q-d.txt"))
    data[Q_DSNS] = _res(_fx("debian12-odbcinst-q-s-none.txt"), 1)
    f = p.parse(OdbcParams(driver="ODBC Driver * for SQL Server"), data)
    assert f.dsns == [] and f.installed is False and f.matched == []
    assert f.drivers == sections(_fx("debian12-odbcinst.ini"))
    data[Q_DRIVERS] = _res(_fx("ubuntu2204-odbcinst-q-d.txt"))
    f = p.parse(OdbcParams(driver="ODBC Driver * for SQL Server"), data)
    assert f.matched == ["ODBC Driver 17 for SQL Server", "ODBC Driver 18 for SQL Server"]


def test_odbc_without_odbcinst_reads_the_ini_files():
    p = OdbcProbe()
    missing = _res("", 127, _fx("kylin-v10-odbcinst-missing.txt"))
    data = {Q_DRIVERS: missing, Q_DSNS: missing, F_ODBCINST: _res(_fx("kylin-v10-odbcinst.ini")),
            F_ODBC: _res(_fx("kylin-v10-odbc.ini")), C_USER_DSNS: _res(_fx("uos20-user-odbc.ini"))}
    f = p.parse(OdbcParams(driver="DM8 ODBC DRIVER", dsn="dm_mes"), data)
    assert f.source == "ini-files" and f.drivers == ["DM8 ODBC DRIVER", "KingbaseES ODBC"]
    assert f.dsns == ["kingbase_mes", "dm_mes"] and f.installed and f.dsn_defined
    note = p.note(OdbcParams(driver="DM8 ODBC DRIVER", dsn="dm_mes"), f)
    assert note and "odbcinst is not installed" in note["en"] and "未安装 odbcinst" in note["zh-CN"]
    # odbcinst present but failing for another reason: an error that says so, not an empty list
    data[Q_DRIVERS] = _res(_fx("debian12-odbcinst-q-d.txt"))
    data[Q_DSNS] = _res("", 2, "odbcinst: unexpected failure")
    with pytest.raises(Exception, match="odbcinst -q -s failed"):
        p.parse(OdbcParams(), data)


def test_odbc_native_and_shell_path_agree_on_this_machine():
    need(pyodbc is not None and shutil.which("odbcinst") is not None, "needs pyodbc and unixODBC's odbcinst")
    p = OdbcProbe()
    params = OdbcParams(driver="PostgreSQL Unicode")
    native = p.collect(ProbeContext(LocalTransport(), "local", 10), params)
    shell = p.collect(ProbeContext(LocalTransport(), "local", 10, prefer_native=False), params)
    assert native.source == "pyodbc" and shell.source == "odbcinst"
    assert native.drivers == shell.drivers == _drivers()
    assert sorted(native.dsns) == sorted(shell.dsns)
    assert native.installed is True
    # the fallback on this machine's real files gives the same drivers as the driver manager
    data = LocalTransport().fetch(p.sources(params))
    data[Q_DRIVERS] = _res("", 127, "sh: 1: odbcinst: not found")
    fallback = p.parse(params, data)
    assert fallback.source == "ini-files" and fallback.drivers == _drivers()


# ===========================================================================================================
# real servers
# ===========================================================================================================
@pytest.fixture(scope="module")
def dbhost(netlab):  # noqa: F811
    need_netlab(iptables=True)
    return netlab.add_host("db")


def _firewall_reset(host: Any) -> None:
    host.exec(["iptables", "-w", "-F", "INPUT"])


@contextlib.contextmanager
def firewall(host: Any, *rules: str):
    host.iptables(*rules)
    try:
        yield
    finally:
        _firewall_reset(host)


@pytest.fixture(scope="module")
def pg(dbhost):
    need(have_postgres(), "needs PostgreSQL server binaries, the postgres account and psql")
    need_driver("PostgreSQL Unicode")
    cluster = PgCluster(port=5432, address=dbhost.address, netns=dbhost.ns)
    try:
        cluster.start()
        for stmt in (f"CREATE ROLE app LOGIN PASSWORD '{PG_PW}'", "CREATE DATABASE shop OWNER app",
                     f"CREATE ROLE reader LOGIN PASSWORD '{READER_PW}'"):
            cluster.sql(stmt)
        cluster.sql("CREATE TABLE public.orders (id int); GRANT SELECT, INSERT ON public.orders TO app; "
                    "GRANT SELECT ON public.orders TO reader", database="shop")
        yield SimpleNamespace(cluster=cluster, driver="PostgreSQL Unicode", server=dbhost.address, port=5432,
                              product="postgresql", schema="public", host=dbhost, bad_driver="PostgreSQL Unicod")
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def maria(dbhost):
    need(have_mariadb(), "needs MariaDB server binaries, the mysql account and the mariadb client")
    need_driver("MariaDB Unicode")
    server = MariaServer(port=3306, address=dbhost.address, netns=dbhost.ns)
    try:
        server.start()
        server.sql(f"CREATE USER 'app'@'%' IDENTIFIED BY '{MA_PW}'; CREATE DATABASE shop; "
                   "CREATE TABLE shop.orders (id int); GRANT ALL ON `shop`.* TO 'app'@'%'; "
                   "GRANT ALL ON `shop\\_%`.* TO 'app'@'%'; "
                   f"CREATE USER 'reader'@'%' IDENTIFIED BY '{READER_PW}'; "
                   "GRANT SELECT ON shop.orders TO 'reader'@'%'")
        yield SimpleNamespace(cluster=server, driver="MariaDB Unicode", server=dbhost.address, port=3306,
                              product="mariadb", schema="shop", host=dbhost, bad_driver="MariaDB ODBC 3.1 Driver")
    finally:
        server.close()


@pytest.fixture(params=["pg", "maria"])
def engine(request):
    return request.getfixturevalue(request.param)


def _wait_for(cond: Any, limit: float = 3.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def login(e: Any, context: ProbeContext | None = None, **kw: Any) -> tuple[DbFacts, str, str, float]:
    args: dict[str, Any] = dict(driver=e.driver, server=e.server, port=e.port, database="shop", user="app",
                                password=PG_PW if e.product == "postgresql" else MA_PW, timeout=3)
    args.update(kw)
    return probe(context, **args)


def test_login_succeeds_with_the_exact_server_version(engine):
    s = engine.schema
    f, en, zh, _ = login(engine, require=[f"select:{s}.orders", f"insert:{s}.orders", "connect:shop",
                                          f"create_table:{s}" if engine.product == "postgresql" else "create_table:shop"],
                         samples=5)
    assert (f.connected, f.stage, f.cause, f.product) == (True, "done", None, engine.product), en
    assert f.version == engine.cluster.binary_version()
    assert f.version in f.version_string and f.missing_privileges == []
    assert f.connect_ms is not None and f.connect_ms > 0 and f.query_ms is not None and f.query_ms > 0
    assert f.address == engine.server and f.vantage == "local" and f.driver == engine.driver
    if engine.product == "mariadb":
        assert f.edition == engine.cluster.sql("SELECT @@version_comment")
    assert f"{engine.server}:{engine.port}" in en and "as user app" in en and "median of 5" in en
    assert "中位数" in zh
    no_secret(PG_PW, f, en, zh)


def test_wrong_password_is_auth_failed(engine):
    f, en, zh, _ = login(engine, password="Wrong-pw-4711")
    assert (f.connected, f.stage, f.cause) == (False, "login", "auth-failed"), en
    assert "rejected user app" in en and "拒绝了用户 app" in zh and "account" in en
    no_secret("Wrong-pw-4711", f, en, zh)


def test_missing_database(engine):
    f, en, _, _ = login(engine, database="shop_missing")
    assert (f.connected, f.stage, f.cause) == (False, "database", "database-missing"), en
    assert "shop_missing" in en
    if engine.product == "mariadb":
        # a user without rights on the name: MariaDB answers 1044 whether or not the database exists
        f, en, _, _ = login(engine, database="nowhere", user="reader", password=READER_PW)
        assert (f.stage, f.cause, f.native_error) == ("database", "permission-denied", 1044), en
        assert "does not exist" in en


def test_missing_privilege_is_listed(engine):
    s = engine.schema
    create = f"create_table:{s}" if engine.product == "postgresql" else "create_table:shop"
    f, en, zh, _ = login(engine, user="reader", password=READER_PW,
                         require=[f"select:{s}.orders", f"insert:{s}.orders", create, f"select:{s}.no_such_table"])
    assert (f.connected, f.stage, f.cause) == (True, "privileges", "permission-denied"), en
    assert f.missing_privileges == [f"insert:{s}.orders", create, f"select:{s}.no_such_table"]
    assert f.version is None  # the walk stopped before the version stage
    assert f"reader lacks insert:{s}.orders" in en and "GRANT" in en and "缺少权限" in zh


def test_server_stopped_is_port_refused(engine):
    engine.cluster.stop()
    try:
        f, en, zh, _ = login(engine)
        assert (f.connected, f.stage, f.cause) == (False, "tcp", "port-refused"), en
        assert "refused" in en and "firewall" in en and "被拒绝" in zh
        # the next things to check, in the documents' order: firewall, then port, then the logs
        assert en.index("firewall") < en.index("listening") < en.index("server's log")
    finally:
        engine.cluster.start()


def test_dropped_port_is_filtered_within_timeout(engine):
    with firewall(engine.host, f"-A INPUT -p tcp --dport {engine.port} -j DROP"):
        f, en, _, elapsed = login(engine, timeout=1.5)
    assert (f.connected, f.stage, f.cause) == (False, "tcp", "port-filtered"), en
    assert elapsed <= 1.5 + 1
    assert "no answer" in en and "DROP" in en


def test_driver_not_installed_lists_the_installed_ones(engine):
    f, en, zh, _ = login(engine, driver=engine.bad_driver)
    assert (f.connected, f.stage, f.cause) == (False, "driver", "driver-missing"), en
    assert f.installed_drivers == _drivers()
    for name in _drivers():
        assert f"'{name}'" in en and f"'{name}'" in zh


@pytest.mark.parametrize("driver, native", [("PostgreSQL Unicode", 101), ("MariaDB Unicode", 2013),
                                            ("FreeTDS", None)])
def test_silent_server_is_a_login_timeout_within_timeout(driver, native):
    """A server that accepts and never speaks. psqlODBC and MariaDB (given CONN_TIMEOUT) give up by themselves
    and say so (their native error is recorded); FreeTDS retries with another protocol version and is cut off by
    the probe's guard. Either way the answer comes within timeout + 1 s."""
    need_driver(driver)
    pit = Tarpit()
    try:
        f, en, _, elapsed = probe(driver=driver, server="127.0.0.1", port=pit.port, user="app",
                                  password="x-pw-123", timeout=2)
    finally:
        pit.close()
    assert (f.connected, f.stage, f.cause) == (False, "login", "timeout"), en
    assert elapsed <= 2 + 1
    assert "stayed silent" in en
    if native is not None:
        assert f.native_error == native, en


def test_connection_string_and_dsn(maria, pg, tmp_path, monkeypatch):
    cs = (f"DRIVER={{MariaDB Unicode}};SERVER={maria.server};PORT={maria.port};DATABASE=shop;UID=app;"
          f"PWD={quote_value(MA_PW)};")
    f, en, zh, _ = probe(connection_string=cs, timeout=3)
    assert (f.connected, f.stage, f.product) == (True, "done", "mariadb"), en
    assert (f.server, f.port, f.user, f.database) == (maria.server, 3306, "app", "shop")
    no_secret(MA_PW, f, en, zh)
    no_secret(cs, f, en, zh)
    ini = tmp_path / "odbc.ini"
    ini.write_text(f"[shop_pg]\nDriver = PostgreSQL Unicode\nServername = {pg.server}\nPort = {pg.port}\n"
                   "Database = shop\n", encoding="utf-8")
    monkeypatch.setenv("ODBCINI", str(ini))
    f, en, _, _ = probe(dsn="shop_pg", user="app", password=PG_PW, timeout=3)
    assert (f.connected, f.stage, f.product, f.dsn) == (True, "done", "postgresql", "shop_pg"), en
    assert (f.server, f.port, f.driver) == (pg.server, 5432, "PostgreSQL Unicode")  # read from the DSN
    f, en, _, _ = probe(dsn="no_such_dsn", timeout=3)
    assert (f.stage, f.cause) == ("driver", "driver-missing") and "'shop_pg'" in en and "odbcinst -q -s" in en


def test_login_through_a_vantage_host_tunnel(netlab, pg):  # noqa: F811
    """In process: the vantage is a namespace host's transport (a stand-in for SSH); only it may reach the DB."""
    app = netlab.hosts.get("app") or netlab.add_host("app")
    rules = [f"-A INPUT -p tcp --dport {pg.port} -s {app.address} -j ACCEPT",
             f"-A INPUT -p tcp --dport {pg.port} -j DROP"]
    before = {t.name for t in threading.enumerate()}
    with firewall(pg.host, *rules):
        via, en, zh, _ = login(pg, ctx(transport=app.transport()), require=["connect:shop"])
        direct, den, _, elapsed = login(pg, timeout=1)
        seen = _wait_for(lambda: pg.cluster.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE client_addr IS NOT NULL") == "0")
    assert (via.connected, via.stage, via.vantage) == (True, "done", app.name), en
    assert f"from {app.name} (through an SSH tunnel)" in en and "经 SSH 隧道" in zh
    assert (direct.cause, direct.stage) == ("port-filtered", "tcp") and elapsed <= 2, den
    assert seen  # every tunnelled connection was closed
    assert _wait_for(lambda: not [t for t in threading.enumerate()
                                  if t.name.startswith("db-tunnel") and t.name not in before])


def test_named_instance_without_port_cannot_be_checked_from_a_vantage_host(netlab):  # noqa: F811
    need_driver("FreeTDS")
    app = netlab.hosts.get("app") or netlab.add_host("app")
    with pytest.raises(Exception, match="UDP request to port 1434") as info:
        probe(ctx(transport=app.transport()), driver="FreeTDS", server="10.255.0.1", instance="MES", user="sa",
              password="x-pw-123")
    assert "port" in info.value.hint["en"]  # type: ignore[attr-defined]


def test_sqlite_file_cannot_be_checked_from_another_host(netlab, tmp_path):  # noqa: F811
    need_driver("SQLite3")
    app = netlab.hosts.get("app") or netlab.add_host("app")
    with pytest.raises(Exception, match="cannot be checked on or from") as info:
        probe(ctx(transport=app.transport()), driver="SQLite3", database=str(tmp_path / "x.db"))
    assert "hosts: [local]" in info.value.hint["en"]  # type: ignore[attr-defined]


# -- FreeTDS ------------------------------------------------------------------------------------------------
def test_freetds_closed_and_dropped_ports(dbhost):
    need_driver("FreeTDS")
    closed = free_port()
    f, en, _, _ = probe(driver="FreeTDS", server="127.0.0.1", port=closed, user="sa", password="x-pw-123",
                        timeout=2)
    assert (f.stage, f.cause) == ("tcp", "port-refused"), en
    with firewall(dbhost, "-A INPUT -p tcp --dport 1433 -j DROP"):
        f, en, _, elapsed = probe(driver="FreeTDS", server=dbhost.address, port=1433, user="sa",
                                  password="x-pw-123", timeout=1.5)
    assert (f.stage, f.cause) == ("tcp", "port-filtered"), en
    assert elapsed <= 1.5 + 1


# -- SQLite -------------------------------------------------------------------------------------------------
def _sqlite_version() -> str:
    out = subprocess.run(["sqlite3", "--version"], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def test_sqlite_through_odbc(tmp_path):
    need_driver("SQLite3")
    need(shutil.which("sqlite3") is not None, "needs the sqlite3 command (to read the library's version)")
    (tmp_path / "a b").mkdir()
    path = tmp_path / "a b" / "mes.db"  # sqliteodbc takes the value verbatim (it knows no braces)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    f, en, zh, _ = probe(driver="SQLite3", database=str(path),
                         require=["select:main.orders", "insert:orders", "create_table:main"])
    assert (f.connected, f.stage, f.cause, f.product) == (True, "done", None, "sqlite"), en
    assert f.version == _sqlite_version() and (f.server, f.port, f.address) == (None, None, None)
    assert "SQLite database file" in en and "SQLite 数据库文件" in zh
    f, en, _, _ = probe(driver="SQLite3", database=str(path), require=["select:main.work_orders"])
    assert (f.stage, f.cause, f.missing_privileges) == ("privileges", "permission-denied",
                                                        ["select:main.work_orders"]), en
    gone = tmp_path / "not-there.db"
    f, en, _, _ = probe(driver="SQLite3", database=str(gone))
    assert (f.stage, f.cause) == ("database", "database-missing"), en
    assert not gone.exists()  # a readiness check never creates the file
    if "SQLite" in _drivers():  # Debian registers it without its library
        f, en, _, _ = probe(driver="SQLite", database=str(path))
        if not f.connected:
            assert (f.stage, f.cause) == ("driver", "driver-missing") and "Can't open lib" in en


# ===========================================================================================================
# through the CLI: the example, a from: scan over SSH, and no password anywhere
# ===========================================================================================================
def test_sqlite_example_runs_here_with_honest_results(tmp_path):
    need_driver("SQLite3")
    example = ROOT / "examples" / "db-sqlite.yaml"
    path = tmp_path / "mes.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT); "
                         "CREATE TABLE event_log (at TEXT, what TEXT);")
    out = tmp_path / "r.json"
    res = cli("scan", str(example), "--var", f"db_file={path}", "--json", str(out), "--lang", "en")
    results = {r["check"]: r for r in json.loads(out.read_text())["results"]}
    assert results["odbc-sqlite-driver"]["status"] == "pass"
    assert results["db-login"]["status"] == "pass", results["db-login"]["message"]["en"]
    assert results["db-login"]["observed"]["version"] == _sqlite_version()
    legacy = results["db-legacy-driver"]
    assert legacy["status"] == ("pass" if legacy["observed"]["connected"] else "warn")
    assert res.code == 0
    # without the database file: an honest failure at the database stage, and no file created
    missing = tmp_path / "none" / "mes.db"
    res = cli("scan", str(example), "--var", f"db_file={missing}", "--json", str(out), "--lang", "en")
    results = {r["check"]: r for r in json.loads(out.read_text())["results"]}
    assert res.code == 1 and results["db-login"]["status"] == "fail"
    assert results["db-login"]["observed"]["cause"] == "database-missing"
    assert not missing.exists() and not missing.parent.exists()


def test_site_example_validates():
    res = cli("validate", str(ROOT / "examples" / "db-site.yaml"), "-i",
              str(ROOT / "examples" / "mes-precheck" / "inventory.yaml"),
              environ={"MES_PG_PASSWORD": "pg-pw-123", "MES_MSSQL_PASSWORD": "ms-pw-123"})
    assert res.code == 0, res.err


def _pyodbc_as_ssh_sees_it(root_dir: Path) -> dict[str, list[str]]:
    """pyodbc's answer (in a fresh process) with the user DSN file the SSH server's sessions see: their /root is
    ``root_dir`` (sshfix bind-mounts it), and unixODBC reads a user's DSNs from $ODBCINI when set."""
    code = ("import json, pyodbc; print(json.dumps({'drivers': pyodbc.drivers(), "
            "'dsns': sorted(k for k in pyodbc.dataSources() if k.lower() not in ('odbc', 'odbc data sources'))}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "ODBCINI": str(root_dir / ".odbc.ini")}).stdout
    return dict(json.loads(out))


def test_from_vantage_host_over_ssh_and_odbc_on_it(netlab, pg, tmp_path):  # noqa: F811
    """app01 (SSH in namespace A) may reach PostgreSQL in namespace B; this machine may not. The db check with
    ``from: app01`` logs in through app01; the same check without it is filtered. The odbc probe on app01
    (shell path over SSH) equals pyodbc with the same view of the files."""
    need_sshd()
    app = netlab.hosts.get("app") or netlab.add_host("app")
    key = keygen(tmp_path / "key")
    server = SshServer(tmp_path / "sshd", key, address=app.address, port=22, netns=app.ns)
    (server.dir / "root").mkdir(parents=True, exist_ok=True)
    (server.dir / "root" / ".odbc.ini").write_text(
        f"[shop_pg]\nDriver = PostgreSQL Unicode\nServername = {pg.server}\nPort = 5432\n", encoding="utf-8")
    server.start()
    inv = {"hosts": {"app01": {"address": app.address, "user": "root", "key": str(key)}}}
    checks = [
        {"id": "db-from-app", "probe": "db", "from": "app01",
         "with": {"driver": pg.driver, "server": pg.server, "port": pg.port, "database": "shop", "user": "app",
                  "password": "${env:PG_APP_PW}", "timeout": 3, "require": ["select:public.orders"]},
         "expect": {"connected": True, "stage": "done", "version": ">= 15"}},
        {"id": "db-direct", "probe": "db",
         "with": {"driver": pg.driver, "server": pg.server, "port": pg.port, "database": "shop", "user": "app",
                  "password": "${env:PG_APP_PW}", "timeout": 1},
         "expect": {"connected": True}},
        {"id": "odbc-app", "probe": "odbc", "hosts": ["app01"], "with": {"driver": pg.driver, "dsn": "shop_pg"},
         "expect": {"installed": True, "dsn_defined": True}},
    ]
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"version": 1, "checks": checks}))
    out = tmp_path / "r.json"
    rules = [f"-A INPUT -p tcp --dport {pg.port} -s {app.address} -j ACCEPT",
             f"-A INPUT -p tcp --dport {pg.port} -j DROP"]
    try:
        with firewall(pg.host, *rules):
            res = cli("scan", str(tmp_path / "c.yaml"), "-i", str(tmp_path / "inv.yaml"), "--known-hosts",
                      str(tmp_path / "kh"), "--accept-new-hostkeys", "--json", str(out), "--lang", "en",
                      environ={"PG_APP_PW": PG_PW})
    finally:
        server.stop()
    r = {x["check"]: x for x in json.loads(out.read_text())["results"]}
    via = r["db-from-app"]
    assert via["status"] == "pass", via["message"]["en"]
    assert via["observed"]["vantage"] == "app01" and via["from"] == "app01"
    assert via["observed"]["version"] == pg.cluster.binary_version()
    assert "through an SSH tunnel" in via["message"]["en"]
    direct = r["db-direct"]["observed"]
    assert (direct["cause"], direct["stage"], direct["vantage"]) == ("port-filtered", "tcp", "local")
    assert res.code == 1
    odbc = r["odbc-app"]
    assert odbc["status"] == "pass" and odbc["observed"]["source"] == "odbcinst", odbc["message"]["en"]
    seen = _pyodbc_as_ssh_sees_it(server.dir / "root")
    assert odbc["observed"]["drivers"] == seen["drivers"]
    assert sorted(odbc["observed"]["dsns"]) == seen["dsns"] == ["shop_pg"]
    assert server.exec_requests >= 1


def test_no_password_in_any_output(pg, tmp_path):
    literal = "Literal-Wrong-Pw-93"
    checks = [
        {"id": "ok", "probe": "db", "with": {"driver": pg.driver, "server": pg.server, "port": pg.port,
                                             "database": "shop", "user": "app", "password": "${env:DB_PW}",
                                             "timeout": 3}, "expect": {"connected": True}},
        {"id": "cs", "probe": "db",
         "with": {"connection_string": f"DRIVER={{{pg.driver}}};SERVER={pg.server};PORT={pg.port};"
                                       "DATABASE=shop;UID=app;PWD=${env:DB_PW_BRACED};", "timeout": 3,
                  "require": ["insert:public.orders", "create_table:nosuch"]},
         "expect": {"connected": True, "cause": None}},
        {"id": "wrong", "probe": "db", "retry": {"times": 1, "delay": "100ms"},
         "with": {"driver": pg.driver, "server": pg.server, "port": pg.port, "database": "shop", "user": "app",
                  "password": literal, "timeout": 3}, "expect": {"connected": True}},
        {"id": "missing-driver", "probe": "db",
         "with": {"driver": "No Such Driver", "server": pg.server, "user": "app", "password": literal},
         "expect": {"connected": True}},
    ]
    cl = tmp_path / "c.yaml"
    cl.write_text(yaml.safe_dump({"version": 1, "checks": checks}))
    files = {k: tmp_path / f"out.{k}" for k in ("json", "xml", "html", "log")}
    res = cli("scan", str(cl), "--json", str(files["json"]), "--junit", str(files["xml"]), "--html",
              str(files["html"]), "--debug-log", str(files["log"]), "--lang", "en",
              environ={"DB_PW": PG_PW, "DB_PW_BRACED": quote_value(PG_PW)})
    data = json.loads(files["json"].read_text())
    by = {r["check"]: r for r in data["results"]}
    assert by["ok"]["status"] == "pass" and by["cs"]["observed"]["connected"] is True
    assert by["cs"]["observed"]["missing_privileges"] == ["create_table:nosuch"]
    assert by["wrong"]["attempts"] == 2 and by["wrong"]["observed"]["cause"] == "auth-failed"
    assert files["log"].exists() and "retrying" in files["log"].read_text()
    texts = [res.out, res.err] + [p.read_text(encoding="utf-8") for p in files.values()]
    for secret in (PG_PW, quote_value(PG_PW), literal, "PWD="):
        for text in texts:
            assert secret not in text
