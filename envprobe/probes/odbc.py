"""``odbc``: which ODBC drivers and data sources (DSNs) a host has — "is ODBC Driver 18 for SQL Server installed on
app01?" before anyone travels to the site.

Two paths that must agree:

* **this machine** (native): ``pyodbc.drivers()`` and ``pyodbc.dataSources()`` — what the driver manager
  (unixODBC, iODBC, or Windows' ODBC) reports, the very list the ``db`` probe's logins use;
* **any POSIX host** (the shell path, batched with the host's other sources in one round trip over SSH):
  ``odbcinst -q -d`` and ``odbcinst -q -s`` (unixODBC's own tool, so its configuration paths and
  ``ODBCSYSINI`` are honoured); when ``odbcinst`` is not installed, the sections of ``/etc/odbcinst.ini``,
  ``/etc/odbc.ini`` and the login user's ``~/.odbc.ini`` are read instead (``source`` says which). Nothing is
  installed on the host.

DSN lists leave out the ``[ODBC]`` (driver-manager settings) and ``[ODBC Data Sources]`` sections, which
``odbcinst -q -s`` and ``pyodbc.dataSources()`` would otherwise show as if they were data sources. With no DSN
defined, ``odbcinst -q -s`` exits 1 and prints ``SQLGetPrivateProfileString failed``: that is an empty list.
A driver that is registered but whose library file is missing (Debian's ``SQLite`` entry without
libsqliteodbc's old library) is still listed — the registration is what the driver manager knows; the ``db``
probe's login reports the missing library as ``driver-missing``.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Literal

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator, stripped_nonempty
from envprobe.transport.base import CommandResult, Source

#: Sections of odbc.ini / odbcinst.ini that configure the driver manager and are no driver or data source.
NOT_ENTRIES = {"odbc", "odbc data sources", "odbc drivers"}

Q_DRIVERS = Source.command("odbcinst -q -d")
Q_DSNS = Source.command("odbcinst -q -s")
F_ODBCINST = Source.file("/etc/odbcinst.ini")
F_ODBC = Source.file("/etc/odbc.ini")
C_USER_DSNS = Source.command('cat "$HOME/.odbc.ini"')

_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")
_NO_ENTRIES = "SQLGetPrivateProfileString failed"


def sections(text: str) -> list[str]:
    """Section names of an ini file, or of ``odbcinst -q`` output (one ``[name]`` per line), in order, each once,
    without the driver manager's own sections."""
    out: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith(("#", ";")):
            continue
        m = _SECTION.match(line)
        if m:
            name = m.group("name").strip()
            if name.lower() not in NOT_ENTRIES and name not in out:
                out.append(name)
    return out


def _missing_tool(res: CommandResult | None) -> bool:
    if res is None:
        return True
    text = f"{res.stdout}\n{res.stderr}".lower()
    return res.rc == 127 or ("odbcinst" in text and "not found" in text and _NO_ENTRIES.lower() not in text)


def parse_odbcinst(res: CommandResult, what: str) -> list[str]:
    """``odbcinst -q -d`` / ``-q -s`` → names. Exit 1 with ``SQLGetPrivateProfileString failed`` means none."""
    if res.rc == 0:
        return sections(res.stdout)
    if _NO_ENTRIES in res.stdout or _NO_ENTRIES in res.stderr:
        return []
    detail = (res.stderr.strip() or res.stdout.strip() or f"exit code {res.rc}").splitlines()[0][:200]
    raise ProbeError(t(f"odbcinst {what} failed on the host: {detail}", f"主机上执行 odbcinst {what} 失败：{detail}"))


def _file_text(res: CommandResult | None) -> str:
    return res.stdout if res is not None and res.rc == 0 and not res.timed_out else ""


class OdbcParams(Model):
    driver: str | None = Field(default=None,
                               description="a driver to look for: its exact name (case does not matter, as for the "
                                           "driver manager) or a pattern with * (e.g. 'ODBC Driver * for SQL "
                                           "Server'); sets installed and matched")
    dsn: str | None = Field(default=None, description="a data source name to look for; sets dsn_defined")

    @field_validator("driver", "dsn")
    @classmethod
    def _strip(cls, v: str | None) -> str | None:
        return stripped_nonempty(v)


class OdbcFacts(Facts):
    drivers: list[str] = Field(description="ODBC drivers registered on the host, in the driver manager's order")
    dsns: list[str] = Field(description="data source names defined on the host (the login user's and the "
                                        "system's)")
    installed: bool | None = Field(description="a driver matching the driver parameter is registered (null "
                                               "without the parameter)")
    matched: list[str] = Field(description="the registered drivers that match the driver parameter")
    dsn_defined: bool | None = Field(description="the dsn parameter is defined (null without the parameter)")
    source: Literal["pyodbc", "odbcinst", "ini-files"] = Field(
        description="where the lists come from: pyodbc (this machine), odbcinst (a host's unixODBC tool) or "
                    "ini-files (/etc/odbcinst.ini, /etc/odbc.ini, ~/.odbc.ini when odbcinst is not installed)")


def _match(pattern: str, names: list[str]) -> list[str]:
    p = pattern.lower()
    if "*" in p or "?" in p:
        return [n for n in names if fnmatch.fnmatchcase(n.lower(), p)]
    return [n for n in names if n.lower() == p]


def odbc_facts(params: Any, drivers: list[str], dsns: list[str], source: str) -> OdbcFacts:
    matched = _match(params.driver, drivers) if params.driver else []
    defined = None
    if params.dsn:
        defined = any(d.lower() == params.dsn.lower() for d in dsns)
    return OdbcFacts(drivers=drivers, dsns=dsns, installed=bool(matched) if params.driver else None,
                     matched=matched, dsn_defined=defined, source=source)


class OdbcProbe(Probe):
    name = "odbc"
    summary = t("List the ODBC drivers and data sources (DSNs) installed on a host, and look for one",
                "列出主机上已安装的 ODBC 驱动和数据源（DSN），并查找指定的驱动或数据源")
    Params = OdbcParams
    Facts = OdbcFacts
    example = """\
- id: sqlserver-odbc-driver
  title: {zh-CN: 已安装 SQL Server ODBC 驱动, en: SQL Server ODBC driver installed}
  probe: odbc
  with: {driver: "ODBC Driver 18 for SQL Server"}
  expect: {installed: true}
"""
    advice = {
        "installed": t("install the driver on this host (Microsoft: msodbcsql18 from packages.microsoft.com; "
                       "PostgreSQL: odbc-postgresql / postgresql-odbc; MariaDB: odbc-mariadb / "
                       "mariadb-connector-odbc; "
                       "DM and KingbaseES: the vendor's client package) and register it (odbcinst -i -d)",
                       "请在该主机上安装驱动（微软：packages.microsoft.com 的 msodbcsql18；"
                       "PostgreSQL：odbc-postgresql / postgresql-odbc；MariaDB：odbc-mariadb / "
                       "mariadb-connector-odbc；达梦、人大金仓：厂商客户端安装包），并注册（odbcinst -i -d）"),
        "dsn_defined": t("define the DSN in /etc/odbc.ini (system) or ~/.odbc.ini (the application's user), or "
                         "have the application use a DSN-less connection string",
                         "请在 /etc/odbc.ini（系统级）或应用用户的 ~/.odbc.ini 中定义该 DSN，或让应用改用不依赖 DSN 的"
                         "连接字符串"),
        "*": t("list them by hand: odbcinst -q -d (drivers), odbcinst -q -s (DSNs), odbcinst -j (config files)",
               "手动查看：odbcinst -q -d（驱动）、odbcinst -q -s（DSN）、odbcinst -j（配置文件位置）"),
    }
    requires = t("no privilege. This machine: pyodbc. Other hosts: odbcinst (unixODBC) if installed, else the "
                 "ini files are read; nothing is installed",
                 "无需特权。本机：pyodbc。其他主机：有 odbcinst（unixODBC）时使用它，否则读取 ini 配置文件；"
                 "无需安装任何软件")
    has_native = True

    def __init__(self) -> None:
        self._where = "local"

    # -- the shell path ---------------------------------------------------------------------------------
    def sources(self, params: Any) -> list[Source]:
        return [Q_DRIVERS, Q_DSNS, F_ODBCINST, F_ODBC, C_USER_DSNS]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> OdbcFacts:
        qd, qs = data.get(Q_DRIVERS), data.get(Q_DSNS)
        if qd is not None and qd.timed_out:
            raise ProbeError(t("odbcinst -q -d did not finish in time on the host",
                               "主机上的 odbcinst -q -d 执行超时"))
        if not _missing_tool(qd) and qd is not None and qs is not None:
            return odbc_facts(params, parse_odbcinst(qd, "-q -d"), parse_odbcinst(qs, "-q -s"), "odbcinst")
        drivers = sections(_file_text(data.get(F_ODBCINST)))
        dsns = sections(_file_text(data.get(C_USER_DSNS)))
        dsns += [d for d in sections(_file_text(data.get(F_ODBC))) if d not in dsns]
        return odbc_facts(params, drivers, dsns, "ini-files")

    # -- this machine ------------------------------------------------------------------------------------
    def collect_native(self, ctx: ProbeContext, params: Any) -> OdbcFacts:
        try:
            import pyodbc
        except ImportError:  # no pyodbc: read what the host's tools say, as for a remote host
            return self.parse(params, ctx.fetch(self.sources(params)))
        try:
            drivers = [str(d) for d in pyodbc.drivers()]
            dsns = [str(k) for k in pyodbc.dataSources() if str(k).lower() not in NOT_ENTRIES]
        except pyodbc.Error as exc:
            raise ProbeError(t(f"the ODBC driver manager could not list drivers: {exc}",
                               f"ODBC 驱动管理器无法列出驱动：{exc}"),
                             t("check the unixODBC installation (odbcinst -j)",
                               "请检查 unixODBC 安装（odbcinst -j）")) from exc
        return odbc_facts(params, list(dict.fromkeys(drivers)), list(dict.fromkeys(dsns)), "pyodbc")

    def collect(self, ctx: ProbeContext, params: Any) -> OdbcFacts:
        self._where = ctx.host
        facts = super().collect(ctx, params)
        assert isinstance(facts, OdbcFacts)
        return facts

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, OdbcFacts)
        where_en = "this machine" if self._where == "local" else self._where
        where_zh = "本机" if self._where == "local" else self._where
        drv = ", ".join(facts.drivers) or "none"
        drv_zh = "、".join(facts.drivers) or "无"
        parts = [t(f"ODBC on {where_en}: {len(facts.drivers)} driver(s) ({drv}), {len(facts.dsns)} DSN(s)",
                   f"{where_zh}的 ODBC：{len(facts.drivers)} 个驱动（{drv_zh}），{len(facts.dsns)} 个 DSN")]
        if params.driver:
            if facts.installed:
                parts.append(t(f"'{params.driver}' is installed ({', '.join(facts.matched)})",
                               f"已安装 '{params.driver}'（{'、'.join(facts.matched)}）"))
            else:
                parts.append(t(f"'{params.driver}' is not installed", f"未安装 '{params.driver}'"))
        if params.dsn:
            parts.append(t(f"DSN '{params.dsn}' is {'defined' if facts.dsn_defined else 'not defined'}",
                           f"DSN '{params.dsn}' {'已定义' if facts.dsn_defined else '未定义'}"))
        if facts.source == "ini-files":
            parts.append(t("odbcinst is not installed: read from the ini files",
                           "未安装 odbcinst：结果来自 ini 配置文件"))
        return {"en": "; ".join(p["en"] for p in parts), "zh-CN": "；".join(p["zh-CN"] for p in parts)}
