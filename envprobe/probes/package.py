"""``package``: is a package installed, which version, for which architectures, by which package manager.

One shell command per check (it joins the host's single batch over SSH). It picks the host's own package
database — dpkg when ``dpkg-query`` and ``/var/lib/dpkg/status`` exist (Debian, Ubuntu, UOS, Deepin, Kylin
desktop), else rpm (RHEL, CentOS, Rocky, openEuler, Kylin server, Anolis, …), else Alpine's
``/lib/apk/db/installed`` — and queries every name of the check at once:

* dpkg: ``dpkg-query -W -f='${Status}\\t${Package}\\t${Version}\\t${Architecture}\\n'``. ``${Status}`` (``install ok
  installed``, ``deinstall ok config-files`` …) is read by its third word, so a package removed with its
  configuration left behind (``rc`` in ``dpkg -l``) counts as **not** installed; ``${Status}`` is used instead of
  ``${db:Status-Abbrev}`` because every dpkg version knows it.
* rpm: ``rpm -q --qf '%{NAME}\\t%|EPOCH?{%{EPOCH}}:{0}|:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n'`` (the conditional
  gives the epoch or 0 on every rpm version; ``%{EPOCHNUM}`` needs rpm ≥ 4.9); ``package X is not installed``
  lines mean what they say.
* apk: the ``P:``/``V:``/``A:`` lines of the installed database.

Versions are :class:`envprobe.versions.PackageVersion` values: ``version: ">= 2.28-151"`` orders them as the
package manager does (see that module for what a value without a revision means). Several installed instances
of one package — multiarch (``libc6:amd64`` + ``libc6:i386``), multilib (``glibc.x86_64`` + ``glibc.i686``),
several kernels — are all listed in ``arches`` and ``versions``; ``version`` is the native architecture's, or
the highest.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Literal

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeError
from envprobe.schema import Field, Model, field_validator, model_validator
from envprobe.transport.base import CommandResult, Source
from envprobe.versions import PackageVersion, compare

_MARK = "@@envprobe:"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+:~@-]*$")

Manager = Literal["dpkg", "rpm", "apk", "none"]
State = Literal["installed", "config-files", "half-installed", "unpacked", "half-configured", "triggers-awaited",
                "triggers-pending", "not-installed"]
#: dpkg states in which the package's files are there and configured
_INSTALLED_STATES = ("installed", "triggers-pending", "triggers-awaited")
#: order for "the most installed" state among several names (for the report)
_STATE_RANK = {s: i for i, s in enumerate(
    ["installed", "triggers-pending", "triggers-awaited", "half-configured", "unpacked", "half-installed",
     "config-files", "not-installed"])}

RPM_QF = "%{NAME}\\t%|EPOCH?{%{EPOCH}}:{0}|:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n"
DPKG_FMT = "${Status}\\t${Package}\\t${Version}\\t${Architecture}\\n"


def _check_name(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("a package name is empty")
    if not _NAME.match(v):
        raise ValueError(f"{v!r} is not a package name (letters, digits and . + - _ : ~ only; no spaces or "
                         "wildcards); e.g. libaio1, glibc, glibc.i686, libc6:i386")
    return v


class PackageParams(Model):
    name: str | None = Field(default=None, description="the package name as the package manager knows it "
                             "(libaio1, glibc, openssl-libs); name:arch (libc6:i386) or name.arch "
                             "(glibc.i686) asks for one architecture; give this or any_of")
    any_of: list[str] | None = Field(default=None, description="alternative names, the first one installed "
                                     "counts (e.g. [libaio1, libaio1t64, libaio] across Debian, Ubuntu 24.04 "
                                     "and RHEL); the facts say which matched")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else _check_name(v)

    @field_validator("any_of")
    @classmethod
    def _any_of(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("any_of is empty; list at least one package name")
        return list(dict.fromkeys(_check_name(x) for x in v))

    @model_validator(mode="after")
    def _one(self) -> PackageParams:
        if (self.name is None) == (self.any_of is None):
            raise ValueError("give exactly one of name (a package name, e.g. libaio1) or any_of (a list of "
                             "alternative names, e.g. [libaio1, libaio])")
        return self

    def names(self) -> list[str]:
        return [self.name] if self.name is not None else list(self.any_of or [])


class PackageFacts(Facts):
    installed: bool | None = Field(description="the package (or one of any_of) is installed; null when the "
                                   "host has no package manager envprobe knows (dpkg, rpm, apk)")
    name: str | None = Field(description="which name matched: the name asked for, or the first of any_of that "
                             "is installed; null when none is")
    version: str | None = Field(description="installed version as the package manager prints it "
                                "(2.36-9+deb12u4, 5.14.0-70.22.1.el9_0, 1:1.1.1k-12.el8_9), compared the way "
                                "dpkg/rpm/apk order versions; the native architecture's instance, else the "
                                "highest")
    versions: list[str] = Field(default_factory=list, description="every installed version of the matched "
                                "package, highest first (several kernels, multilib instances)")
    arch: str | None = Field(description="architecture of that instance as the package manager names it "
                             "(amd64, arm64, all; x86_64, aarch64, noarch, i686)")
    arches: list[str] = Field(default_factory=list, description="every installed architecture of the matched "
                              "package (multiarch libc6: [amd64, i386]; multilib glibc: [x86_64, i686])")
    state: State = Field(description="installed, not-installed, config-files (removed, configuration left: "
                         "dpkg 'rc'), or a dpkg in-between state (unpacked, half-configured, half-installed, "
                         "triggers-pending, triggers-awaited)")
    manager: Manager = Field(description="the package manager whose database answered: dpkg, rpm, apk or none")


class _Row:
    __slots__ = ("name", "version", "arch", "state")

    def __init__(self, name: str, version: str, arch: str, state: str):
        self.name = name
        self.version = version
        self.arch = arch
        self.state = state


def package_command(names: list[str]) -> str:
    """One POSIX sh command asking the host's package database about ``names``."""
    q = " ".join(shlex.quote(n) for n in names)
    return (
        'if command -v dpkg-query >/dev/null 2>&1 && [ -f "${DPKG_ADMINDIR:-/var/lib/dpkg}/status" ]; then '
        f'echo {_MARK}manager dpkg; echo "{_MARK}native $(dpkg --print-architecture 2>/dev/null)"; '
        f"dpkg-query -W -f={shlex.quote(DPKG_FMT)} {q} 2>&1; echo \"{_MARK}rc $?\"; "
        "elif command -v rpm >/dev/null 2>&1; then "
        f'echo {_MARK}manager rpm; echo "{_MARK}native $(uname -m)"; '
        f"rpm -q --qf {shlex.quote(RPM_QF)} {q} 2>&1; echo \"{_MARK}rc $?\"; "
        "elif [ -f /lib/apk/db/installed ]; then "
        f'echo {_MARK}manager apk; echo "{_MARK}native $(uname -m)"; '
        f"grep -E '^[PVA]:' /lib/apk/db/installed; echo \"{_MARK}rc $?\"; "
        f"else echo {_MARK}manager none; fi"
    )


def _rows_dpkg(lines: list[str]) -> list[_Row]:
    rows = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) != 4:
            continue  # "dpkg-query: no packages found matching X" and other messages
        status, name, version, arch = (p.strip() for p in parts)
        words = status.split()
        state = words[2] if len(words) == 3 else "not-installed"
        if state not in _STATE_RANK:
            state = "not-installed"
        rows.append(_Row(name, version, arch, state))
    return rows


def _rows_rpm(lines: list[str]) -> list[_Row]:
    rows = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) != 3:
            continue  # "package X is not installed"
        name, evr, arch = (p.strip() for p in parts)
        if evr.startswith("0:"):
            evr = evr[2:]  # rpm prints no epoch when it is 0; neither do we
        rows.append(_Row(name, evr, arch, "installed"))
    return rows


def _rows_apk(lines: list[str]) -> list[_Row]:
    rows: list[_Row] = []
    cur: dict[str, str] = {}

    def flush() -> None:
        if "P" in cur and "V" in cur:
            rows.append(_Row(cur["P"], cur["V"], cur.get("A", ""), "installed"))

    for line in lines:
        key, _, value = line.partition(":")
        if key == "P":
            flush()
            cur = {}
        if key in ("P", "V", "A"):
            cur[key] = value.strip()
    flush()
    return rows


def _matches(req: str, row: _Row, manager: str) -> bool:
    if req == row.name:
        return True
    if manager == "dpkg":
        return req == f"{row.name}:{row.arch}"
    if manager == "rpm":
        # name.arch, name-version, name-version-release (what rpm -q accepts)
        return req == f"{row.name}.{row.arch}" or req.startswith(row.name + "-") and (
            f"{row.name}-{row.version.split(':', 1)[-1]}".startswith(req))
    if manager == "apk":
        return False
    return False


def parse_package(names: list[str], text: str) -> PackageFacts:
    """The output of :func:`package_command` → facts. Pure."""
    manager = ""
    native = ""
    rc: int | None = None
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith(_MARK):
            word, _, rest = line[len(_MARK):].partition(" ")
            if word == "manager":
                manager = rest.strip()
            elif word == "native":
                native = rest.strip()
            elif word == "rc":
                rc = int(rest) if rest.strip().lstrip("-").isdigit() else None
            continue
        body.append(line)
    if manager == "none":
        return PackageFacts(installed=None, name=None, version=None, versions=[], arch=None, arches=[],
                            state="not-installed", manager="none")
    if manager not in ("dpkg", "rpm", "apk"):
        why = next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")
        raise ProbeError(t(f"the package query did not run on the host ({why[:200]})",
                           f"主机上的软件包查询未能执行（{why[:200]}）"))
    errors = [ln.strip() for ln in body if ln.lower().startswith(("error:", "error "))
              or (manager == "dpkg" and ln.startswith("dpkg-query:") and "no packages found" not in ln)]
    if errors and rc not in (0, None) and (manager != "rpm" or not _rows_rpm(body)):
        raise ProbeError(
            t(f"{manager} could not read its package database: {errors[0][:200]}",
              f"{manager} 无法读取软件包数据库：{errors[0][:200]}"),
            hint=t("run the query by hand on the host (dpkg-query -W NAME / rpm -q NAME) and fix the package "
                   "database first", "请在主机上手动执行查询（dpkg-query -W 包名 / rpm -q 包名），先修复软件包数据库"))
    rows = {"dpkg": _rows_dpkg, "rpm": _rows_rpm, "apk": _rows_apk}[manager](body)
    scheme = {"dpkg": "deb", "rpm": "rpm", "apk": "apk"}[manager]

    best_state = "not-installed"
    for req in names:
        mine = [r for r in rows if _matches(req, r, manager)]
        for r in mine:
            if _STATE_RANK[r.state] < _STATE_RANK[best_state]:
                best_state = r.state
        present = [r for r in mine if r.state in _INSTALLED_STATES]
        if not present:
            continue
        ordered = _newest_first(present, scheme)
        chosen = next((r for r in ordered if r.arch == native), None) or ordered[0]
        versions = list(dict.fromkeys(r.version for r in ordered))
        arches = list(dict.fromkeys([chosen.arch] + sorted(r.arch for r in present)))
        return PackageFacts(installed=True, name=req, version=PackageVersion(chosen.version, scheme),
                            versions=[PackageVersion(v, scheme) for v in versions], arch=chosen.arch,
                            arches=arches, state=chosen.state, manager=manager)
    return PackageFacts(installed=False, name=None, version=None, versions=[], arch=None, arches=[],
                        state=best_state, manager=manager)


def _newest_first(rows: list[_Row], scheme: str) -> list[_Row]:
    import functools

    def cmp(a: _Row, b: _Row) -> int:
        try:
            return -compare(a.version, b.version, scheme)
        except ValueError:
            return 0

    return sorted(rows, key=functools.cmp_to_key(cmp))


class PackageProbe(Probe):
    name = "package"
    summary = t("An installed package: version (ordered as dpkg/rpm order them), architectures, package manager",
                "软件包是否安装：版本（按 dpkg/rpm 的规则比较）、架构、包管理器")
    Params = PackageParams
    Facts = PackageFacts
    requires = t("no privileges; dpkg-query (Debian family), rpm (RHEL family) or apk (Alpine) on the host",
                 "无需特权；主机上需有 dpkg-query（Debian 系）、rpm（RHEL 系）或 apk（Alpine）")
    example = """\
- id: pkg-libaio
  title: {zh-CN: 依赖包 libaio, en: libaio package}
  probe: package
  with: {any_of: [libaio1, libaio1t64, libaio]}
  expect: {installed: true, version: ">= 0.3.109"}
"""
    advice = {
        "installed": t("install the package with the host's package manager (apt-get install NAME / "
                       "yum install NAME / dnf install NAME); offline sites: from the OS installation media",
                       "用主机的包管理器安装该软件包（apt-get install 包名 / yum install 包名 / dnf install 包名）；"
                       "离线环境可从操作系统安装介质（ISO）配置本地源安装"),
        "version": t("upgrade the package to the required version (apt-get install --only-upgrade NAME / "
                     "yum update NAME), or ask the vendor whether this version is supported",
                     "将软件包升级到要求的版本（apt-get install --only-upgrade 包名 / yum update 包名），"
                     "或向厂商确认当前版本是否受支持"),
        "arch": t("install the package for the required architecture (e.g. NAME:i386 on Debian, NAME.i686 on "
                  "RHEL)", "请安装所需架构的软件包（Debian 如 包名:i386，RHEL 如 包名.i686）"),
        "arches": t("install the missing architecture's package too (multiarch/multilib: e.g. glibc.i686 for "
                    "32-bit programs)", "请同时安装缺少的架构的软件包（如 32 位程序需要 glibc.i686）"),
        "state": t("finish or repair the package's installation (dpkg --configure -a; apt-get -f install)",
                   "请完成或修复该软件包的安装（dpkg --configure -a；apt-get -f install）"),
        "*": t("query the package on the host: dpkg -l NAME (Debian/Ubuntu/UOS) or rpm -q NAME "
               "(RHEL/Kylin/openEuler)", "在主机上查询该软件包：dpkg -l 包名（Debian/Ubuntu/UOS）或 rpm -q 包名"
               "（RHEL/麒麟/openEuler）"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [Source.command(package_command(params.names()))]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> PackageFacts:
        src = self.sources(params)[0]
        res = data.get(src)
        if res is None or res.timed_out:
            raise ProbeError(t("the package query did not finish in time", "软件包查询超时"))
        return parse_package(params.names(), res.stdout + ("\n" + res.stderr if res.stderr else ""))

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, PackageFacts)
        names = ", ".join(params.names())
        if facts.manager == "none":
            return t(f"no package manager envprobe knows (dpkg, rpm, apk) was found, so whether {names} is "
                     "installed cannot be told; check the software itself (probe: software or file)",
                     f"未找到 envprobe 支持的包管理器（dpkg、rpm、apk），无法判断 {names} 是否安装；"
                     "请直接检查软件本身（probe: software 或 file）")
        if facts.state == "config-files":
            return t(f"{names}: removed, but its configuration files are still there (dpkg status 'rc')",
                     f"{names}：已卸载，但配置文件仍保留（dpkg 状态 rc）")
        if facts.installed and len(facts.versions) > 1:
            return t(f"{len(facts.versions)} versions installed: {', '.join(facts.versions)}",
                     f"已安装 {len(facts.versions)} 个版本：{'、'.join(facts.versions)}")
        return None
