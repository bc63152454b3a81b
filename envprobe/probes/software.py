"""``software``: is a runtime or server program there, which version, where.

For a known ``name`` envprobe knows where the program usually lives and how it reports its version, including
the quirks: ``java -version`` and ``nginx -v`` write to stderr; Python 2 writes ``--version`` to stderr and
Python 3 to stdout; glibc is asked through ``getconf GNU_LIBC_VERSION`` (``ldd --version`` when getconf cannot
tell); Tomcat's version is read from ``lib/catalina.jar`` (``org/apache/catalina/util/ServerInfo.properties``,
with ``unzip``), else ``RELEASE-NOTES``, else ``bin/version.sh``; .NET lists its runtimes with
``dotnet --list-runtimes``; MySQL and MariaDB clients print ``Ver 15.1 Distrib 10.11.6-MariaDB`` (the Distrib
part is the version). Anything else: a custom ``command`` with a ``version_regex``.

The program is looked up on the host's ``PATH`` (a non-login SSH session's PATH, often without ``/usr/sbin``),
then in the usual install locations of that program (``/usr/sbin/nginx``, ``/usr/lib/jvm/*/bin/java``,
``/usr/lib/postgresql/*/bin/postgres`` …), or exactly where ``path``/``home`` say. Every output is read with
both streams merged (``2>&1``) and ``LC_ALL=C``; each version command is bounded by ``timeout 10`` where the host
has it.

One shell command per check (it joins the host's single batch over SSH); a custom ``command`` runs apart, under
its own timeout, like the ``command`` probe's. The version is a string ordered segment by segment (rpm's rules:
``1.8.0_381`` > ``1.8.0_201``, ``1.1.1w`` > ``1.1.1k``, ``17.0.15`` > ``1.8.0_381``); ``== 1.8`` matches every
1.8.x.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeError
from envprobe.record import record
from envprobe.schema import Field, Model, field_validator, model_validator
from envprobe.transport.base import CommandResult, Source
from envprobe.versions import PackageVersion, compare

_MARK = "@@envprobe:"


@record(frozen=True)
class Spec:
    #: program names tried on PATH, then absolute paths and globs of usual install locations
    candidates: tuple[str, ...]
    #: arguments that make the program print its version
    args: str
    #: regular expressions tried in order; group 1 is the version
    patterns: tuple[str, ...]
    #: every match of the first pattern is a version (dotnet's runtime list); the highest is ``version``
    all_matches: bool = False
    #: (regex, vendor) tried in order on the output
    vendors: tuple[tuple[str, str], ...] = ()


_JAVA_VENDORS = (
    (r"Temurin", "Temurin"), (r"Zulu", "Zulu"), (r"(?i)bisheng", "BiSheng"), (r"Dragonwell", "Dragonwell"),
    (r"Kona", "Kona"), (r"Corretto", "Corretto"), (r"Semeru", "IBM Semeru"), (r"IBM J9|IBM Corporation", "IBM"),
    (r"Microsoft", "Microsoft"), (r"GraalVM", "GraalVM"), (r"Red_Hat|Red Hat", "Red Hat"),
    (r"Java\(TM\) SE|Java HotSpot", "Oracle"), (r"OpenJDK", "OpenJDK"),
)

SPECS: dict[str, Spec] = {
    "java": Spec(("java", "/usr/lib/jvm/default-java/bin/java", "/usr/lib/jvm/*/bin/java", "/usr/java/*/bin/java",
                  "/usr/local/java/*/bin/java", "/opt/java/*/bin/java", "/opt/jdk*/bin/java"),
                 "-version", (r'version "([^"]+)"', r"(?:openjdk|java) (\d[\w.+-]*)"), vendors=_JAVA_VENDORS),
    "python": Spec(("python3", "python"), "--version", (r"Python (\d[\w.+]*)",)),
    "python3": Spec(("python3",), "--version", (r"Python (\d[\w.+]*)",)),
    "python2": Spec(("python2", "python2.7", "python"), "--version", (r"Python (2\.[\w.+]*)",)),
    "node": Spec(("node", "nodejs"), "--version", (r"^v?(\d+\.\d+\.\d+\S*)",)),
    "dotnet": Spec(("dotnet", "/usr/share/dotnet/dotnet", "/usr/lib/dotnet/dotnet", "/usr/lib64/dotnet/dotnet"),
                   "--list-runtimes", (r"Microsoft\.NETCore\.App (\d[\w.+-]*)",), all_matches=True),
    "nginx": Spec(("nginx", "/usr/sbin/nginx", "/usr/local/nginx/sbin/nginx",
                   "/usr/local/openresty/nginx/sbin/nginx", "/opt/nginx/sbin/nginx"),
                  "-v", (r"(?:nginx|openresty|Tengine)/(\d[\w.]*)",),
                  vendors=((r"openresty", "OpenResty"), (r"Tengine", "Tengine"), (r"nginx", "nginx"))),
    "httpd": Spec(("httpd", "apache2", "/usr/sbin/httpd", "/usr/sbin/apache2", "/usr/local/apache2/bin/httpd"),
                  "-v", (r"Apache/(\d[\w.]*)",)),
    "openssl": Spec(("openssl",), "version", (r"^(?:OpenSSL|LibreSSL|BabaSSL|Tongsuo)\s+(\d[\w.]*)",),
                    vendors=((r"^LibreSSL", "LibreSSL"), (r"^(?:BabaSSL|Tongsuo)", "Tongsuo"),
                             (r"^OpenSSL", "OpenSSL"))),
    "perl": Spec(("perl",), "-v", (r"\(v(\d+\.\d+\.\d+)\)", r"perl,? v(\d+\.\d+\.\d+)")),
    "php": Spec(("php", "php-cli"), "-v", (r"^PHP (\d+\.\d+\.\d+)",)),
    "go": Spec(("go", "/usr/local/go/bin/go", "/usr/lib/go/bin/go"), "version", (r"go version go(\d[\w.]*)",)),
    "docker": Spec(("docker",), "--version", (r"[Vv]ersion (\d[\w.+-]*?)(?:,|\s|$)",),
                   vendors=((r"podman", "Podman"), (r"Docker", "Docker"))),
    "podman": Spec(("podman",), "--version", (r"version (\d[\w.+-]*)",)),
    "git": Spec(("git",), "--version", (r"git version (\d[\w.]*?)(?:\.windows\.\d+)?(?:\s|$)",)),
    "psql": Spec(("psql", "/usr/lib/postgresql/*/bin/psql", "/usr/pgsql-*/bin/psql", "/usr/local/pgsql/bin/psql"),
                 "--version", (r"\(PostgreSQL\) (\d[\w.]*)",)),
    "postgresql": Spec(("postgres", "/usr/lib/postgresql/*/bin/postgres", "/usr/pgsql-*/bin/postgres",
                        "/usr/local/pgsql/bin/postgres"), "--version", (r"\(PostgreSQL\) (\d[\w.]*)",)),
    "mysql": Spec(("mysql", "mariadb", "/usr/local/mysql/bin/mysql"), "--version",
                  (r"Distrib (\d[\d.]*)", r"\bfrom (\d[\d.]*)-MariaDB", r"Ver (\d[\d.]*)"),
                  vendors=((r"MariaDB|mariadb", "MariaDB"), (r"Percona", "Percona"), (r".", "MySQL"))),
    "mysqld": Spec(("mysqld", "mariadbd", "/usr/sbin/mysqld", "/usr/sbin/mariadbd", "/usr/libexec/mysqld",
                    "/usr/local/mysql/bin/mysqld"), "--version", (r"Ver (\d[\d.]*)",),
                   vendors=((r"MariaDB", "MariaDB"), (r"Percona", "Percona"), (r".", "MySQL"))),
    "redis": Spec(("redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"), "--version",
                  (r"v=(\d[\w.]*)",)),
    "ruby": Spec(("ruby",), "--version", (r"^ruby (\d[\w.]*)",)),
    "gcc": Spec(("gcc",), "--version", (r"(?m)^gcc .*?(\d+\.\d+(?:\.\d+)?)\s*$",)),
    "curl": Spec(("curl",), "--version", (r"^curl (\d[\w.]*)",)),
}
ALIASES = {
    "apache": "httpd", "apache2": "httpd", "nodejs": "node", "golang": "go", "postgres": "postgresql",
    "pgsql": "postgresql", "mariadb": "mysql", "mariadbd": "mysqld", "redis-server": "redis", "jdk": "java",
    "jre": "java",
}
SPECIAL = ("glibc", "tomcat")
TOMCAT_HOMES = ('"$CATALINA_HOME"', "/opt/tomcat*", "/opt/apache-tomcat*", "/usr/local/tomcat*",
                "/usr/local/apache-tomcat*", "/usr/share/tomcat*", "/opt/*/tomcat*")
KNOWN = tuple(sorted([*SPECS, *SPECIAL]))

_TIMEOUT = "T=; command -v timeout >/dev/null 2>&1 && T='timeout -k 1 10'; "


class SoftwareParams(Model):
    name: str | None = Field(default=None, description="a known program: " + ", ".join(KNOWN) +
                             " (aliases: apache, nodejs, golang, postgres, mariadb, jdk …); or give command")
    command: str | None = Field(default=None, description="instead of name: a shell command that prints the "
                                "version (e.g. '/opt/dm8/bin/disql -id'); needs version_regex")
    version_regex: str | None = Field(default=None, description="with command: a regular expression whose "
                                      "first group (or whole match) is the version, searched in stdout+stderr")
    path: str | None = Field(default=None, description="with name: the program to ask, when it is not where "
                             "envprobe looks (e.g. /opt/jdk-17/bin/java)")
    home: str | None = Field(default=None, description="with name: the installation directory (JAVA_HOME, "
                             "CATALINA_HOME for tomcat, /usr/local/nginx …); the program is looked for in its "
                             "bin/ and sbin/")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        key = v.strip().lower()
        key = ALIASES.get(key, key)
        if key not in SPECS and key not in SPECIAL:
            import difflib

            close = difflib.get_close_matches(key, [*KNOWN, *ALIASES], n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ValueError(f"unknown software {v!r}{hint} Known: {', '.join(KNOWN)}; for anything else give "
                             "command and version_regex")
        return key

    @field_validator("version_regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"version_regex {v!r} is not a valid regular expression: {exc}") from None
        return v

    @field_validator("path", "home")
    @classmethod
    def _abs(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip()
        if not v.startswith("/") or "\n" in v or "\x00" in v:
            raise ValueError(f"{v!r} is not an absolute path")
        return v.rstrip("/") or "/"

    @field_validator("command")
    @classmethod
    def _command(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("command is empty")
        return v

    @model_validator(mode="after")
    def _shape(self) -> SoftwareParams:
        if (self.name is None) == (self.command is None):
            raise ValueError("give exactly one of name (a known program such as java) or command (with "
                             "version_regex)")
        if self.command is not None:
            if self.version_regex is None:
                raise ValueError("command needs version_regex (e.g. 'V(\\d+\\.\\d+)') to find the version")
            if self.path is not None or self.home is not None:
                raise ValueError("path and home go with name; with command, write the full path in the command")
        elif self.version_regex is not None:
            raise ValueError("version_regex goes with command; a known name knows its own")
        if self.path is not None and self.home is not None:
            raise ValueError("give path (the program) or home (its installation directory), not both")
        if self.name == "tomcat" and self.path is not None:
            raise ValueError("for tomcat give home (CATALINA_HOME), not path")
        return self


class SoftwareFacts(Facts):
    installed: bool = Field(description="the program was found (glibc: the C library is GNU libc; tomcat: a "
                            "directory with lib/catalina.jar; command: the command ran, exit code not 126/127)")
    version: str | None = Field(description="its version as it reports it (17.0.15, 1.8.0_381, 1.22.1, "
                                "3.0.2); ordered segment by segment, so >= 1.8.0_201 and == 17 work; null when "
                                "not found or not recognised")
    major: int | None = Field(description="the major version: the first number (java 1.8.x counts as 8)")
    versions: list[str] = Field(default_factory=list, description="every version found, highest first (.NET "
                                "lists each installed runtime; otherwise the one version)")
    vendor: str | None = Field(description="who built it, where the output says (java: Oracle, OpenJDK, "
                               "Temurin, BiSheng, Dragonwell, Kona, Zulu, Corretto, IBM Semeru, Red Hat; nginx: "
                               "nginx, OpenResty, Tengine; mysql: MySQL, MariaDB, Percona; openssl: OpenSSL, "
                               "Tongsuo, LibreSSL)")
    path: str | None = Field(description="the program that answered (tomcat: its CATALINA_HOME)")
    raw: str | None = Field(description="the output line the version was read from (else the first line)")
    exit_code: int | None = Field(description="exit status of the version command (null when not run)")


def _word_list(words: tuple[str, ...]) -> str:
    """Candidates for a ``for c in …`` list: plain names and absolute paths quoted, globs left to expand."""
    out = []
    for w in words:
        if w.startswith('"') or any(ch in w for ch in "*?["):
            out.append(w)
        else:
            out.append(shlex.quote(w))
    return " ".join(out)


def software_command(params: Any) -> str:
    """The POSIX sh command that finds and asks one program (known names)."""
    name = params.name
    if name == "glibc":
        return (
            f"{_TIMEOUT}if p=$(command -v getconf 2>/dev/null) && v=$(getconf GNU_LIBC_VERSION 2>/dev/null); "
            f'then echo "{_MARK}path $p"; echo "$v"; echo "{_MARK}rc 0"; '
            f"elif p=$(command -v ldd 2>/dev/null); then echo \"{_MARK}path $p\"; $T \"$p\" --version 2>&1; "
            f'echo "{_MARK}rc $?"; else echo {_MARK}missing; fi'
        )
    if name == "tomcat":
        homes = shlex.quote(params.home) if params.home else " ".join(TOMCAT_HOMES)
        return (
            f'{_TIMEOUT}h=; for d in {homes}; do if [ -f "$d/lib/catalina.jar" ]; then h=$d; break; fi; done; '
            f'if [ -z "$h" ]; then echo {_MARK}missing; '
            f'else echo "{_MARK}path $h"; '
            "if command -v unzip >/dev/null 2>&1 && "
            'unzip -p "$h/lib/catalina.jar" org/apache/catalina/util/ServerInfo.properties 2>/dev/null; '
            f'then echo "{_MARK}rc 0"; '
            f"elif [ -f \"$h/RELEASE-NOTES\" ]; then grep -m 1 'Apache Tomcat Version' \"$h/RELEASE-NOTES\"; "
            f'echo "{_MARK}rc $?"; '
            f'elif [ -f "$h/bin/version.sh" ]; then $T sh "$h/bin/version.sh" 2>&1; echo "{_MARK}rc $?"; '
            f"else echo \"{_MARK}rc 1\"; fi; fi"
        )
    spec = SPECS[name]
    if params.path:
        cands = shlex.quote(params.path)
    elif params.home:
        names = [c for c in spec.candidates if "/" not in c]
        cands = " ".join(shlex.quote(f"{params.home}/{d}/{n}") for n in names for d in ("bin", "sbin")) + \
            " " + " ".join(shlex.quote(f"{params.home}/{n}") for n in names)
    else:
        cands = _word_list(spec.candidates)
    return (
        f"{_TIMEOUT}p=; for c in {cands}; do p=$(command -v \"$c\" 2>/dev/null) && [ -n \"$p\" ] && break; "
        f"p=; done; "
        f'if [ -n "$p" ]; then echo "{_MARK}path $p"; $T "$p" {spec.args} 2>&1; echo "{_MARK}rc $?"; '
        f"else echo {_MARK}missing; fi"
    )


def custom_command(command: str) -> str:
    """A user's version command, with the program's path looked up first."""
    try:
        first = shlex.split(command)[0]
    except (ValueError, IndexError):
        first = ""
    lookup = ""
    if first and "=" not in first:
        lookup = f'p=$(command -v {shlex.quote(first)} 2>/dev/null) && echo "{_MARK}path $p"; '
    return f"{lookup}( {command}\n) 2>&1; echo \"{_MARK}rc $?\""


def _split_output(text: str) -> tuple[bool, str | None, list[str], int | None]:
    """(missing?, path, output lines, exit code) from the marked output."""
    missing = False
    path: str | None = None
    rc: int | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(_MARK):
            word, _, rest = line[len(_MARK):].partition(" ")
            if word == "missing":
                missing = True
            elif word == "path":
                path = rest.strip() or None
            elif word == "rc":
                rc = int(rest) if rest.strip().lstrip("-").isdigit() else None
            continue
        lines.append(line)
    return missing, path, lines, rc


def _major(version: str, name: str | None) -> int | None:
    nums = re.findall(r"\d+", version)
    if not nums:
        return None
    if name == "java" and nums[0] == "1" and len(nums) > 1:
        return int(nums[1])
    return int(nums[0])


def _highest(versions: list[str]) -> list[str]:
    import functools

    def cmp(a: str, b: str) -> int:
        try:
            return -compare(a, b, "generic")
        except ValueError:
            return 0

    return sorted(dict.fromkeys(versions), key=functools.cmp_to_key(cmp))


def _version_of(v: str) -> str:
    """A version string that orders as a version when it is one; plain text otherwise."""
    try:
        compare(v, v, "generic")
    except ValueError:
        return v
    return PackageVersion(v, "generic")


def parse_software(name: str | None, patterns: tuple[str, ...], text: str, all_matches: bool = False,
                   vendors: tuple[tuple[str, str], ...] = ()) -> SoftwareFacts:
    """The marked output of a software command → facts. Pure."""
    missing, path, lines, rc = _split_output(text)
    if missing or (rc is None and path is None):
        return SoftwareFacts(installed=False, version=None, major=None, versions=[], vendor=None, path=None,
                             raw=None, exit_code=None)
    body = "\n".join(lines)
    found: list[str] = []
    rx: re.Pattern[str] | None = None
    for pat in patterns:
        rx = re.compile(pat, re.MULTILINE)
        if all_matches:
            found = [m.group(1) if rx.groups else m.group(0) for m in rx.finditer(body)]
        else:
            m = rx.search(body)
            found = [m.group(1) if rx.groups else m.group(0)] if m else []
        if found:
            break
    versions = _highest([f.strip() for f in found if f.strip()])
    version = versions[0] if versions else None
    line_of: str | None = None
    if version is not None and rx is not None:
        for ln in lines:  # the line the (highest) version was read from
            m = rx.search(ln)
            if m and (m.group(1) if rx.groups else m.group(0)).strip() == version:
                line_of = ln.strip()
                break
    first = next((ln.strip() for ln in lines if ln.strip() and not ln.startswith("Picked up ")), None)
    vendor = None
    for rx_v, label in vendors:
        if re.search(rx_v, body, re.MULTILINE):
            vendor = label
            break
    installed = True
    if name == "glibc":
        installed = version is not None
    elif name is None:  # a custom command: it ran, and its program was there
        installed = rc not in (126, 127)
    if not installed:  # whatever the shell said ("sh: 1: x: not found") is no version
        vendor = version = None
        versions = []
    raw = line_of or first
    return SoftwareFacts(
        installed=installed,
        version=_version_of(version) if version else None,
        major=_major(version, name) if version else None,
        versions=[_version_of(v) for v in versions],
        vendor=vendor if version else None,
        path=path,
        raw=raw[:300] if raw else None,
        exit_code=rc,
    )


_GLIBC = (r"^glibc (\d+\.\d+(?:\.\d+)?)", r"^ldd \(.*\) (\d+\.\d+(?:\.\d+)?)\s*$")
_TOMCAT = (r"Apache Tomcat(?:/| Version )(\d[\w.-]*)",)


class SoftwareProbe(Probe):
    name = "software"
    summary = t("A runtime or server program: installed, version, vendor, path (java, python, node, nginx, "
                "tomcat, glibc, openssl, …)",
                "运行时或服务程序：是否安装、版本、厂商、路径（java、python、node、nginx、tomcat、glibc、openssl 等）")
    Params = SoftwareParams
    Facts = SoftwareFacts
    requires = t("no privileges; the program itself on the host (and unzip, for Tomcat's exact version)",
                 "无需特权；主机上需有该程序本身（读取 Tomcat 精确版本需 unzip）")
    example = """\
- id: java-runtime
  title: {zh-CN: Java 运行环境, en: Java runtime}
  probe: software
  with: {name: java}
  expect: {installed: true, major: "in [8, 11, 17]", version: ">= 1.8.0_201"}
"""
    advice = {
        "installed": t("install the program, or give its location with path/home if it is installed outside "
                       "the usual places (the SSH session's PATH is shorter than a login shell's)",
                       "请安装该程序；如已安装在非常规位置，请用 path/home 参数指明"
                       "（SSH 会话的 PATH 比登录 shell 短）"),
        "version": t("install the version the product requires (see its support matrix); several versions can "
                     "live side by side: point the application at the right one",
                     "请安装产品要求的版本（参见其兼容性列表）；多个版本可以并存，请让应用使用正确的那个"),
        "major": t("install the required major version (e.g. JDK 8 vs 11 vs 17) and make it the default "
                   "(update-alternatives / alternatives --config java)",
                   "请安装要求的主版本（如 JDK 8/11/17），并设为默认"
                   "（update-alternatives / alternatives --config java）"),
        "vendor": t("install the build the vendor certifies (e.g. Oracle JDK vs OpenJDK vs BiSheng)",
                    "请安装厂商认证的发行版（如 Oracle JDK、OpenJDK 或毕昇 JDK）"),
        "*": t("run the program's version command on the host by hand (e.g. java -version)",
               "在主机上手动执行该程序的版本命令（如 java -version）"),
    }

    def _source(self, params: Any) -> Source:
        if params.command is not None:
            return Source.command(custom_command(params.command), user=True)
        return Source.command(software_command(params))

    def sources(self, params: Any) -> list[Source]:
        return [self._source(params)]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> SoftwareFacts:
        src = self._source(params)
        res = data.get(src)
        if res is None:
            raise ProbeError(t("no output was fetched for the version command", "未取得版本命令的输出"))
        if res.timed_out:
            raise ProbeError(t("the version command did not finish in time", "版本命令执行超时"),
                             hint=t("run it by hand on the host: the program may hang at start (a license "
                                    "prompt, a missing display, a slow network mount)",
                                    "请在主机上手动执行：程序可能在启动时卡住（许可提示、缺少显示、网络挂载缓慢）"))
        text = res.stdout + ("\n" + res.stderr if res.stderr else "")
        if params.command is not None:
            return parse_software(None, (params.version_regex,), text)
        if params.name == "glibc":
            return parse_software("glibc", _GLIBC, text)
        if params.name == "tomcat":
            return parse_software("tomcat", _TOMCAT, text)
        spec = SPECS[params.name]
        return parse_software(params.name, spec.patterns, text, spec.all_matches, spec.vendors)

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, SoftwareFacts)
        what = params.name or params.command
        if facts.installed and facts.version is None:
            return t(f"{what} answered, but no version was recognised in its output: {facts.raw or '(empty)'}",
                     f"{what} 有输出，但未识别出版本号：{facts.raw or '（空）'}")
        if not facts.installed and params.name == "glibc" and facts.raw:
            return t(f"the C library is not GNU libc: {facts.raw}", f"C 库不是 GNU libc：{facts.raw}")
        return None
