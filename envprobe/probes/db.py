"""``db``: can the application log in to its database over ODBC, with the right version and rights — and if not,
why not?

**Stages.** One check walks the layers an application's login goes through and stops at the first that fails;
``stage`` says where it stopped (``done`` when every stage passed) and ``cause`` why (null when all is well):

1. ``driver`` — the ODBC driver is installed on the machine running envprobe (``pyodbc.drivers()``; the message
   lists what *is* installed), or the DSN is defined (``pyodbc.dataSources()``). A driver registered in
   ``odbcinst.ini`` whose library file is missing fails here too, at login (``Can't open lib``).
2. ``dns`` — the server's name resolves *at the vantage host* (``Transport.resolve``: this machine, or the
   ``from:`` host through ``getent`` over SSH). An IP address needs no resolver.
3. ``tcp`` — a TCP connection to server:port opens *from the vantage host* (``Transport.connect``; over SSH a
   ``direct-tcpip`` channel). Refused → ``port-refused``; no answer within ``timeout`` (a DROP rule) or an
   ICMP unreachable/prohibited answer → ``port-filtered``.
4. ``login`` and 5. ``database`` — one ``SQLDriverConnect`` through the local ODBC driver. Its failure is
   classified from the SQLSTATE, the native error number and, where the driver gives nothing better, the
   message text (psqlODBC reports every connect failure as 08001 and only the text tells a wrong password
   from an unknown database; MariaDB gives 28000/1045, 1044, 1049, 2002/2003, 2013; FreeTDS 08S01/20009 and
   HYT00; Microsoft's SQL Server drivers 28000/18456, 4060 and ``TCP Provider`` codes). A failure about the
   database (``database "x" does not exist``, 1049, 4060; or no right to use it: PostgreSQL's missing CONNECT
   privilege, MariaDB/MySQL 1044 — which MySQL also gives for a database that does not exist when the user has
   no rights on it) stops at ``database``.
6. ``privileges`` — each ``require`` entry is verified with read-only catalog queries (below);
   ``missing_privileges`` lists those not held, and the stage fails with ``permission-denied``.
7. ``version`` — the product and version from a harmless query per engine, then ``samples`` round trips of a
   trivial statement for ``query_ms``.

**What is measured.** ``connect_ms``: the ``SQLDriverConnect`` call — driver load, TCP connect, TLS, login and
database selection — measured around the call in this process. ``query_ms``: the median round trip of
``SELECT 1`` (``SELECT 1 FROM DUAL`` on Oracle and DM): execute and fetch, on the open connection, ``samples``
times. Through a ``from:`` tunnel both include the SSH hops (this machine → vantage host → database and back);
a single ``query_ms`` round trip then costs one SSH round trip more than the vantage host itself would see.

**From a vantage host** (``from: app01``, or a check whose host is a remote host): stages ``dns`` and ``tcp``
run at that host (its resolver; a connection opened by it). For the login, the probe opens a temporary listener
on ``127.0.0.1`` (an ephemeral port) in this process; every connection the ODBC driver makes to it is carried to
the database through ``Transport.connect`` — an SSH ``direct-tcpip`` channel opened *by app01* — so the database
sees app01's address (pg_hba.conf, ``'user'@'host'`` grants and firewalls judge app01, as for the real
application) and nothing is installed on app01. The listener and every channel are closed before the check
ends. Consequences: the driver believes it talks to 127.0.0.1, so TLS host-name verification needs the real
name given to the driver (SQL Server: ``options: {HostNameInCertificate: db01.example.cn}``; PostgreSQL
``sslmode=verify-full`` cannot be used through the tunnel); and a SQL Server **named instance** cannot be found
through such a tunnel — the instance lookup is a UDP request to port 1434, which an SSH channel cannot carry:
give the instance's TCP ``port`` instead (SQL Server Configuration Manager → TCP/IP → IPAll).

**Timeout.** ``timeout`` bounds each stage separately: the name lookup, the TCP connect, the login, the privilege
queries, the version query and the samples. It is passed to every driver the way that driver honours it: the
ODBC login timeout (psqlODBC, FreeTDS, Microsoft's drivers), ``CONN_TIMEOUT`` / ``READ_TIMEOUT`` /
``WRITE_TIMEOUT`` in the connection string for MariaDB Connector/ODBC (which ignores the login timeout: a
DROPped port would hang it 134 s), and the statement timeout for queries. On top of that every blocking driver
call runs in a daemon thread that is given up 0.8 s after ``timeout`` (cause ``timeout``), so a driver that hangs
cannot hold a stage for ``timeout`` + 1 s. The check's own deadline (``timeout:`` of the check, 10 s by default)
bounds the sum.

**Privileges** (``require``), verified with read-only queries on the engine's catalog, never by trying:

* grammar: ``ACTION:OBJECT`` with ACTION ``select``, ``insert``, ``update``, ``delete`` (OBJECT a table:
  ``schema.table``, ``table`` for the default schema / current database, or ``schema.*`` for every table of a
  schema), ``create_table`` (OBJECT a schema; for MySQL/MariaDB a database) and ``connect`` (OBJECT a database).
  Identifiers are letters, digits, ``_`` and ``$`` (not starting with a digit), or double-quoted
  (``select:"my-db"."Orders"``; ``""`` for a quote inside). Checked when the checklist loads.
* PostgreSQL (and KingbaseES): ``to_regclass`` / ``to_regnamespace`` for existence, then ``has_table_privilege``,
  ``has_schema_privilege(…, 'CREATE')``, ``has_database_privilege(…, 'CONNECT')``; a table that does not exist
  counts as missing (the message says so). No grant is needed to ask.
* MySQL / MariaDB: ``SHOW GRANTS`` for the current user, parsed (``*.*``, ``db.*`` with ``%``/``_`` wildcards,
  ``db.table``; column-level grants do not count as table rights; role grants are not expanded). No grant is
  needed. The grant lines carry password hashes: they are parsed in memory and never shown.
* SQL Server: ``HAS_PERMS_BY_NAME`` (OBJECT, SCHEMA, DATABASE; ``create_table`` = CREATE TABLE on the database
  and ALTER on the schema); NULL (no such object) counts as missing.
* SQLite has no accounts: ``select``/``connect`` are checked as read permission on the database file,
  ``insert``/``update``/``delete``/``create_table`` as write permission on the file and its folder (the journal),
  for the user running envprobe (root passes every file check); a named table must exist in ``sqlite_master``.
* Oracle, DM and other engines: no privilege queries — a check with ``require`` there ends in an error that
  says so (the login result is in the message).

**Versions.** PostgreSQL: ``SHOW server_version`` (``version`` = its leading number, e.g. ``15.18``) and
``version()`` (``version_string``). MySQL/MariaDB: ``VERSION()`` (``10.11.19-MariaDB-0+deb12u1`` →
``10.11.19``; ``product`` mariadb when it says so; TiDB and OceanBase banners → product ``other`` with their own
version) and ``@@version_comment`` (``edition``). SQL Server: ``SERVERPROPERTY('ProductVersion')``
(``16.0.1000.6``), ``SERVERPROPERTY('Edition')``, ``@@VERSION``. SQLite: ``sqlite_version()``. Oracle:
``SELECT banner FROM v$version`` (``Release 19.0.0.0.0``); DM (达梦): ``SELECT banner FROM v$version``
(``V8.1.2.84``); KingbaseES (人大金仓): ``version()`` (``V008R006C008B0014`` → ``8.6.8.14``). ``product`` comes
from the driver's ``SQL_DBMS_NAME`` and the banner.

**Tested here / not tested.** Tested against real servers on this machine: PostgreSQL 15 (psqlODBC), MariaDB
10.11 (MariaDB Connector/ODBC 3.1), SQLite 3 (sqliteodbc), FreeTDS against closed, dropped and silent ports.
Not testable here (no server or driver): Microsoft SQL Server and its ODBC Driver 17/18 (their SQL and error
codes are implemented from the vendor's documentation), MySQL Server with MySQL Connector/ODBC, Oracle, DM
(达梦) and KingbaseES (人大金仓) — for these the connection-string keys, the version SQL and the error
classification are small and untested; DSNs on Windows (kept in the registry) are used, but their server and
port are not read for the dns/tcp stages.

**Secrets.** ``password`` (normally ``${env:NAME}``) goes into the connection string handed to the driver and
nowhere else: not into facts, messages or logs; driver messages are scrubbed of it before use.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, NoReturn

from envprobe.loader import parse_duration
from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, ItemErrors, Model, field_validator, model_validator, stripped_nonempty
from envprobe.transport.base import TransportError, pump

Stage = Literal["driver", "dns", "tcp", "login", "database", "privileges", "version", "done"]
Cause = Literal["driver-missing", "dns-error", "port-refused", "port-filtered", "tls-error", "auth-failed",
                "database-missing", "permission-denied", "timeout", "server-error"]
Product = Literal["sqlserver", "postgresql", "mysql", "mariadb", "oracle", "sqlite", "dm", "kingbase", "other"]

#: A hung driver call is given up this long after its own timeout (so a stage never takes timeout + 1 s).
GUARD_S = 0.8
#: Kept back from the check's deadline so the probe reports in its own words before the runner gives up.
_MARGIN = 0.3
MASK = "******"

# ===========================================================================================================
# driver families and connection strings (pure)
# ===========================================================================================================
#: Driver family from the ODBC driver's name. Order matters: FreeTDS before "SQL Server", Kingbase before Postgres.
_FAMILIES: list[tuple[str, re.Pattern[str]]] = [
    ("freetds", re.compile(r"freetds|\btds", re.I)),
    ("sqlserver", re.compile(r"sql\s*server|sql native client|sqlncli|msodbcsql", re.I)),
    ("kingbase", re.compile(r"kingbase|人大金仓", re.I)),
    ("postgresql", re.compile(r"postgres|psqlodbc", re.I)),
    ("mariadb", re.compile(r"mariadb", re.I)),
    ("mysql", re.compile(r"mysql", re.I)),
    ("sqlite", re.compile(r"sqlite", re.I)),
    ("oracle", re.compile(r"oracle|\bora\w*client|instantclient", re.I)),
    ("dm", re.compile(r"\bdm\d*\b|dameng|达梦", re.I)),
]

#: The port each family's server listens on unless told otherwise.
DEFAULT_PORTS = {"sqlserver": 1433, "freetds": 1433, "postgresql": 5432, "kingbase": 54321, "mariadb": 3306,
                 "mysql": 3306, "oracle": 1521, "dm": 5236}


def driver_family(driver: str | None) -> str:
    """``freetds``, ``sqlserver``, ``postgresql``, ``kingbase``, ``mariadb``, ``mysql``, ``sqlite``, ``oracle``,
    ``dm`` or ``other``, from an ODBC driver's name (``ODBC Driver 18 for SQL Server`` → sqlserver)."""
    for family, rx in _FAMILIES:
        if driver and rx.search(driver):
            return family
    return "other"


_BRACE_NEEDED = re.compile(r"[;{}=]|^\s|\s$")


def quote_value(value: str) -> str:
    """An ODBC connection-string attribute value: as is when plain, else in braces with ``}`` doubled
    (``p;w}d`` → ``{p;w}}d}``), the escape the ODBC specification defines."""
    if value and not _BRACE_NEEDED.search(value):
        return value
    return "{" + value.replace("}", "}}") + "}"


class ConnStringError(ValueError):
    """A connection string that does not parse. The message never quotes the string (it may hold a password)."""


def parse_connection_string(text: str) -> list[tuple[str, str]]:
    """``KEY=value;KEY={va;lue}`` → ``[(KEY, value), ...]`` in order. Braced values may contain ``;`` and
    ``}}`` (a literal ``}``). Keys keep their spelling; compare them case-insensitively."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n;":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        semi = text.find(";", i)
        if eq < 0 or (0 <= semi < eq):
            raise ConnStringError(f"attribute {len(out) + 1} has no '=' (write KEY=value; pairs)")
        key = text[i:eq].strip()
        if not key:
            raise ConnStringError(f"attribute {len(out) + 1} has an empty name before '='")
        j = eq + 1
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == "{":
            k, buf = j + 1, []
            while True:
                if k >= n:
                    raise ConnStringError(f"the value of {key} opens '{{' and never closes it")
                if text[k] == "}":
                    if k + 1 < n and text[k + 1] == "}":
                        buf.append("}")
                        k += 2
                        continue
                    break
                buf.append(text[k])
                k += 1
            value = "".join(buf)
            i = k + 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] != ";":
                raise ConnStringError(f"the value of {key} has text after its closing '}}'")
        else:
            k = text.find(";", j)
            k = n if k < 0 else k
            value = text[j:k].strip()
            i = k
        out.append((key, value))
    return out


def split_server(value: str) -> tuple[str, int | None, str | None]:
    """SQL Server style ``[tcp:]host[,port]`` or ``host\\instance`` → (host, port, instance)."""
    v = value.strip()
    if v.lower().startswith("tcp:"):
        v = v[4:]
    port: int | None = None
    instance: str | None = None
    if "," in v:
        v, _, p = v.rpartition(",")
        with contextlib.suppress(ValueError):
            port = int(p.strip())
    if "\\" in v:
        v, _, instance = v.partition("\\")
    v = v.strip()
    if v.startswith("[") and v.endswith("]"):
        v = v[1:-1]
    if v in (".", "(local)", "localhost"):
        v = "127.0.0.1" if v != "localhost" else v
    return v, port, instance or None


_SERVER_KEYS = ("server", "servername", "host", "hostname", "address", "addr", "data source", "network address")
_PORT_KEYS = ("port", "tcp_port")
_DB_KEYS = ("database", "db", "initial catalog")
_USER_KEYS = ("uid", "user id", "user", "username")
_PWD_KEYS = ("pwd", "password")
_DBQ = re.compile(r"^(?://)?(?P<host>\[[^\]]+\]|[^:/\s]+)(?::(?P<port>\d+))?/(?P<service>\S+)$")


class Target:
    """Where and how to log in: the driver (or DSN), server, port, instance, database, user and password, plus the
    other connection-string attributes in order. Built from the parameters; turned into a connection string by
    :func:`build_connection_string`."""

    def __init__(self, *, driver: str | None = None, dsn: str | None = None, family: str = "other",
                 host: str | None = None, port: int | None = None, instance: str | None = None,
                 database: str | None = None, user: str | None = None, password: str | None = None,
                 extra: list[tuple[str, str]] | None = None):
        self.driver, self.dsn, self.family = driver, dsn, family
        self.host, self.port, self.instance = host, port, instance
        self.database, self.user, self.password = database, user, password
        self.extra = list(extra or [])

    def __repr__(self) -> str:  # never the password
        return (f"Target(driver={self.driver!r}, dsn={self.dsn!r}, family={self.family!r}, host={self.host!r}, "
                f"port={self.port!r}, instance={self.instance!r}, database={self.database!r}, user={self.user!r})")

    @property
    def effective_port(self) -> int | None:
        """The TCP port the server listens on: given, or the family's default (unknown for a SQL Server named
        instance without a port: the driver asks the instance's port over UDP 1434)."""
        if self.port:
            return self.port
        if self.instance and self.family in ("sqlserver", "freetds"):
            return None
        return DEFAULT_PORTS.get(self.family)

    def has_key(self, *names: str) -> bool:
        return any(k.lower() in names for k, _ in self.extra)


def target_from_string(conn: str, dsn_driver: Callable[[str], str | None] | None = None) -> Target:
    """A :class:`Target` from a full connection string (its DRIVER or DSN, server, port, database, user and
    password recognised by their usual key names; everything else kept as is)."""
    pairs = parse_connection_string(conn)
    tg = Target()
    for key, value in pairs:
        k = key.lower()
        if k == "driver":
            tg.driver = value
        elif k == "dsn":
            tg.dsn = value
        elif k in _SERVER_KEYS:
            host, port, instance = split_server(value)
            tg.host = host or None
            tg.port = port or tg.port
            tg.instance = instance or tg.instance
        elif k in _PORT_KEYS:
            try:
                tg.port = int(value)
            except ValueError:
                raise ConnStringError(f"{key} is not a port number") from None
        elif k in _DB_KEYS:
            tg.database = value
        elif k in _USER_KEYS:
            tg.user = value
        elif k in _PWD_KEYS:
            tg.password = value
        elif k == "dbq" and (m := _DBQ.match(value)):
            tg.host, tg.database = m.group("host").strip("[]"), m.group("service")
            tg.port = int(m.group("port")) if m.group("port") else tg.port
        else:
            tg.extra.append((key, value))
    name = tg.driver or (dsn_driver(tg.dsn) if (tg.dsn and dsn_driver) else None)
    tg.family = driver_family(name)
    return tg


def build_connection_string(tg: Target, timeout_s: int, via: tuple[str, int] | None = None) -> str:
    """The connection string for ``tg``; ``via`` = (host, port) replaces the server's address (the local end of a
    tunnel). Adds the timeout keys the family's driver honours, and ``NoCreat=1`` for SQLite (a check must never
    create a database file)."""
    fam = tg.family
    parts: list[tuple[str, str]] = []
    if tg.dsn:
        parts.append(("DSN", tg.dsn))
    if tg.driver:
        parts.append(("DRIVER", tg.driver))
    host, port = (via if via else (tg.host, tg.port))
    instance = None if via else tg.instance
    if host:
        if fam == "sqlserver":
            if port:
                parts.append(("SERVER", f"tcp:{host},{port}"))
            else:
                parts.append(("SERVER", f"{host}\\{instance}" if instance else host))
        elif fam == "freetds":
            if port:
                parts += [("SERVER", host), ("PORT", str(port))]
            else:
                parts.append(("SERVER", f"{host}\\{instance}" if instance else host))
        elif fam == "oracle":
            h = f"[{host}]" if ":" in host else host
            parts.append(("DBQ", f"//{h}:{port or DEFAULT_PORTS['oracle']}/{tg.database or ''}"))
        elif fam == "dm":
            parts.append(("SERVER", host))
            if port:
                parts.append(("TCP_PORT", str(port)))
        else:
            parts.append(("SERVER", host))
            if port:
                parts.append(("PORT", str(port)))
    if tg.database and not (fam == "oracle" and host):
        parts.append(("DATABASE", tg.database))
    if tg.user is not None:
        parts.append(("UID", tg.user))
    if tg.password is not None:
        parts.append(("PWD", tg.password))
    parts += tg.extra
    keys = {k.lower() for k, _ in parts}
    if fam == "mariadb":
        for key in ("CONN_TIMEOUT", "READ_TIMEOUT", "WRITE_TIMEOUT"):
            if key.lower() not in keys:
                parts.append((key, str(timeout_s)))
    if fam == "sqlite" and "nocreat" not in keys:
        parts.append(("NoCreat", "1"))
    out = []
    for k, v in parts:
        if k.upper() == "DRIVER":
            out.append(f"{k}={{{v}}}")
        elif fam == "sqlite":  # sqliteodbc takes values verbatim up to the next ';' and knows no braces
            if ";" in v:
                raise ConnStringError(f"the SQLite ODBC driver cannot take a {k} value that contains ';'")
            out.append(f"{k}={v}")
        else:
            out.append(f"{k}={quote_value(v)}")
    return ";".join(out) + ";"


# ===========================================================================================================
# privileges: the grammar (checked at load time)
# ===========================================================================================================
TABLE_ACTIONS = ("select", "insert", "update", "delete")
ACTIONS = (*TABLE_ACTIONS, "create_table", "connect")
_IDENT = r'(?:"(?:[^"]|"")+"|[^\W\d][\w$]*)'
_PRIV_RX = re.compile(rf"^(?P<action>[A-Za-z_]+):(?P<obj>(?:{_IDENT}\.)?(?:{_IDENT}|\*))$")


class Privilege:
    """One ``require`` entry: ``action`` on ``schema.name`` (``name`` may be ``*``; ``schema`` may be None)."""

    def __init__(self, raw: str, action: str, schema: str | None, name: str):
        self.raw, self.action, self.schema, self.name = raw, action, schema, name

    def __repr__(self) -> str:
        return f"Privilege({self.raw!r})"


def _unquote(ident: str) -> str:
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident


def _split_ident(obj: str) -> list[str]:
    return [_unquote(m.group(0)) for m in re.finditer(rf"{_IDENT}|\*", obj)]


def parse_privilege(entry: str) -> Privilege:
    """``select:public.orders`` → Privilege. Raises ValueError saying what is allowed."""
    text = entry.strip()
    m = _PRIV_RX.match(text)
    if not m:
        if ":" not in text:
            raise ValueError(f"{text!r} is not ACTION:OBJECT (e.g. select:public.orders, create_table:public, "
                             "connect:mes)")
        raise ValueError(f"{text!r}: the object is not schema.table, table, schema.* or a name (identifiers are "
                         "letters, digits, _ and $, or \"double-quoted\")")
    action = m.group("action").lower()
    if action not in ACTIONS:
        raise ValueError(f"{text!r}: unknown action {action!r}; use {', '.join(ACTIONS)}")
    parts = _split_ident(m.group("obj"))
    schema, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
    if action in TABLE_ACTIONS:
        if schema is None and name == "*":
            raise ValueError(f"{text!r}: '*' needs a schema (schema.*)")
        return Privilege(text, action, schema, name)
    if schema is not None or name == "*":
        what = "a schema (or, for MySQL/MariaDB, a database)" if action == "create_table" else "a database"
        sample = "public" if action == "create_table" else "mes"
        raise ValueError(f"{text!r}: {action} takes {what} name, e.g. {action}:{sample}")
    return Privilege(text, action, None, name)


# ===========================================================================================================
# parameters and facts
# ===========================================================================================================
class DbParams(Model):
    driver: str | None = Field(default=None,
                               description="ODBC driver name as installed on the machine running envprobe (e.g. "
                                           "'ODBC Driver 18 for SQL Server', 'PostgreSQL Unicode', 'MariaDB "
                                           "Unicode', 'SQLite3', 'FreeTDS'); one of driver, dsn, connection_string")
    dsn: str | None = Field(default=None, description="an ODBC data source name defined on the machine running "
                                                      "envprobe (odbc.ini); server/port given here override it")
    connection_string: str | None = Field(
        default=None,
        description="a full ODBC connection string (DRIVER={...};SERVER=...;...); a secret like the password: "
                    "never shown. server, port, database, user and password given beside it override it")
    server: str | None = Field(default=None, description="database host name or IP address (resolved at the "
                                                         "vantage host)")
    port: int | None = Field(default=None, ge=1, le=65535,
                             description="TCP port; default per engine (1433, 5432, 3306, 1521, 5236, 54321); "
                                         "needed for a SQL Server named instance checked from another host")
    instance: str | None = Field(default=None, description="SQL Server named instance (found by the driver over "
                                                           "UDP 1434 when no port is given)")
    database: str | None = Field(default=None, description="database to open (SQLite: the database file's path; "
                                                           "Oracle: the service name)")
    user: str | None = Field(default=None, description="login name")
    password: str | None = Field(default=None,
                                 description="password, normally ${env:NAME} (a secret: used only in the "
                                             "connection string handed to the driver, never shown)")
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="more connection-string attributes in the driver's own spelling, e.g. {Encrypt: 'yes', "
                    "TrustServerCertificate: 'yes'} or {sslmode: require}; booleans become yes/no")
    timeout: float = Field(default=5.0, gt=0, le=300,
                           description="seconds for each stage: lookup, TCP connect, login, privilege queries, "
                                       "version query and samples ('5s', '500ms'); a hung driver call is given "
                                       "up 1 s after it")
    require: list[str] = Field(default_factory=list,
                               description="privileges to verify: select|insert|update|delete:schema.table "
                                           "(or table, or schema.*), create_table:schema, connect:database")
    samples: int = Field(default=3, ge=1, le=100, description="round trips of SELECT 1 whose median is query_ms")

    def __repr__(self) -> str:  # the model's repr would show the password and the connection string
        shown = {k: (MASK if k in ("password", "connection_string") and v is not None else v)
                 for k, v in self.__dict__.items()}
        return f"DbParams({shown})"

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> Any:
        return parse_duration(v) if v is not None else v

    @field_validator("driver", "dsn", "server", "instance", "user")
    @classmethod
    def _strip(cls, v: str | None) -> str | None:
        return stripped_nonempty(v)

    @field_validator("connection_string")
    @classmethod
    def _conn(cls, v: str | None) -> str | None:
        if v is None:
            return None
        pairs = parse_connection_string(v)  # ConnStringError is a ValueError: a file:line problem
        keys = {k.lower() for k, _ in pairs}
        if not keys & {"driver", "dsn"}:
            raise ValueError("the connection string names no DRIVER={...} or DSN=...")
        return v

    @field_validator("options")
    @classmethod
    def _options(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_ .-]*", str(key)):
                raise ValueError(f"option name {key!r} is not a connection-string key (letters, digits, _)")
            if str(key).lower() in ("pwd", "password", "driver", "dsn"):
                raise ValueError(f"give {key} as its own parameter, not in options")
        return v

    @field_validator("require")
    @classmethod
    def _require(cls, v: list[str]) -> list[str]:
        problems: dict[Any, str] = {}
        for i, entry in enumerate(v):
            try:
                parse_privilege(entry)
            except ValueError as exc:
                problems[i] = str(exc)
        if problems:
            raise ItemErrors(problems)  # each located at its own line
        return [e.strip() for e in v]

    @model_validator()
    def _one_way(self) -> DbParams:
        given = [k for k in ("driver", "dsn", "connection_string") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of driver, dsn or connection_string"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.driver is not None:
            fam = driver_family(self.driver)
            if fam == "sqlite":
                if not self.database:
                    raise ValueError("SQLite needs database: the path of the database file")
            elif not self.server:
                raise ValueError("give server (the database host) with driver")
        return self


class DbFacts(Facts):
    connected: bool = Field(description="the login succeeded (whatever later stages found)")
    stage: Stage = Field(description="where the check stopped: driver, dns, tcp, login, database, privileges, "
                                     "version; done when every stage passed")
    cause: Cause | None = Field(description="why it stopped: driver-missing, dns-error, port-refused, "
                                            "port-filtered, tls-error, auth-failed, database-missing, "
                                            "permission-denied, timeout, server-error; null when all is well")
    product: Product | None = Field(description="the database product: sqlserver, postgresql, mysql, mariadb, "
                                                "oracle, sqlite, dm, kingbase or other (null before login)")
    version: str | None = Field(description="normalised numeric version (15.18, 10.11.19, 16.0.1000.6); compare "
                                            "with '>= 15.0'")
    version_string: str | None = Field(description="the full version banner the server gave")
    edition: str | None = Field(description="edition or distribution note (SQL Server Edition, MySQL/MariaDB "
                                            "@@version_comment, Oracle edition)")
    connect_ms: float | None = Field(description="time of the ODBC login call (TCP, TLS, login, database); "
                                                 "through a from: tunnel it includes the SSH hops",
                                     json_schema_extra={"unit": "ms"})
    query_ms: float | None = Field(description="median round trip of SELECT 1 over the open connection "
                                               "(samples times)", json_schema_extra={"unit": "ms"})
    missing_privileges: list[str] = Field(description="the require entries the user does not hold (or whose "
                                                      "object does not exist)")
    driver: str | None = Field(description="the ODBC driver used (for a DSN: its driver)")
    dsn: str | None = Field(description="the DSN used, if any")
    server: str | None = Field(description="the server as given (or found in the DSN / connection string)")
    port: int | None = Field(description="the TCP port tried (null: not known before login, e.g. a named "
                                         "instance, or no server as for SQLite)")
    address: str | None = Field(description="the IP address the server's name resolved to at the vantage host")
    database: str | None = Field(description="the database asked for")
    user: str | None = Field(description="the login name (never the password)")
    vantage: str = Field(description="where the network path starts: local, or the from: host (the login then "
                                     "goes through an SSH tunnel from that host)")
    sqlstate: str | None = Field(description="SQLSTATE of the driver error that stopped the check")
    native_error: int | None = Field(description="the driver's native error number (1045, 18456, ...)")
    error: str | None = Field(description="the driver's message, without the password")
    installed_drivers: list[str] = Field(description="ODBC drivers installed on the machine running envprobe "
                                                     "(where the login runs, also with from:)")
    elapsed_ms: float = Field(description="time spent by the whole check", json_schema_extra={"unit": "ms"})


# ===========================================================================================================
# error classification (pure)
# ===========================================================================================================
class DriverError:
    """One pyodbc error: its diagnostic records as (sqlstate, native error, text without vendor tags)."""

    def __init__(self, records: list[tuple[str, int | None, str]]):
        self.records = records or [("HY000", None, "")]

    @property
    def sqlstate(self) -> str:
        return self.records[0][0]

    @property
    def native(self) -> int | None:
        for _, n, _ in self.records:
            if n:
                return n
        return self.records[0][1]

    @property
    def text(self) -> str:
        return " | ".join(r[2] for r in self.records if r[2])


_RECORD = re.compile(r"\[(?P<state>[0-9A-Z]{5})\]\s*(?P<body>.*?)(?=;\s*\[[0-9A-Z]{5}\]|\Z)", re.S)
_NATIVE_TAIL = re.compile(r"\s*\((?P<native>-?\d+)\)\s*(?:\(SQL\w+\))?\s*$")
_VENDOR_TAGS = re.compile(r"^(?:\s*\[[^\]]*\])+\s*")


def parse_pyodbc_error(args: tuple[Any, ...], secrets: tuple[str, ...] = ()) -> DriverError:
    """pyodbc's ``Error.args`` (``(sqlstate, "[state] [vendor][driver]text (native) (SQLFunc); [state] …")``) →
    records, each text stripped of vendor tags and scrubbed of ``secrets``."""
    state0 = str(args[0]) if args else "HY000"
    msg = str(args[1]) if len(args) > 1 else (str(args[0]) if args else "")
    msg = scrub(msg, secrets)
    records: list[tuple[str, int | None, str]] = []
    for m in _RECORD.finditer(msg):
        body = m.group("body").strip()
        native: int | None = None
        tail = _NATIVE_TAIL.search(body)
        if tail:
            native = int(tail.group("native"))
            body = body[: tail.start()]
        body = _VENDOR_TAGS.sub("", body)
        body = " ".join(body.split())
        records.append((m.group("state"), native, body))
    if not records:
        records.append((state0 if re.fullmatch(r"[0-9A-Z]{5}", state0) else "HY000", None, " ".join(msg.split())))
    return DriverError(records)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


def _has(text: str, *needles: str) -> bool:
    low = text.lower()
    return any(n in low for n in needles)


def classify_connect_error(err: DriverError, family: str, elapsed: float | None = None,
                           timeout: float | None = None) -> tuple[str, str]:
    """(cause, stage) for a failed ``SQLDriverConnect``: SQLSTATE first, then native error numbers, then the
    driver's words (psqlODBC says 08001 for everything)."""
    states = {r[0] for r in err.records}
    natives = {r[1] for r in err.records if r[1] is not None}
    text = err.text
    # 1. the driver or DSN itself
    if "IM002" in states or _has(text, "data source name not found"):
        return "driver-missing", "driver"
    if states & {"01000", "IM003", "IM004"} and _has(text, "can't open lib", "file not found",
                                                     "cannot open shared object", "driver's sqlallochandle"):
        return "driver-missing", "driver"
    # 2. name resolution and the TCP connection, as the driver saw them
    if _has(text, "could not translate host name", "unknown mysql server host", "unknown server host",
            "name or service not known", "no such host is known", "temporary failure in name resolution",
            "0x2af9", "getaddrinfo") or natives & {2005, 11001}:
        return "dns-error", "dns"
    if _has(text, "connection refused", "0x274d", "(111)", "actively refused", "ora-12541", "no listener") \
            or natives & {10061, 12541}:
        return "port-refused", "tcp"
    if _has(text, "no route to host", "network is unreachable", "(113)", "host is unreachable"):
        return "port-filtered", "tcp"
    # 3. time
    if states & {"HYT00", "HYT01"} or natives & {12170} or _has(
            text, "timeout expired", "timed out", "timeout error", "connect timeout", "system error: 110", "(110)",
            "0x2746", "0x274c"):
        return "timeout", "login"
    if "08S01" in states and 20009 in natives:  # FreeTDS: "unavailable or does not exist" — refused or silent
        if elapsed is not None and timeout is not None and elapsed >= 0.8 * timeout:
            return "timeout", "login"
        return "port-refused", "tcp"
    if natives & {2002, 2003} and family in ("mariadb", "mysql"):
        return "port-refused", "tcp"
    # 4. the account, where the server said so plainly
    plain_auth = natives & _AUTH_NATIVES or _has(text, "password authentication failed", "no pg_hba.conf entry",
                                                 "ora-01017", "login failed for user", "access denied for user")
    if plain_auth and not natives & {1044, 1049, 4060}:  # SQL Server adds "login failed" to "cannot open database"
        return "auth-failed", "login"
    # 5. the database
    if _DB_MISSING.search(text) or natives & {1049, 4060, 12514, 12505}:
        return "database-missing", "database"
    if _has(text, "permission denied for database", "does not have connect privilege") or natives & {1044}:
        return "permission-denied", "database"
    if family == "sqlite" and (natives & {14} or _has(text, "unable to open", "connect failed")):
        return "database-missing", "database"
    # 6. TLS
    if natives & {2026} or _TLS.search(text):
        return "tls-error", "login"
    # 7. the account, by weaker signs
    if "28000" in states or _has(text, "authentication failed", "is not allowed to connect", "invalid username",
                                 "invalid authorization") or re.search(r'role "[^"]*" does not exist', text):
        return "auth-failed", "login"
    return "server-error", "login"


_AUTH_NATIVES = {1045, 1130, 1251, 1698, 18456, 18452, 18470, 18486, 1017}
_DB_MISSING = re.compile(r'database "[^"]*" does not exist|unknown database|cannot open database|'
                         r"ora-1251[45]", re.I)
_TLS = re.compile(r"\b(?:ssl|tls)\b|sslmode|certificate|encryption not supported|ssl provider", re.I)


def classify_query_error(err: DriverError) -> str:
    """The cause for a failed catalog or version query: permission-denied, timeout or server-error."""
    states = {r[0] for r in err.records}
    natives = {r[1] for r in err.records if r[1] is not None}
    if states & {"42501"} or natives & {1142, 1143, 1044, 229, 230, 300, 1227} or _has(
            err.text, "permission denied", "command denied", "access denied", "insufficient privileges",
            "ora-01031"):
        return "permission-denied"
    if states & {"HYT00", "HYT01"} or _has(err.text, "timeout", "timed out", "canceling statement"):
        return "timeout"
    return "server-error"


# ===========================================================================================================
# products and versions (pure)
# ===========================================================================================================
def detect_product(dbms_name: str | None, banner: str = "") -> str:
    """The product from the driver's SQL_DBMS_NAME and, when known, the version banner."""
    text = f"{dbms_name or ''} {banner}".lower()
    if re.search(r"tidb|oceanbase|opengauss|gaussdb", text):
        return "other"
    if "kingbase" in text:
        return "kingbase"
    if "mariadb" in text:
        return "mariadb"
    if "mysql" in text:
        return "mysql"
    if "postgres" in text:
        return "postgresql"
    if "sql server" in text or "sqlserver" in text:
        return "sqlserver"
    if "sqlite" in text:
        return "sqlite"
    if "oracle" in text:
        return "oracle"
    if re.search(r"^\s*dm\d*\b|dameng|\bdm database|达梦", text):
        return "dm"
    return "other"


def leading_version(text: str | None) -> str | None:
    """The first dotted number in ``text`` with leading zeros dropped (``10.11.000019`` → ``10.11.19``)."""
    if not text:
        return None
    m = re.search(r"\d+(?:\.\d+)*", text)
    if not m:
        return None
    return ".".join(str(int(p)) for p in m.group(0).split("."))


def normalise_version(product: str, raw: str | None) -> tuple[str | None, str | None]:
    """(version, edition) from an engine's version text."""
    if not raw:
        return None, None
    if product in ("mysql", "mariadb", "other"):
        m = re.search(r"-(TiDB|OceanBase)[-_]v?(\d+(?:\.\d+)*)", raw, re.I)
        if m:
            return leading_version(m.group(2)), m.group(1)
        raw = re.sub(r"^5\.5\.5-", "", raw)
        return leading_version(raw), None
    if product == "kingbase":
        m = re.search(r"V(\d+)R(\d+)(?:C(\d+))?(?:B(\d+))?", raw)
        if m:
            return ".".join(str(int(g)) for g in m.groups() if g is not None), None
        return leading_version(raw), None
    if product == "oracle":
        m = re.search(r"(?:Release|Version)\s+(\d+(?:\.\d+)*)", raw)
        ed = re.search(r"\b(Enterprise|Standard|Express|Personal|Free)\b(?: Edition)?", raw)
        return (leading_version(m.group(1)) if m else leading_version(raw)), (ed.group(0) if ed else None)
    if product == "dm":
        m = re.search(r"\bV(\d+(?:\.\d+)*)", raw)
        return (leading_version(m.group(1)) if m else leading_version(raw)), None
    return leading_version(raw), None


# ===========================================================================================================
# privileges per engine
# ===========================================================================================================
def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_privilege_query(p: Privilege) -> tuple[str, list[Any]]:
    """SQL returning 1 (held), 0 (not held) or -1 (no such object) for one privilege, PostgreSQL/KingbaseES."""
    if p.action in TABLE_ACTIONS:
        priv = p.action.upper()
        if p.name == "*":
            return ("SELECT CASE WHEN to_regnamespace(?) IS NULL THEN -1 ELSE COALESCE((SELECT min(CASE WHEN "
                    "has_table_privilege(c.oid, ?) THEN 1 ELSE 0 END) FROM pg_class c WHERE c.relnamespace = "
                    "to_regnamespace(?) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')), 1) END",
                    [_pg_ident(p.schema or ""), priv, _pg_ident(p.schema or "")])
        rel = (_pg_ident(p.schema) + "." if p.schema else "") + _pg_ident(p.name)
        return ("SELECT CASE WHEN to_regclass(?) IS NULL THEN -1 WHEN has_table_privilege(to_regclass(?), ?) "
                "THEN 1 ELSE 0 END", [rel, rel, priv])
    if p.action == "create_table":
        return ("SELECT CASE WHEN to_regnamespace(?) IS NULL THEN -1 WHEN has_schema_privilege(to_regnamespace(?), "
                "'CREATE') THEN 1 ELSE 0 END", [_pg_ident(p.name), _pg_ident(p.name)])
    return ("SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = ?) THEN -1 WHEN "
            "has_database_privilege(?, 'CONNECT') THEN 1 ELSE 0 END", [p.name, p.name])


def _ms_ident(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


def mssql_privilege_query(p: Privilege) -> tuple[str, list[Any]]:
    """SQL Server: HAS_PERMS_BY_NAME gives 1, 0, or NULL when the securable does not exist (→ -1)."""
    if p.action in TABLE_ACTIONS:
        priv = p.action.upper()
        if p.name == "*":
            return "SELECT COALESCE(HAS_PERMS_BY_NAME(?, 'SCHEMA', ?), -1)", [_ms_ident(p.schema or ""), priv]
        obj = (_ms_ident(p.schema) + "." if p.schema else "") + _ms_ident(p.name)
        return "SELECT COALESCE(HAS_PERMS_BY_NAME(?, 'OBJECT', ?), -1)", [obj, priv]
    if p.action == "create_table":
        return ("SELECT CASE WHEN SCHEMA_ID(?) IS NULL THEN -1 ELSE HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', "
                "'CREATE TABLE') * HAS_PERMS_BY_NAME(?, 'SCHEMA', 'ALTER') END", [p.name, _ms_ident(p.name)])
    return "SELECT COALESCE(HAS_PERMS_BY_NAME(?, 'DATABASE', 'CONNECT'), -1)", [p.name]


class Grant:
    """One parsed MySQL/MariaDB ``GRANT … ON db.table TO …`` line: table-level privilege names (upper case), and
    the object (``db`` / ``table`` may be ``*``; ``db_pattern``: a database-level grant whose name may hold
    ``%``/``_`` wildcards)."""

    def __init__(self, privileges: set[str], columns: set[str], db: str, table: str):
        self.privileges, self.columns, self.db, self.table = privileges, columns, db, table

    def __repr__(self) -> str:
        return f"Grant({sorted(self.privileges)}, {self.db}.{self.table})"


_GRANT_TOKEN = re.compile(r"`(?:[^`]|``)*`|\"(?:[^\"]|\"\")*\"|'(?:[^'\\]|\\.|'')*'|\(|\)|,|\.|\*|[^\s`\"'(),.*]+")


def _mysql_unquote(tok: str) -> str:
    if tok.startswith("`"):
        return tok[1:-1].replace("``", "`")
    if tok.startswith('"'):
        return tok[1:-1].replace('""', '"')
    return tok


def parse_grants(lines: list[str]) -> list[Grant]:
    """Parse ``SHOW GRANTS`` output. Lines that grant roles, proxies or routines are skipped (they give no table
    rights); nothing of a line after ``TO`` is kept (it may carry a password hash)."""
    grants: list[Grant] = []
    for line in lines:
        toks = _GRANT_TOKEN.findall(line.strip())
        if len(toks) < 4 or toks[0].upper() != "GRANT":
            continue
        # privileges up to the top-level ON
        i, depth = 1, 0
        privs: list[list[str]] = [[]]
        cols: set[str] = set()
        while i < len(toks):
            tok = toks[i]
            if depth == 0 and tok.upper() == "ON":
                break
            if tok == "(":
                depth += 1
            elif tok == ")":
                depth -= 1
            elif depth > 0:
                if tok != ",":
                    cols.add(" ".join(privs[-1]).upper())
            elif tok == ",":
                privs.append([])
            else:
                privs[-1].append(tok.upper())
            i += 1
        if i >= len(toks):
            continue  # a role grant: GRANT `role` TO `user`
        i += 1
        if i < len(toks) and toks[i].upper() in ("PROCEDURE", "FUNCTION", "PACKAGE", "TABLE"):
            if toks[i].upper() != "TABLE":
                continue
            i += 1
        obj: list[str] = []
        while i < len(toks) and toks[i].upper() != "TO":
            obj.append(toks[i])
            i += 1
        if "." in obj:
            dot = obj.index(".")
            db, table = "".join(obj[:dot]), "".join(obj[dot + 1:])
        elif obj:
            db, table = "", "".join(obj)
        else:
            continue
        names = {" ".join(p) for p in privs if p}
        if names <= {"PROXY"}:
            continue
        table_level = {n for n in names if n not in cols}
        grants.append(Grant(table_level, cols & names, _mysql_unquote(db), _mysql_unquote(table)))
    return grants


def _like(pattern: str, name: str) -> bool:
    """MySQL database-level grant names: ``%`` and ``_`` are wildcards, ``\\%`` and ``\\_`` literal."""
    rx, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            rx += re.escape(pattern[i + 1])
            i += 2
            continue
        rx += ".*" if c == "%" else "." if c == "_" else re.escape(c)
        i += 1
    return re.fullmatch(rx, name, re.S) is not None


_ALL = {"ALL", "ALL PRIVILEGES"}
_MYSQL_PRIV = {"select": "SELECT", "insert": "INSERT", "update": "UPDATE", "delete": "DELETE",
               "create_table": "CREATE"}


def mysql_has(grants: list[Grant], p: Privilege, current_db: str | None) -> int:
    """1 when the grants give ``p``, 0 when not, -1 when it cannot be told (no database to qualify a table)."""
    if p.action == "connect":
        db = p.name
        for g in grants:
            real = g.privileges - {"USAGE", "GRANT OPTION"}
            if not (real or g.columns):
                continue
            if g.db == "*" or (g.table == "*" and _like(g.db, db)) or g.db == db:
                return 1
        return 0
    want = _MYSQL_PRIV[p.action]
    if p.action == "create_table":
        db, table = p.name, "*"
    else:
        db, table = (p.schema or current_db or ""), p.name
    if not db:
        return -1
    for g in grants:
        if not (g.privileges & (_ALL | {want})):
            continue
        if g.db == "*" and g.table == "*":
            return 1
        if g.table == "*" and _like(g.db, db):
            return 1
        if table != "*" and g.db == db and g.table == table:
            return 1
    return 0


# ===========================================================================================================
# running driver calls with a hard deadline
# ===========================================================================================================
class Hung(Exception):
    """A driver call did not return within its guard time; it was left to finish in its daemon thread."""


def guarded(fn: Callable[[], Any], limit: float, name: str,
            on_late: Callable[[Any], None] | None = None) -> Any:
    """Run ``fn()`` in a daemon thread and wait at most ``limit`` seconds. If it does not return in time,
    raise :class:`Hung` at once; when it returns later, ``on_late(result)`` cleans up (e.g. closes the
    connection it opened)."""
    box: list[tuple[bool, Any]] = []
    done = threading.Event()
    lock = threading.Lock()
    abandoned = [False]

    def body() -> None:
        try:
            res: tuple[bool, Any] = (True, fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            res = (False, exc)
        with lock:
            if abandoned[0]:
                if res[0] and on_late is not None:
                    with contextlib.suppress(Exception):
                        on_late(res[1])
                return
            box.append(res)
            done.set()

    threading.Thread(target=body, daemon=True, name=name).start()
    if not done.wait(max(0.0, limit)):
        with lock:
            if not box:
                abandoned[0] = True
                raise Hung(name)
    ok, value = box[0]
    if not ok:
        raise value
    return value


# ===========================================================================================================
# the tunnel for a remote vantage host
# ===========================================================================================================
class Tunnel:
    """A listener on 127.0.0.1:ephemeral in this process; each connection accepted is carried to
    ``address:port`` through ``transport.connect`` (from the vantage host: an SSH direct-tcpip channel) by two
    pump threads. :meth:`close` closes the listener and every stream."""

    def __init__(self, transport: Any, address: str, port: int, timeout: float):
        self.transport, self.address, self.port, self.timeout = transport, address, port, timeout
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.local_port = int(self.listener.getsockname()[1])
        self.errors: list[BaseException] = []
        self.accepted = 0
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True, name=f"db-tunnel-{self.local_port}").start()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    _close(client)
                    return
                self.accepted += 1
                self._streams.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True, name="db-tunnel-conn").start()

    def _serve(self, client: socket.socket) -> None:
        try:
            remote = self.transport.connect(self.address, self.port, self.timeout)
        except Exception as exc:  # noqa: BLE001 - the driver sees a closed connection; the probe reads this
            self.errors.append(exc)
            _close(client)
            return
        with self._lock:
            if self._closed:
                _close(remote)
                _close(client)
                return
            self._streams.append(remote)
        with contextlib.suppress(Exception):
            remote.settimeout(None)
        with contextlib.suppress(OSError):
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(remote, socket.socket):
            with contextlib.suppress(OSError):
                remote.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def both_closed() -> None:
            _close(client)
            _close(remote)

        threading.Thread(target=pump, args=(remote, client, both_closed), daemon=True,
                         name="db-tunnel-down").start()
        pump(client, remote, both_closed)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            streams, self._streams = self._streams, []
        _close(self.listener)
        for s in streams:
            _close(s)


def _close(s: Any) -> None:
    """Close a socket, channel or connection. A socket is shut down first: closing alone does not wake a thread
    blocked in its accept() or recv()."""
    if isinstance(s, socket.socket):
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        s.close()


# ===========================================================================================================
# DSNs on this machine
# ===========================================================================================================
def dsn_settings(name: str) -> dict[str, str]:
    """The attributes of DSN ``name`` from this machine's odbc.ini files (user file first: it wins), lower-case
    keys. Empty when not found (or on Windows, where DSNs live in the registry)."""
    import configparser

    files = []
    if os.environ.get("ODBCINI"):
        files.append(os.environ["ODBCINI"])
    files.append(os.path.expanduser("~/.odbc.ini"))
    files.append(os.path.join(os.environ.get("ODBCSYSINI", "/etc"), "odbc.ini"))
    for path in files:
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                cp.read_file(fh)
        except (OSError, configparser.Error):
            continue
        for section in cp.sections():
            if section.lower() == name.lower():
                return {k.lower(): v.strip() for k, v in cp.items(section)}
    return {}


# ===========================================================================================================
# the probe
# ===========================================================================================================
class _Stop(Exception):
    """Ends the walk through the stages at the current one."""


#: One piece of advice for a login that did not get through (connected, stage and cause fail together).
_FAILED_LOGIN_ADVICE = t("the message names the stage and cause; check in this order: firewall, port (service "
                         "listening), account permissions, the database server's log",
                         "结果消息给出了失败阶段与原因；请依次检查：防火墙、端口（服务是否监听）、账号权限、数据库服务器日志")


class DbProbe(Probe):
    name = "db"
    summary = t("Log in to a database over ODBC in stages (driver, name, port, login, database, privileges, "
                "version) and say where and why it stopped",
                "通过 ODBC 分阶段登录数据库（驱动、域名解析、端口、登录、数据库、权限、版本），"
                "并指出在哪一步、因何失败")
    Params = DbParams
    Facts = DbFacts
    vantage = True
    example = """\
- id: db-login
  title: {zh-CN: MES 数据库可登录, en: MES database login}
  probe: db
  with:
    driver: PostgreSQL Unicode
    server: 10.0.0.5
    port: 5432
    database: mes
    user: mes_app
    password: ${env:MES_DB_PASSWORD}
    timeout: 5s
    require: [select:public.orders, insert:public.orders, create_table:public]
  expect: {connected: true, stage: done, product: postgresql, version: ">= 13", connect_ms: "< 500"}
"""
    advice = {
        "connected": _FAILED_LOGIN_ADVICE,
        "cause": _FAILED_LOGIN_ADVICE,
        "stage": _FAILED_LOGIN_ADVICE,
        "version": t("the server's version is outside the supported range: upgrade the server or confirm support "
                     "with the vendor", "数据库版本不在支持范围内：请升级数据库或与厂商确认支持情况"),
        "product": t("a different database product answered: check server, port and driver",
                     "应答的数据库产品与预期不同：请核对服务器地址、端口与驱动"),
        "missing_privileges": t("ask the DBA to grant what is listed (e.g. GRANT SELECT ON schema.table TO user), "
                                "then run the check again",
                                "请 DBA 授予所列权限（如 GRANT SELECT ON schema.table TO 用户），然后重新检查"),
        "connect_ms": t("a slow login: measure the path (latency probe), check DNS reverse lookups on the server "
                        "(MySQL skip-name-resolve), TLS and the server's load",
                        "登录较慢：测量网络路径（latency 探针），检查服务器端反向解析（MySQL skip-name-resolve）、TLS "
                        "与服务器负载"),
        "query_ms": t("slow round trips: measure the path (latency probe) and the server's load",
                      "查询往返较慢：测量网络路径（latency 探针）并检查服务器负载"),
        "*": t("check in this order: firewall, port, account permissions, the database server's log",
               "请依次检查：防火墙、端口、账号权限、数据库服务器日志"),
    }
    requires = t(
        "pyodbc and the ODBC driver on the machine running envprobe (never on the database host or the vantage "
        "host). With from: HOST, an SSH login to HOST with TCP forwarding allowed (the login goes through a "
        "temporary 127.0.0.1 listener and a direct-tcpip channel from HOST; a SQL Server named instance then "
        "needs port:, UDP 1434 cannot be tunnelled). On the database: an account that may log in; privilege "
        "checks read the catalog only and need no grant. Tested here: PostgreSQL, MariaDB, SQLite, FreeTDS; "
        "SQL Server (Microsoft drivers), MySQL, Oracle, DM and KingbaseES untested",
        "运行 envprobe 的机器上需要 pyodbc 与对应 ODBC 驱动（数据库主机和发起端主机上都无需安装）。使用 from: 主机时，"
        "需能 SSH 登录该主机且允许 TCP 转发（登录经本机 127.0.0.1 临时端口与该主机发起的 direct-tcpip 通道进行；"
        "此时 SQL Server 命名实例须给出 port:，UDP 1434 无法经隧道转发）。数据库侧：一个可登录的账号；权限检查只读"
        "系统目录，无需额外授权。本机已测试：PostgreSQL、MariaDB、SQLite、FreeTDS；未测试：SQL Server（微软驱动）、"
        "MySQL、Oracle、达梦、人大金仓")

    def __init__(self) -> None:
        self._note: Text | None = None

    def note(self, params: Any, facts: Model) -> Text | None:
        return self._note

    # -- helpers -------------------------------------------------------------------------------------------
    @staticmethod
    def _limit(ctx: ProbeContext, params: DbParams) -> float:
        return max(0.1, min(params.timeout, ctx.remaining(0.1) - _MARGIN))

    def collect(self, ctx: ProbeContext, params: Any) -> DbFacts:
        run = _Walk(ctx, params)
        facts = run.walk()
        self._note = run.message(facts)
        return facts


class _Walk:
    """One pass through the stages for one check."""

    def __init__(self, ctx: ProbeContext, params: DbParams):
        self.ctx, self.p = ctx, params
        self.t0 = time.perf_counter()
        self.vantage = "local" if ctx.transport.is_local else ctx.transport.name
        self.f: dict[str, Any] = dict(
            connected=False, stage="driver", cause=None, product=None, version=None, version_string=None,
            edition=None, connect_ms=None, query_ms=None, missing_privileges=[], driver=params.driver,
            dsn=params.dsn, server=params.server, port=params.port, address=None, database=params.database,
            user=params.user, vantage=self.vantage, sqlstate=None, native_error=None, error=None,
            installed_drivers=[], elapsed_ms=0.0)
        self.secrets: tuple[str, ...] = tuple(s for s in (params.password, params.connection_string) if s)
        self.detail: Text | None = None  # cause-specific words for the message
        self.absent: list[str] = []  # require entries whose object does not exist
        self.tunnel: Tunnel | None = None
        self.limit_used = params.timeout
        self.target: Target | None = None
        self.pyodbc: Any = None
        self.dbms = ""
        self.dbms_ver = ""

    # -- the walk ------------------------------------------------------------------------------------------
    def walk(self) -> DbFacts:
        try:
            import pyodbc
        except ImportError as exc:
            raise ProbeError(t(f"the db probe needs the pyodbc module on the machine running envprobe ({exc})",
                               f"db 探针需要运行 envprobe 的机器上安装 pyodbc 模块（{exc}）"),
                             t("pip install pyodbc, and install unixODBC (Linux: apt install unixodbc / dnf install "
                               "unixODBC)", "执行 pip install pyodbc，并安装 unixODBC（Linux：apt install unixodbc 或 "
                                            "dnf install unixODBC）")) from exc
        self.pyodbc = pyodbc
        conn = None
        try:
            self._stage_driver()
            addresses = self._stage_dns()
            self._stage_tcp(addresses)
            conn = self._stage_login()
            self._stage_privileges(conn)
            self._stage_version(conn)
            self.f["stage"] = "done"
        except _Stop:
            pass
        except (ProbeError, TransportError):
            raise
        except Exception as exc:  # an unforeseen failure: its text may quote the driver, so scrub it
            where = exc.__traceback__
            while where is not None and where.tb_next is not None:
                where = where.tb_next
            at = f" (at {os.path.basename(where.tb_frame.f_code.co_filename)}:{where.tb_lineno})" if where else ""
            raise RuntimeError(self._scrub(f"{type(exc).__name__}: {exc}") + at) from None
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    guarded(conn.close, 1.0, "db-close")
            if self.tunnel is not None:
                self.tunnel.close()
        self.f["elapsed_ms"] = round((time.perf_counter() - self.t0) * 1000.0, 3)
        return DbFacts(**self.f)

    def _stop(self, stage: str, cause: str, detail: Text | None = None) -> NoReturn:
        self.f["stage"], self.f["cause"] = stage, cause
        self.detail = detail
        raise _Stop()

    def _limit(self) -> float:
        self.limit_used = DbProbe._limit(self.ctx, self.p)
        return self.limit_used

    def _scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    # -- 1. driver / DSN -----------------------------------------------------------------------------------
    def _stage_driver(self) -> None:
        p = self.p
        try:
            installed = list(self.pyodbc.drivers())
        except self.pyodbc.Error:
            installed = []
        self.f["installed_drivers"] = installed
        dsns: dict[str, str] = {}
        if p.dsn or p.connection_string:
            with contextlib.suppress(self.pyodbc.Error):
                dsns = dict(self.pyodbc.dataSources())

        def dsn_driver(name: str) -> str | None:
            for k, v in dsns.items():
                if k.lower() == name.lower():
                    return v
            return None

        if p.connection_string is not None:
            try:
                tg = target_from_string(p.connection_string, dsn_driver)
            except ConnStringError as exc:  # validated at load time; a template could still produce one
                raise ProbeError(t(f"the connection string does not parse: {exc}", f"连接字符串无法解析：{exc}")) \
                    from None
        else:
            tg = Target(driver=p.driver, dsn=p.dsn)
            tg.family = driver_family(p.driver or (dsn_driver(p.dsn) if p.dsn else None))
        for attr in ("port", "instance", "database", "user", "password"):
            if getattr(p, attr) is not None:
                setattr(tg, attr, getattr(p, attr))
        if p.server is not None:
            host, port, instance = split_server(p.server) if tg.family in ("sqlserver", "freetds") \
                else (p.server, None, None)
            tg.host, tg.port, tg.instance = host, p.port or port or tg.port, p.instance or instance or tg.instance
        for key, value in p.options.items():
            sval = ("yes" if value else "no") if isinstance(value, bool) else str(value)
            tg.extra = [(k, v) for k, v in tg.extra if k.lower() != key.lower()] + [(key, sval)]
        self.target = tg
        self.f.update(driver=tg.driver, dsn=tg.dsn, server=tg.host, database=tg.database, user=tg.user)
        if tg.dsn:
            real = next((k for k in dsns if k.lower() == tg.dsn.lower()), None)
            if real is None:
                self._stop("driver", "driver-missing", t(
                    f"the DSN '{tg.dsn}' is not defined on this machine (defined: {_list(dsns) or 'none'})",
                    f"本机未定义 DSN '{tg.dsn}'（已定义：{_list(dsns) or '无'}）"))
            self.f["driver"] = tg.driver or dsns[real]
            if not tg.host:  # the DSN's own server and port, for the dns and tcp stages
                cfg = dsn_settings(real)
                server = next((cfg[k] for k in _SERVER_KEYS if cfg.get(k)), None)
                if server:
                    host, port, instance = split_server(server)
                    tg.host, tg.port = host, tg.port or port
                    tg.instance = tg.instance or instance
                for k in _PORT_KEYS:
                    if cfg.get(k) and not tg.port:
                        with contextlib.suppress(ValueError):
                            tg.port = int(cfg[k])
                tg.database = tg.database or next((cfg[k] for k in _DB_KEYS if cfg.get(k)), None)
                self.f.update(server=tg.host, database=tg.database)
        if tg.driver:
            real = next((d for d in installed if d.lower() == tg.driver.lower()), None)
            if real is None:
                self._stop("driver", "driver-missing", t(
                    f"the ODBC driver '{tg.driver}' is not installed on this machine (installed: "
                    f"{_list(installed) or 'none'})",
                    f"本机未安装 ODBC 驱动 '{tg.driver}'（已安装：{_list(installed) or '无'}）"))
            tg.driver = real
            self.f["driver"] = real
        if tg.family == "sqlite":
            tg.host, tg.port = None, None
            self.f.update(server=None, port=None)
        else:
            self.f["port"] = tg.effective_port
        if not self.ctx.transport.is_local and not tg.host:
            what = "an SQLite file" if tg.family == "sqlite" else f"DSN '{tg.dsn}' without a known server"
            what_zh = "SQLite 文件" if tg.family == "sqlite" else f"未给出服务器地址的 DSN '{tg.dsn}'"
            raise ProbeError(
                t(f"{what} is opened by the ODBC driver on the machine running envprobe, so it cannot be checked "
                  f"on or from {self.vantage}", f"{what_zh}由运行 envprobe 的机器上的 ODBC 驱动打开，"
                                                f"无法在 {self.vantage} 上或从 {self.vantage} 检查"),
                t("run this check locally (no from:, hosts: [local]); for a DSN, give server and port so the login "
                  "can go through the vantage host", "请在本机运行该检查（不写 from:，hosts: [local]）；"
                                                     "使用 DSN 时请给出 server 与 port，以便经发起端主机登录"))

    # -- 2. name -------------------------------------------------------------------------------------------
    def _stage_dns(self) -> list[str]:
        tg = self.target
        assert tg is not None
        if not tg.host:
            return []
        self.f["stage"] = "dns"
        limit = self._limit()
        try:
            addresses = self.ctx.transport.resolve(tg.host, timeout=limit)
        except TimeoutError:
            self._stop("dns", "dns-error", t(f"no answer from the resolver within {limit:.3g} s",
                                             f"解析器在 {limit:.3g} 秒内无应答"))
        except (OSError, UnicodeError) as exc:
            self._stop("dns", "dns-error", t(_short_exc(exc), _short_exc(exc)))
        return addresses

    # -- 3. TCP --------------------------------------------------------------------------------------------
    def _stage_tcp(self, addresses: list[str]) -> None:
        from envprobe.probes.net import FILTERED, REFUSED, UNREACHABLE, classify, error_word

        tg = self.target
        assert tg is not None
        if not addresses:
            return
        port = tg.effective_port
        self.f["address"] = addresses[0]
        if port is None:
            if not self.ctx.transport.is_local:
                raise ProbeError(
                    t(f"SQL Server instance '{tg.instance}' on {tg.host} cannot be checked from {self.vantage}: "
                      "finding an instance's port takes a UDP request to port 1434, which an SSH tunnel cannot "
                      "carry", f"无法从 {self.vantage} 检查 {tg.host} 上的 SQL Server 实例 '{tg.instance}'："
                               "查找实例端口需要向 UDP 1434 发请求，SSH 隧道无法转发 UDP"),
                    t("give the instance's TCP port (port: …; SQL Server Configuration Manager → TCP/IP → IPAll)",
                      "请给出该实例的 TCP 端口（port: …；见 SQL Server 配置管理器 → TCP/IP → IPAll）"))
            return  # the driver asks SQL Browser for the port itself
        self.f["stage"] = "tcp"
        state, word = FILTERED, "timeout"
        for address in addresses:
            limit = self._limit()
            self.f["address"] = address
            try:
                sock = self.ctx.transport.connect(address, port, limit)
            except OSError as exc:
                found = classify(exc)
                if found is None:
                    raise ProbeError(t(f"could not attempt a TCP connection to {address}:{port} from "
                                       f"{self.vantage}: {exc}",
                                       f"无法从 {self.vantage} 尝试 TCP 连接 {address}:{port}：{exc}")) from exc
                state, word = found, error_word(exc)
                if found == FILTERED or self.ctx.remaining(0.0) < 0.3:
                    break
                continue
            _close(sock)
            return
        if state == REFUSED:
            self._stop("tcp", "port-refused")
        self._stop("tcp", "port-filtered",
                   t("the network answered that the host is unreachable or the port administratively prohibited "
                     f"({word})", f"网络返回主机不可达或端口被管理性禁止（{word}）") if state == UNREACHABLE else None)

    # -- 4 and 5. login and database ----------------------------------------------------------------------
    def _stage_login(self) -> Any:
        tg = self.target
        assert tg is not None
        pyodbc = self.pyodbc
        self.f["stage"] = "login"
        via = None
        if tg.host and not self.ctx.transport.is_local:
            port = tg.effective_port
            assert port is not None
            self.tunnel = Tunnel(self.ctx.transport, self.f["address"] or tg.host, port, self._limit())
            via = ("127.0.0.1", self.tunnel.local_port)
        limit = self._limit()
        seconds = max(1, math.ceil(limit))
        try:
            conn_str = build_connection_string(tg, seconds, via)
        except ConnStringError as exc:
            raise ProbeError(t(f"cannot build the connection string: {exc}", f"无法生成连接字符串：{exc}"),
                             t("rename the file or folder, or use a DSN", "请重命名文件或目录，或改用 DSN")) from None
        self.secrets = tuple(s for s in (*self.secrets, conn_str) if s)

        def connect() -> Any:
            t0 = time.perf_counter()
            c = pyodbc.connect(conn_str, timeout=seconds, autocommit=True)
            ms = (time.perf_counter() - t0) * 1000.0
            info: dict[str, Any] = {}
            for key, code in (("dbms", pyodbc.SQL_DBMS_NAME), ("dbms_ver", pyodbc.SQL_DBMS_VER)):
                with contextlib.suppress(Exception):
                    info[key] = c.getinfo(code)
            with contextlib.suppress(Exception):
                c.timeout = seconds
            return c, ms, info

        t0 = time.perf_counter()
        try:
            conn, ms, info = guarded(connect, limit + GUARD_S, "db-connect", on_late=lambda r: _close(r[0]))
        except Hung:
            self._stop("login", "timeout", self._hung_detail(limit, "login"))
        except pyodbc.Error as exc:
            elapsed = time.perf_counter() - t0
            err = parse_pyodbc_error(exc.args, self.secrets)
            self._record(err)
            if self.tunnel is not None and self.tunnel.errors:
                self._tunnel_failed(self.tunnel.errors[0])
            cause, stage = classify_connect_error(err, tg.family, elapsed, limit)
            if cause == "driver-missing" and tg.driver:
                self._stop(stage, cause, t(
                    f"the driver '{tg.driver}' is registered in odbcinst.ini, but the driver manager cannot load "
                    f"it ({err.text})", f"驱动 '{tg.driver}' 已在 odbcinst.ini 中登记，但驱动管理器无法加载它"
                                        f"（{err.text}）"))
            self._stop(stage, cause)
        self.f.update(connected=True, connect_ms=round(ms, 3))
        self.dbms = str(info.get("dbms") or "")
        self.dbms_ver = str(info.get("dbms_ver") or "")
        self.f["product"] = detect_product(self.dbms) if self.dbms else _family_product(tg.family)
        self.f["stage"] = "database"
        return conn

    def _tunnel_failed(self, exc: BaseException) -> NoReturn:
        from envprobe.probes.net import FILTERED, REFUSED, classify

        found = classify(exc) if isinstance(exc, OSError) else None
        words = t(f"the tunnel from {self.vantage} could not reach the server: {_short_exc(exc)}",
                  f"从 {self.vantage} 出发的隧道无法连到服务器：{_short_exc(exc)}")
        if found == REFUSED:
            self._stop("tcp", "port-refused", words)
        if found == FILTERED:
            self._stop("tcp", "port-filtered", words)
        self._stop("tcp", "port-filtered" if found else "server-error", words)

    def _hung_detail(self, limit: float, what: str) -> Text:
        return t(f"the driver did not return within {limit:.3g} s (+{GUARD_S:g} s grace) and was given up "
                 f"during the {what}", f"驱动在 {limit:.3g} 秒（另加 {GUARD_S:g} 秒宽限）内未返回，已在{_ZH_WHAT[what]}"
                                       "阶段放弃")

    def _record(self, err: DriverError) -> None:
        self.f.update(sqlstate=err.sqlstate, native_error=err.native, error=self._scrub(err.text)[:500] or None)

    def _query(self, conn: Any, what: str, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(cursor)`` with the stage's guard; a driver error or a hang stops the walk at ``what``."""
        limit = self._limit()

        def body() -> Any:
            cur = conn.cursor()
            try:
                return fn(cur)
            finally:
                with contextlib.suppress(Exception):
                    cur.close()

        try:
            return guarded(body, limit + GUARD_S, f"db-{what}", on_late=lambda _r: _close(conn))
        except Hung:
            self._stop(what, "timeout", self._hung_detail(limit, what))
        except self.pyodbc.Error as exc:
            err = parse_pyodbc_error(exc.args, self.secrets)
            self._record(err)
            self._stop(what, classify_query_error(err))

    # -- 6. privileges -------------------------------------------------------------------------------------
    def _stage_privileges(self, conn: Any) -> None:
        self.f["stage"] = "privileges"
        entries = [parse_privilege(e) for e in self.p.require]
        if not entries:
            return
        product = self.f["product"]
        tg = self.target
        assert tg is not None
        results: dict[str, int] = {}
        if product in ("postgresql", "kingbase") or (product == "other" and tg.family in ("postgresql",
                                                                                          "kingbase")):
            def pg(cur: Any) -> None:
                for e in entries:
                    sql, args = pg_privilege_query(e)
                    results[e.raw] = int(cur.execute(sql, *args).fetchone()[0])
            self._query(conn, "privileges", pg)
        elif product in ("mysql", "mariadb") or (product == "other" and tg.family in ("mysql", "mariadb")):
            def my(cur: Any) -> None:
                lines = [str(r[0]) for r in cur.execute("SHOW GRANTS").fetchall()]
                current = cur.execute("SELECT DATABASE()").fetchone()[0]
                grants = parse_grants(lines)
                del lines  # password hashes: gone before anything else happens
                for e in entries:
                    results[e.raw] = mysql_has(grants, e, current)
            self._query(conn, "privileges", my)
        elif product == "sqlserver":
            def ms(cur: Any) -> None:
                for e in entries:
                    sql, args = mssql_privilege_query(e)
                    row = cur.execute(sql, *args).fetchone()
                    results[e.raw] = -1 if row[0] is None else int(row[0])
            self._query(conn, "privileges", ms)
        elif product == "sqlite":
            results.update(self._sqlite_privileges(conn, entries))
        else:
            shown = t(f"logged in to {self.dbms or product} as {tg.user or '(default user)'} in "
                      f"{self.f['connect_ms']:g} ms", f"已以 {tg.user or '（默认用户）'} 登录 {self.dbms or product}，"
                                                      f"耗时 {self.f['connect_ms']:g} ms")
            raise ProbeError(
                t(f"{shown['en']}; privilege checks are not available for {self.dbms or product} (require: "
                  f"{', '.join(self.p.require)})",
                  f"{shown['zh-CN']}；该数据库（{self.dbms or product}）不支持权限检查"
                  f"（require：{', '.join(self.p.require)}）"),
                t("remove require from this check and have the DBA confirm the grants",
                  "请从该检查中去掉 require，并请 DBA 确认授权"))
        missing = [raw for raw, v in results.items() if v != 1]
        self.absent = [raw for raw, v in results.items() if v == -1]
        self.f["missing_privileges"] = missing
        if missing:
            self._stop("privileges", "permission-denied")

    def _sqlite_privileges(self, conn: Any, entries: list[Privilege]) -> dict[str, int]:
        path = self.target.database if self.target else None
        assert path is not None
        path = os.path.expanduser(path)
        folder = os.path.dirname(os.path.abspath(path))
        readable = os.access(path, os.R_OK)
        writable = os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)
        tables: set[str] = set()

        def names(cur: Any) -> None:
            for row in cur.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')").fetchall():
                tables.add(str(row[0]).lower())

        if any(e.action in TABLE_ACTIONS and e.name != "*" for e in entries):
            self._query(conn, "privileges", names)
        out: dict[str, int] = {}
        for e in entries:
            if e.action in TABLE_ACTIONS and e.name != "*" and e.name.lower() not in tables:
                out[e.raw] = -1
            elif e.action in ("select", "connect"):
                out[e.raw] = 1 if readable else 0
            else:
                out[e.raw] = 1 if writable else 0
        return out

    # -- 7. version and query latency -----------------------------------------------------------------------
    def _stage_version(self, conn: Any) -> None:
        self.f["stage"] = "version"
        product = self.f["product"]
        tg = self.target
        assert tg is not None
        sql_family = product if product != "other" else _family_product(tg.family)
        found: dict[str, Any] = {}

        def version(cur: Any) -> None:
            if sql_family in ("postgresql", "kingbase"):
                found["short"] = cur.execute("SHOW server_version").fetchone()[0]
                found["banner"] = cur.execute("SELECT version()").fetchone()[0]
            elif sql_family in ("mysql", "mariadb"):
                row = cur.execute("SELECT VERSION(), @@version_comment").fetchone()
                found["short"], found["banner"], found["edition"] = row[0], row[0], row[1]
            elif sql_family == "sqlserver":
                row = cur.execute("SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), "
                                  "CAST(SERVERPROPERTY('Edition') AS nvarchar(128)), @@VERSION").fetchone()
                found["short"], found["edition"], found["banner"] = row[0], row[1], row[2]
            elif sql_family == "sqlite":
                found["short"] = cur.execute("SELECT sqlite_version()").fetchone()[0]
                found["banner"] = f"SQLite {found['short']}"
            elif sql_family in ("oracle", "dm"):
                found["banner"] = cur.execute("SELECT banner FROM v$version").fetchone()[0]
                found["short"] = found["banner"]
            else:
                found["banner"] = f"{self.dbms} {self.dbms_ver}".strip()
                found["short"] = self.dbms_ver
            one = "SELECT 1 FROM DUAL" if sql_family in ("oracle", "dm") else "SELECT 1"
            times = []
            for _ in range(self.p.samples):
                t0 = time.perf_counter()
                cur.execute(one).fetchall()
                times.append((time.perf_counter() - t0) * 1000.0)
            found["times"] = times

        self._query(conn, "version", version)
        banner = str(found.get("banner") or "").strip()
        refined = detect_product(self.dbms, banner) if self.dbms else product
        if refined != "other" or product == "other" or re.search(r"tidb|oceanbase|opengauss|gaussdb", banner, re.I):
            product = refined
        self.f["product"] = product
        ver, edition = normalise_version(product if product != "other" else sql_family, str(found.get("short") or ""))
        if product == "other" and re.search(r"opengauss|gaussdb", banner, re.I):
            edition = edition or "openGauss"
        self.f.update(version=ver, version_string=banner or None,
                      edition=(str(found["edition"]).strip() or None) if found.get("edition") else edition)
        times = sorted(found.get("times") or [])
        if times:
            mid = len(times) // 2
            med = times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2
            self.f["query_ms"] = round(med, 3)

    # -- the message ---------------------------------------------------------------------------------------
    def message(self, f: DbFacts) -> Text:
        return db_message(f, self.detail, self.absent, self.limit_used, self.p.samples, self.tunnel is not None)


_ZH_WHAT = {"login": "登录", "privileges": "权限检查", "version": "版本查询"}


def _family_product(family: str) -> str:
    return {"freetds": "sqlserver", "sqlserver": "sqlserver", "postgresql": "postgresql", "kingbase": "kingbase",
            "mariadb": "mariadb", "mysql": "mysql", "sqlite": "sqlite", "oracle": "oracle", "dm": "dm"}.get(
        family, "other")


def _list(items: Any) -> str:
    return ", ".join(f"'{x}'" for x in items)


def _short_exc(exc: BaseException) -> str:
    from envprobe.probes.net import error_word

    word = error_word(exc)
    text = str(exc)
    return f"{word}: {text}" if text and word not in text else (text or word)


# ===========================================================================================================
# messages: what was tried, what happened, what to check next (firewall → port → account → logs)
# ===========================================================================================================
def _tried(f: DbFacts, tunnel: bool) -> Text:
    how = f"driver '{f.driver}'" if f.driver else ""
    how_zh = f"驱动 '{f.driver}'" if f.driver else ""
    if f.dsn:
        how = f"DSN '{f.dsn}'" + (f" ({how})" if how else "")
        how_zh = f"DSN '{f.dsn}'" + (f"（{how_zh}）" if how_zh else "")
    if f.product == "sqlite" or (not f.server and f.database and "sqlite" in (f.driver or "").lower()):
        return t(f"ODBC open of the SQLite database file '{f.database}' with {how}",
                 f"使用 {how_zh} 打开 SQLite 数据库文件 '{f.database}'")
    who = f"user {f.user}" if f.user else "the default user"
    who_zh = f"用户 {f.user} " if f.user else "默认用户"
    if f.server:
        where = f"{f.server}:{f.port}" if f.port else f"{f.server}"
        if f.address and f.address != f.server:
            where += f" ({f.address})"
        where_zh = f" {where}"
    else:
        where, where_zh = "the data source", "数据源"
    db = f", database '{f.database}'" if f.database else ""
    db_zh = f"，数据库 '{f.database}'" if f.database else ""
    if f.vantage == "local":
        frm, frm_zh = "", ""
    else:
        frm = f" from {f.vantage}" + (" (through an SSH tunnel)" if tunnel else "")
        frm_zh = f"（从 {f.vantage} 发起" + ("，经 SSH 隧道）" if tunnel else "）")
    return t(f"ODBC login to {where} with {how or 'the driver'} as {who}{db}{frm}",
             f"使用 {how_zh or '驱动'}，以{who_zh}登录{where_zh}{db_zh}{frm_zh}")


_NEXT: dict[str, Text] = {
    "firewall": t("the firewalls on the path and on the database host (inbound {port}/tcp: iptables -S, "
                  "firewall-cmd --list-all, security groups)",
                  "路径上和数据库主机上的防火墙（入站 {port}/tcp：iptables -S、firewall-cmd --list-all、安全组）"),
    "port": t("that the database service is running and listening on {port}/tcp at an address clients can reach "
              "(ss -ltnp; listen_addresses, bind-address, SQL Server TCP/IP enabled)",
              "数据库服务已启动并在客户端可达的地址上监听 {port}/tcp（ss -ltnp；listen_addresses、bind-address、"
              "SQL Server 已启用 TCP/IP）"),
    "account": t("the account: user name and password, that it exists and is not locked, and that it may log in "
                 "from this host (pg_hba.conf, 'user'@'host', SQL Server login and mixed-mode authentication)",
                 "账号：用户名与密码、账号存在且未锁定、允许从本主机登录（pg_hba.conf、'用户'@'主机'、SQL Server "
                 "登录名与混合身份验证）"),
    "dbname": t("the database name (spelling and case) and that it exists (\\l in psql, SHOW DATABASES, "
                "sys.databases), and that the account may open it",
                "数据库名（拼写与大小写）及该库是否存在（psql 的 \\l、SHOW DATABASES、sys.databases），"
                "以及账号是否有权打开"),
    "grants": t("the account's rights: have the DBA GRANT the missing privileges (or CONNECT on the database)",
                "账号权限：请 DBA 授予缺失的权限（或数据库的 CONNECT 权限）"),
    "logs": t("the database server's log at the time of this check, which says why it refused or failed",
              "本次检查时间点的数据库服务器日志，其中记录了拒绝或失败的原因"),
    "name": t("the name: DNS records or /etc/hosts at the vantage host",
              "主机名：发起端主机上的 DNS 记录或 /etc/hosts"),
    "driver": t("that the driver is installed on the machine running envprobe (e.g. msodbcsql18, "
                "odbc-postgresql, odbc-mariadb, libsqliteodbc) and that the name matches one installed",
                "运行 envprobe 的机器上是否已安装该驱动（如 msodbcsql18、odbc-postgresql、odbc-mariadb、"
                "libsqliteodbc），以及驱动名是否与已安装的一致"),
    "tls": t("the TLS settings on both sides (Encrypt / TrustServerCertificate, sslmode, the server's certificate "
             "and its CA)", "双方的 TLS 设置（Encrypt / TrustServerCertificate、sslmode、服务器证书及其 CA）"),
    "service": t("that {port}/tcp really is this database (not another service or a proxy), and the server's "
                 "load and connection limit", "确认 {port}/tcp 上确实是该数据库（而非其他服务或代理），"
                                              "以及服务器负载与连接数上限"),
    "dsn": t("that the DSN is defined for the user running envprobe (odbcinst -q -s; ~/.odbc.ini, /etc/odbc.ini, "
             "or the ODBC Data Sources tool on Windows) and spelled as defined",
             "运行 envprobe 的用户是否定义了该 DSN（odbcinst -q -s；~/.odbc.ini、/etc/odbc.ini，Windows 上为"
             "“ODBC 数据源”工具），以及名称拼写是否一致"),
    "file": t("the file's path and its permissions for the user running envprobe (and its folder's, for the "
              "journal); envprobe never creates the file",
              "数据库文件的路径，以及运行 envprobe 的用户对该文件（及其所在目录，回滚日志 journal 写在那里）的权限；"
              "envprobe 不会创建该文件"),
}

#: What to check next for each cause, in the documents' order (firewall → port → account → logs).
_NEXT_FOR: dict[str, list[str]] = {
    "driver-missing": ["driver"],
    "dns-error": ["name", "firewall"],
    "port-filtered": ["firewall", "port"],
    "port-refused": ["firewall", "port", "logs"],
    "timeout": ["firewall", "service", "logs"],
    "tls-error": ["tls", "logs"],
    "auth-failed": ["account", "logs"],
    "database-missing": ["dbname", "logs"],
    "permission-denied": ["grants", "logs"],
    "server-error": ["service", "logs"],
}


def db_message(f: DbFacts, detail: Text | None, absent: list[str], timeout: float, samples: int,
               tunnel: bool) -> Text:
    """The result message: what was tried, what happened, and what to check next."""
    tried = _tried(f, tunnel)
    err_en = f" — the driver said: {f.error}" if f.error else ""
    err_zh = f"——驱动返回：{f.error}" if f.error else ""
    who = f.user or "(default user)"
    what: Text
    if f.cause is None:
        ver = " ".join(x for x in (_SHOWN.get(f.product or "", f.product), f.version) if x)
        ed = f" ({f.edition})" if f.edition else ""
        priv = t(", every required privilege held", "，所需权限均已具备") if not f.missing_privileges and \
            f.stage == "done" else t("", "")
        q = f"{f.query_ms:g} ms" if f.query_ms is not None else "n/a"
        what = t(f"logged in to {ver}{ed} in {f.connect_ms:g} ms; SELECT 1 round trip {q} (median of {samples})"
                 f"{priv['en']}",
                 f"已登录 {ver}{ed}，登录耗时 {f.connect_ms:g} ms；SELECT 1 往返 {q}（{samples} 次中位数）"
                 f"{priv['zh-CN']}")
        return t(f"{tried['en']}: {what['en']}", f"{tried['zh-CN']}：{what['zh-CN']}")
    cause = f.cause
    port = f.port or "?"
    sqlite = f.product == "sqlite" or (not f.server and "sqlite" in (f.driver or "").lower())
    if cause == "driver-missing":
        what = detail or t("the driver could not be used", "无法使用该驱动")
    elif cause == "dns-error":
        what = t(f"the name {f.server} does not resolve at {_at(f.vantage)}",
                 f"名称 {f.server} 在{_at_zh(f.vantage)}无法解析")
        if detail:
            what = t(f"{what['en']} ({detail['en']})", f"{what['zh-CN']}（{detail['zh-CN']}）")
    elif cause == "port-refused":
        what = t(f"the connection to port {port} was refused — nothing listens there, the server is stopped, or a "
                 f"firewall REJECT rule answers for it",
                 f"到端口 {port} 的连接被拒绝——该端口无服务监听、数据库已停止，或防火墙 REJECT 规则代为拒绝")
    elif cause == "port-filtered":
        what = t(f"no answer from port {port} within {timeout:.3g} s — a firewall on the path or on the database "
                 f"host drops the packets (DROP)",
                 f"端口 {port} 在 {timeout:.3g} 秒内无应答——路径上或数据库主机上的防火墙丢弃了数据包（DROP）")
    elif cause == "timeout":
        what = t(f"the TCP port answered, but the {_stage_en(f.stage)} did not finish within {timeout:.3g} s — the "
                 f"server accepted the connection and then stayed silent",
                 f"TCP 端口可达，但{_stage_zh(f.stage)}未在 {timeout:.3g} 秒内完成——服务器接受了连接后没有应答")
    elif cause == "tls-error":
        what = t("the TLS negotiation with the server failed", "与服务器的 TLS 协商失败")
    elif cause == "auth-failed":
        what = t(f"the server answered and rejected user {who}: check the password and that the account is "
                 f"allowed from this host",
                 f"服务器已应答，但拒绝了用户 {f.user or '（默认用户）'}：请检查密码，以及该账号是否允许从本主机登录")
    elif cause == "database-missing" and sqlite:
        what = t("the database file does not exist or cannot be opened", "数据库文件不存在或无法打开")
    elif cause == "database-missing":
        what = t(f"the server accepted the login but has no database '{f.database}' (or does not let {who} open "
                 f"it)", f"服务器接受了登录，但没有数据库 '{f.database}'（或不允许 {f.user or '该用户'} 打开）")
    elif cause == "permission-denied" and f.stage == "database":
        what = t(f"user {who} may not use database '{f.database}' (MySQL/MariaDB also say so for a database that "
                 f"does not exist, to users without rights on it)",
                 f"用户 {f.user or '该用户'} 无权使用数据库 '{f.database}'（MySQL/MariaDB 对无权限用户访问不存在的"
                 f"数据库也这样报告）")
    elif cause == "permission-denied" and f.stage == "privileges":
        gone = [m for m in f.missing_privileges if m in absent]
        held = [m for m in f.missing_privileges if m not in absent]
        parts_en, parts_zh = [], []
        if held:
            parts_en.append(f"{who} lacks {', '.join(held)}")
            parts_zh.append(f"{f.user or '该用户'} 缺少权限 {', '.join(held)}")
        if gone:
            parts_en.append(f"no such object (or no database to qualify it) for {', '.join(gone)}")
            parts_zh.append(f"{', '.join(gone)} 所指对象不存在（或未指定数据库）")
        shown = _SHOWN.get(f.product or "", f.product)
        what = t(f"logged in ({shown}); " + "; ".join(parts_en), f"已登录（{shown}）；" + "；".join(parts_zh))
    elif cause == "permission-denied":
        what = t(f"logged in, but {who} may not run the {_stage_en(f.stage)} queries",
                 f"已登录，但 {f.user or '该用户'} 无权执行{_stage_zh(f.stage)}查询")
    else:
        what = t(f"the server answered with an error at the {_stage_en(f.stage)} stage",
                 f"服务器在{_stage_zh(f.stage)}阶段返回错误")
    if detail and cause not in ("driver-missing", "dns-error"):
        what = t(f"{what['en']} ({detail['en']})", f"{what['zh-CN']}（{detail['zh-CN']}）")
    keys = _NEXT_FOR.get(cause, ["logs"])
    if sqlite and cause in ("database-missing", "permission-denied"):
        keys = ["file"]
    if cause == "driver-missing" and f.dsn and f.stage == "driver" and not f.sqlstate:
        keys = ["dsn"]
    steps = [_NEXT[k] for k in keys]
    nxt_en = "; then ".join(s["en"].format(port=port) for s in steps)
    nxt_zh = "；然后".join(s["zh-CN"].format(port=port) for s in steps)
    return t(f"{tried['en']}: stopped at {f.stage} ({cause}): {what['en']}{err_en}. Next, check {nxt_en}.",
             f"{tried['zh-CN']}：在 {f.stage} 阶段终止（{cause}）：{what['zh-CN']}{err_zh}。下一步请检查{nxt_zh}。")


_SHOWN = {"postgresql": "PostgreSQL", "mariadb": "MariaDB", "mysql": "MySQL", "sqlserver": "SQL Server",
          "sqlite": "SQLite", "oracle": "Oracle", "dm": "DM", "kingbase": "KingbaseES", "other": "database"}


def _at(vantage: str) -> str:
    return "this machine" if vantage == "local" else vantage


def _at_zh(vantage: str) -> str:
    return "本机" if vantage == "local" else f" {vantage} "


def _stage_en(stage: str) -> str:
    return {"login": "login", "database": "database selection", "privileges": "privilege", "version": "version"}.get(
        stage, stage)


def _stage_zh(stage: str) -> str:
    return {"login": "登录", "database": "打开数据库", "privileges": "权限", "version": "版本"}.get(stage, stage)
