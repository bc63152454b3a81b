"""``ulimit``: the soft and hard resource limits a user's login session gets, as pam_limits sets them.

What is evaluated (Linux-PAM's pam_limits, as limits.conf(5) documents it and as its source applies it):

* Files: ``/etc/security/limits.conf``, then ``/etc/security/limits.d/*.conf`` in C-locale order of their names;
  the effect is that of one file made of them all, in that order.
* Lines ``<domain> <type> <item> <value>``; ``#`` starts a comment; type, item and value are case-insensitive.
  Type ``soft``, ``hard`` or ``-`` (both). Values ``unlimited``, ``infinity``, ``-1`` (and ``-``) mean no limit —
  except that ``nofile`` cannot be infinite: pam_limits sets it to ``fs.nr_open`` instead (limits.conf(5)).
* Domains and their strength: the user's name or a uid range (``1000:``, ``:1001``, ``1000:2000``) are *user*
  entries; ``@group`` (the user's primary or a supplementary group), ``@:gid`` (any of the user's groups) and
  ``@min:max`` (the primary gid) are *group* entries; ``*`` is the *default* entry. ``%`` domains apply to
  ``maxlogins`` only. A user entry beats a group entry, which beats ``*``, whatever the order of the lines;
  among entries of the same strength the **last** one wins (a later file overrides an earlier one). Soft and
  hard are decided separately; ``-`` sets both.
* On Debian and its derivatives (the host has ``/etc/debian_version``: Debian, Ubuntu, UOS, Deepin, Kylin
  desktop) ``@group`` and ``*`` entries are not applied to root — root gets only entries naming ``root`` or
  matching uid 0 (limits.conf(5) there says so, and su on Debian 12 behaves so). Upstream builds (RHEL,
  openEuler, Kylin server …) apply them to root too.
* A two-field line ``<domain> -`` that matches the user makes pam_limits apply no limits at all for the session.
* A resource no line sets: Debian's pam_limits (Debian, Ubuntu, UOS, Deepin — checked here on Debian 12, PAM
  1.5.2) starts every session from **PID 1's limits** (``/proc/1/limits``), except that the soft ``nofile`` limit
  stays at 1024 (``select()``'s limit) when PID 1's is higher; upstream pam_limits ≥ 1.4 without ``set_all``
  (RHEL 9, openEuler 22.03, Kylin server …) leaves such a limit as the login process had it: the running
  **sshd** listener's (what an SSH login inherits), else PID 1's. ``default_from`` says which was used.
* When soft ends up above hard, soft is lowered to hard, as pam_limits does before ``setrlimit``.
* Not modelled: a ``setrlimit`` the kernel refuses (raising a hard limit needs CAP_SYS_RESOURCE, which the login
  process has on a normal host but not in some containers; ``nofile`` above ``fs.nr_open``) — then the session
  keeps the login process's value for that resource.

Units are those of limits.conf and of the ``ulimit`` shell builtin: KiB for ``core data fsize memlock rss stack
as``, minutes for ``cpu`` (limits.conf's unit; ``ulimit -t`` shows seconds), bytes for ``msgqueue``, the nice
value (-20..19) for ``nice``, a count for the rest. No limit is reported as ``unlimited`` (+∞), so
``soft: ">= 65536"`` passes for it.

The shell path is one command (users, groups, the limits files, /proc/<pid>/limits, the PAM stacks); no root
needed.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import Any, Literal

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeError
from envprobe.record import record
from envprobe.schema import Field, Model, field_validator
from envprobe.transport.base import CommandResult, Source

_MARK = "@@envprobe:"
INF = math.inf

Resource = Literal["nofile", "nproc", "stack", "memlock", "core", "as", "cpu", "data", "fsize", "rss", "locks",
                   "sigpending", "msgqueue", "nice", "rtprio"]
RESOURCES: tuple[str, ...] = ("nofile", "nproc", "stack", "memlock", "core", "as", "cpu", "data", "fsize", "rss",
                              "locks", "sigpending", "msgqueue", "nice", "rtprio")
_KIB = ("core", "data", "fsize", "memlock", "rss", "stack", "as")
UNITS = {**{r: "KiB" for r in _KIB}, "cpu": "minutes", "msgqueue": "bytes", "nice": "nice value",
         "nofile": "files", "nproc": "processes", "locks": "locks", "sigpending": "signals", "rtprio": "priority"}
#: /proc/PID/limits row names
_PROC_NAMES = {
    "Max cpu time": "cpu", "Max file size": "fsize", "Max data size": "data", "Max stack size": "stack",
    "Max core file size": "core", "Max resident set": "rss", "Max processes": "nproc", "Max open files": "nofile",
    "Max locked memory": "memlock", "Max address space": "as", "Max file locks": "locks",
    "Max pending signals": "sigpending", "Max msgqueue size": "msgqueue", "Max nice priority": "nice",
    "Max realtime priority": "rtprio",
}
_ALIASES = {"open_files": "nofile", "openfiles": "nofile", "processes": "nproc", "max_user_processes": "nproc",
            "stack_size": "stack", "locked_memory": "memlock", "core_size": "core", "address_space": "as"}
LOGIN_SERVICES = ("sshd", "login", "su", "su-l", "sudo", "sudo-i", "runuser", "runuser-l", "systemd-user",
                  "cron", "crond", "gdm-password", "lightdm")

# entry strength, as pam_limits ranks them (lower wins)
USER, GROUP, DEFAULT, NONE = 0, 1, 4, 6
_STRENGTH_NAME = {USER: "user", GROUP: "group", DEFAULT: "default (*)"}

Number = int | float


class UlimitParams(Model):
    user: str = Field(description="the account whose login session is meant (oracle, dmdba, postgres, mes)")
    resource: Resource = Field(description="the limit, as limits.conf names it: nofile (open files), nproc "
                               "(processes), stack, memlock, core, as, cpu, data, fsize, rss, locks, "
                               "sigpending, msgqueue, nice, rtprio")

    @field_validator("resource", mode="before")
    @classmethod
    def _resource(cls, v: Any) -> Any:
        if isinstance(v, str):
            low = v.strip().lower().replace("-", "_").replace(" ", "_")
            return _ALIASES.get(low, low)
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        v = v.strip()
        if not re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_.@-]*\$?", v):
            raise ValueError(f"{v!r} is not an account name (e.g. oracle, dmdba)")
        return v


class UlimitFacts(Facts):
    soft: int | float | None = Field(description="soft limit the session starts with (limits.conf units: KiB for "
                                "sizes, minutes for cpu); unlimited is +inf and satisfies any '>='")
    hard: int | float | None = Field(description="hard limit: the most the user may raise the soft limit to")
    source: str = Field(description="what decided: FILE:LINE of the winning line (soft and hard named apart when "
                        "different lines decided them), 'default' when no line applies, or 'none: FILE:LINE' "
                        "for a '<domain> -' line that switches limits off")
    unit: str = Field(description="unit of soft and hard: KiB, minutes, bytes, files, processes, …")
    default_from: str = Field(description="where the values of limits no line sets come from: 'pid 1' (Debian's "
                              "pam_limits starts from PID 1's limits), the sshd listener ('sshd pid 812': what "
                              "the session inherits elsewhere), or 'kernel defaults' when neither was readable")
    pam_services: list[str] = Field(default_factory=list, description="login services whose PAM session stack "
                                    "loads pam_limits (sshd, login, su, sudo, systemd-user …); limits files do "
                                    "nothing for a service that is not listed")


# ===========================================================================================================
# parsing
# ===========================================================================================================
@record
class Account:
    name: str
    uid: int
    gid: int
    groups: dict[str, int]  # name -> gid, primary included


@record
class Line:
    file: str
    lineno: int
    fields: list[str]


@record
class Decision:
    soft: Number
    hard: Number
    soft_src: str  # "FILE:LINE" or "default"
    hard_src: str
    disabled_by: str | None = None  # FILE:LINE of a matching "<domain> -" line


def parse_limits_files(chunks: list[tuple[str, str]]) -> list[Line]:
    """[(path, text)] → the meaningful lines, files in pam_limits' order (limits.conf, then limits.d/*.conf by
    C-locale name)."""
    main = [c for c in chunks if c[0].rsplit("/", 2)[-2:-1] != ["limits.d"]]
    dropins = sorted((c for c in chunks if c[0].rsplit("/", 2)[-2:-1] == ["limits.d"]),
                     key=lambda c: c[0].rsplit("/", 1)[-1].encode())
    out: list[Line] = []
    for path, text in [*main, *dropins]:
        for no, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()[:4]
            out.append(Line(path, no, fields))
    return out


def parse_proc_limits(text: str) -> dict[str, tuple[Number, Number]]:
    """``/proc/PID/limits`` → {resource: (soft, hard)} in limits.conf units."""
    out: dict[str, tuple[Number, Number]] = {}
    for line in text.splitlines():
        m = re.match(r"^(Max [A-Za-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
        if not m or m.group(1) not in _PROC_NAMES:
            continue
        res = _PROC_NAMES[m.group(1)]
        out[res] = (_from_rlimit(res, m.group(2)), _from_rlimit(res, m.group(3)))
    return out


def _from_rlimit(res: str, text: str) -> Number:
    if text == "unlimited":
        return INF
    n = int(text)
    if res in _KIB:
        return n // 1024 if n % 1024 == 0 else n / 1024
    if res == "cpu":
        return n // 60 if n % 60 == 0 else round(n / 60, 2)
    if res == "nice":
        return 20 - n
    return n


#: Linux's defaults for a process started with nothing inherited (limits.conf units)
KERNEL_DEFAULTS: dict[str, tuple[Number, Number]] = {
    "cpu": (INF, INF), "fsize": (INF, INF), "data": (INF, INF), "stack": (8192, INF), "core": (0, INF),
    "rss": (INF, INF), "nofile": (1024, 4096), "memlock": (64, 64), "as": (INF, INF), "locks": (INF, INF),
    "msgqueue": (819200, 819200), "nice": (20, 20), "rtprio": (0, 0),
}


def _value(res: str, text: str, nr_open: int | None) -> Number | None:
    """A limits.conf value → limits.conf units (None: pam_limits would skip the line)."""
    v = text.lower()
    if res != "nice" and v in ("-1", "-", "unlimited", "infinity"):
        if res == "nofile":
            return nr_open if nr_open is not None else INF
        return INF
    m = re.match(r"^[-+]?\d+", v)
    if not m:
        return None
    n = int(m.group())
    if res == "nice":
        return max(-20, min(19, n))
    if n < 0:
        return INF  # strtoul wraps a negative number to a huge one
    return n


def _domain_strength(domain: str, acct: Account, debian: bool) -> int | None:
    """How strongly a domain applies to the account (USER, GROUP, DEFAULT), or None when it does not."""
    root = acct.uid == 0
    if domain == acct.name:
        return USER
    if domain.startswith("%"):
        return None  # maxlogins only
    if domain.startswith("@"):
        rest = domain[1:]
        if ":" not in rest:
            if debian and root:
                return None
            return GROUP if rest in acct.groups else None
        lo, _, hi = rest.partition(":")
        if not lo:
            return GROUP if hi.isdigit() and int(hi) in acct.groups.values() else None
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return None
        if acct.gid < int(lo) or (hi and acct.gid > int(hi)):
            return None
        return GROUP
    if domain == "*":
        return None if (debian and root) else DEFAULT
    if ":" in domain:
        lo, _, hi = domain.partition(":")
        if not lo:
            return USER if hi.isdigit() and acct.uid == int(hi) else None
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return None
        if acct.uid < int(lo) or (hi and acct.uid > int(hi)):
            return None
        return USER
    return None


def _disables(domain: str, acct: Account) -> bool:
    """A two-field ``<domain> -`` line: does it switch limits off for this account?"""
    if domain == acct.name:
        return True
    if domain.startswith("@"):
        rest = domain[1:]
        if ":" not in rest:
            return rest in acct.groups
        lo, _, hi = rest.partition(":")
        if not lo:
            return hi.isdigit() and int(hi) in acct.groups.values()
        return lo.isdigit() and acct.gid >= int(lo) and (not hi or (hi.isdigit() and acct.gid <= int(hi)))
    if ":" in domain:
        lo, _, hi = domain.partition(":")
        if not lo:
            return hi.isdigit() and acct.uid == int(hi)
        return lo.isdigit() and acct.uid >= int(lo) and (not hi or (hi.isdigit() and acct.uid <= int(hi)))
    return False


def evaluate(lines: list[Line], acct: Account, resource: str, base: tuple[Number, Number],
             nr_open: int | None, debian: bool) -> Decision:
    """Apply pam_limits' rules for one resource. Pure."""
    soft, hard = base
    src_soft = src_hard = NONE
    soft_at = hard_at = "default"
    for ln in lines:
        f = ln.fields
        where = f"{ln.file}:{ln.lineno}"
        if len(f) == 2 and f[1] == "-":
            if _disables(f[0], acct):
                return Decision(base[0], base[1], "default", "default", disabled_by=where)
            continue
        if len(f) != 4:
            continue
        domain, kind, item, text = f[0], f[1].lower(), f[2].lower(), f[3]
        if item != resource or kind not in ("soft", "hard", "-"):
            continue
        strength = _domain_strength(domain, acct, debian)
        if strength is None:
            continue
        value = _value(resource, text, nr_open)
        if value is None:
            continue
        if kind in ("soft", "-"):
            if src_soft < strength:
                continue  # pam_limits returns here: a '-' line does not reach the hard limit either
            soft, src_soft, soft_at = value, strength, where
        if kind in ("hard", "-"):
            if src_hard < strength:
                continue
            hard, src_hard, hard_at = value, strength, where
    if soft > hard:
        soft = hard
    return Decision(soft, hard, soft_at, hard_at)


def parse_pam_services(chunks: dict[str, str]) -> list[str]:
    """{service: file text} of /etc/pam.d → the login services whose session stack loads pam_limits."""
    memo: dict[str, bool] = {}

    def loads(name: str, depth: int = 0) -> bool:
        if name in memo:
            return memo[name]
        memo[name] = False
        if depth > 10 or name not in chunks:
            return False
        hit = False
        for raw in chunks[name].splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if words[0] == "@include" and len(words) > 1:
                hit = hit or loads(words[1], depth + 1)
                continue
            kind = words[0].lstrip("-").lower()
            if kind != "session" or len(words) < 3:
                continue
            control = words[1]
            if control.startswith("["):  # [value=action ...] may span words
                rest = " ".join(words[1:])
                end = rest.find("]")
                words = [words[0], rest[: end + 1], *rest[end + 1:].split()]
            if len(words) < 3:
                continue
            if words[1] in ("include", "substack"):
                hit = hit or loads(words[2], depth + 1)
            elif words[2].rsplit("/", 1)[-1] == "pam_limits.so":
                hit = True
        memo[name] = hit
        return hit

    return [s for s in LOGIN_SERVICES if s in chunks and loads(s)]


def ulimit_command(user: str) -> str:
    u = shlex.quote(user)
    return (
        f"echo {_MARK}passwd; getent passwd {u}; "
        f"echo {_MARK}gids; id -G {u} 2>/dev/null; echo {_MARK}gnames; id -Gn {u} 2>/dev/null; "
        f"echo {_MARK}debian; [ -f /etc/debian_version ] && echo yes; "
        f"echo {_MARK}nr_open; cat /proc/sys/fs/nr_open 2>/dev/null; "
        "s=; for p in /proc/[0-9]*; do c=; read -r c 2>/dev/null < \"$p/comm\" || continue; "
        '[ "$c" = sshd ] || continue; pp=; while read -r k v; do [ "$k" = PPid: ] && pp=$v; '
        'done 2>/dev/null < "$p/status"; c=; [ -n "$pp" ] && read -r c 2>/dev/null < "/proc/$pp/comm"; '
        '[ "$c" = sshd ] && continue; s=${p#/proc/}; break; done; '
        f'if [ -n "$s" ] && [ -r "/proc/$s/limits" ]; then echo "{_MARK}sshd $s"; cat "/proc/$s/limits"; fi; '
        f'if [ -r /proc/1/limits ]; then echo "{_MARK}pid1"; cat /proc/1/limits; fi; '
        "for f in /etc/security/limits.conf /etc/security/limits.d/*.conf; do "
        f'[ -f "$f" ] && {{ echo "{_MARK}file $f"; cat "$f"; echo; }}; done; '
        "for f in " + " ".join(f"/etc/pam.d/{s}" for s in LOGIN_SERVICES) +
        " /etc/pam.d/common-session /etc/pam.d/common-session-noninteractive /etc/pam.d/system-auth "
        "/etc/pam.d/password-auth /etc/pam.d/postlogin; do "
        f'[ -f "$f" ] && {{ echo "{_MARK}pam ${{f#/etc/pam.d/}}"; grep -v "^[[:space:]]*#" "$f"; }}; done; true'
    )


@record
class Snapshot:
    """Everything the probe read from a host, split by section."""

    passwd: str
    gids: str
    gnames: str
    debian: bool
    nr_open: int | None
    pid1: dict[str, tuple[Number, Number]]
    sshd_pid: int | None
    sshd: dict[str, tuple[Number, Number]]
    files: list[tuple[str, str]]
    pam: dict[str, str]

    def baseline(self, resource: str) -> tuple[tuple[Number, Number], str]:
        """What a resource no line sets becomes, and where that comes from."""
        if self.debian and resource in self.pid1:
            soft, hard = self.pid1[resource]
            if resource == "nofile":
                soft = min(soft, 1024)
            return (soft, hard), "pid 1"
        return self.inherited(resource)

    def inherited(self, resource: str) -> tuple[tuple[Number, Number], str]:
        """What the login process itself has (sshd listener, else PID 1, else Linux defaults)."""
        if self.sshd_pid is not None and resource in self.sshd:
            return self.sshd[resource], f"sshd pid {self.sshd_pid}"
        if resource in self.pid1:
            return self.pid1[resource], "pid 1"
        return KERNEL_DEFAULTS.get(resource, (INF, INF)), "kernel defaults"


def split_output(text: str) -> Snapshot:
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith(_MARK):
            sections.append((line[len(_MARK):], []))
        elif sections:
            sections[-1][1].append(line)
    one: dict[str, str] = {}
    files: list[tuple[str, str]] = []
    pam: dict[str, str] = {}
    pid1: dict[str, tuple[Number, Number]] = {}
    sshd: dict[str, tuple[Number, Number]] = {}
    sshd_pid: int | None = None
    for head, body in sections:
        word, _, rest = head.partition(" ")
        text_ = "\n".join(body)
        if word == "file":
            files.append((rest, text_))
        elif word == "pam":
            pam[rest] = text_
        elif word == "pid1":
            pid1 = parse_proc_limits(text_)
        elif word == "sshd" and rest.strip().isdigit():
            sshd_pid, sshd = int(rest), parse_proc_limits(text_)
        else:
            one[word] = text_.strip()
    nr = one.get("nr_open", "")
    return Snapshot(
        passwd=one.get("passwd", ""), gids=one.get("gids", ""), gnames=one.get("gnames", ""),
        debian=one.get("debian", "") == "yes", nr_open=int(nr) if nr.isdigit() else None,
        pid1=pid1, sshd_pid=sshd_pid, sshd=sshd, files=files, pam=pam,
    )


def account_from(passwd: str, gids: str, gnames: str) -> Account | None:
    line = next((ln for ln in passwd.splitlines() if ln.count(":") >= 6), None)
    if line is None:
        return None
    parts = line.split(":")
    try:
        uid, gid = int(parts[2]), int(parts[3])
    except ValueError:
        return None
    ids = [int(x) for x in gids.split() if x.isdigit()]
    names = gnames.split()
    if len(names) == len(ids):
        groups = dict(zip(names, ids, strict=True))
    else:  # a group name with a space (directory services): keep what is certain
        groups = {**{n: -1 for n in names}, **{f"#{i}": i for i in ids}}
    return Account(parts[0], uid, gid, groups)


def _fmt_src(d: Decision) -> str:
    if d.disabled_by:
        return f"none: {d.disabled_by}"
    if d.soft_src == d.hard_src:
        return d.soft_src
    return f"soft {d.soft_src}, hard {d.hard_src}"


def _out(v: Number) -> Number:
    if isinstance(v, float) and not math.isinf(v) and v.is_integer():
        return int(v)
    return v


class UlimitProbe(Probe):
    name = "ulimit"
    summary = t("A user's resource limit (nofile, nproc, stack, memlock …) as a login session gets it from "
                "limits.conf and limits.d",
                "用户登录会话的资源限制（nofile、nproc、stack、memlock 等），按 limits.conf 与 limits.d 计算")
    Params = UlimitParams
    Facts = UlimitFacts
    requires = t("no privileges; reads /etc/security/limits.conf, limits.d, /etc/pam.d and /proc/<pid>/limits",
                 "无需特权；读取 /etc/security/limits.conf、limits.d、/etc/pam.d 与 /proc/<pid>/limits")
    example = """\
- id: oracle-nofile
  title: {zh-CN: oracle 用户打开文件数, en: Open files for oracle}
  probe: ulimit
  with: {user: oracle, resource: nofile}
  expect: {soft: ">= 1024", hard: ">= 65536"}
"""
    advice = {
        "soft": t("add '<user> soft <item> <value>' to a file in /etc/security/limits.d/ (e.g. "
                  "99-<product>.conf) and log in again; the new limit applies to new sessions only",
                  "在 /etc/security/limits.d/ 下的文件（如 99-<产品>.conf）中加入 '<用户> soft <项> <值>'，"
                  "重新登录后生效（只对新会话生效）"),
        "hard": t("add '<user> hard <item> <value>' to a file in /etc/security/limits.d/ and log in again; "
                  "for services started by systemd set LimitNOFILE=/LimitNPROC= in the unit instead",
                  "在 /etc/security/limits.d/ 下的文件中加入 '<用户> hard <项> <值>' 并重新登录；"
                  "由 systemd 启动的服务请在 unit 中设置 LimitNOFILE=/LimitNPROC="),
        "pam_services": t("add 'session required pam_limits.so' to the PAM stack of the login service "
                          "(/etc/pam.d/sshd or the file it includes) and set UsePAM yes in sshd_config",
                          "在登录服务的 PAM 配置（/etc/pam.d/sshd 或其包含的文件）中加入 "
                          "'session required pam_limits.so'，并在 sshd_config 中设置 UsePAM yes"),
        "*": t("log in as the user and compare with ulimit -Sa / ulimit -Ha",
               "以该用户登录，用 ulimit -Sa / ulimit -Ha 对照"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [Source.command(ulimit_command(params.user))]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> UlimitFacts:
        res = data.get(self.sources(params)[0])
        if res is None or res.timed_out:
            raise ProbeError(t("reading the limits configuration did not finish in time", "读取资源限制配置超时"))
        snap = split_output(res.stdout)
        acct = account_from(snap.passwd, snap.gids, snap.gnames)
        if acct is None:
            raise ProbeError(
                t(f"user {params.user} does not exist on the host, so its login limits cannot be evaluated",
                  f"主机上不存在用户 {params.user}，无法计算其登录会话的资源限制"),
                hint=t(f"create the account first (check it with probe: user, with: {{name: {params.user}}})",
                       f"请先创建该用户（可用 probe: user, with: {{name: {params.user}}} 检查）"))
        return facts_for(snap, acct, params.resource)

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, UlimitFacts)
        parts: list[Text] = []
        if facts.source.startswith("none:"):
            where = facts.source[len("none: "):]
            parts.append(t(f"{where} tells pam_limits to set no limits for {params.user}: the session keeps "
                           f"what the login process had ({facts.default_from})",
                           f"{where} 指定 pam_limits 不为 {params.user} 设置任何限制：会话沿用登录进程的限制"
                           f"（{facts.default_from}）"))
        elif facts.source == "default":
            parts.append(t(f"no limits line applies to {params.user} for {params.resource}: the value comes "
                           f"from {facts.default_from}",
                           f"没有适用于 {params.user} 的 {params.resource} 配置行：取值来自 {facts.default_from}"))
        if "sshd" not in facts.pam_services:
            parts.append(t("pam_limits is not in the sshd PAM session stack: SSH logins do not get these limits",
                           "sshd 的 PAM 会话配置未加载 pam_limits：SSH 登录不会应用这些限制"))
        if not parts:
            return None
        return {k: "; ".join(p[k] for p in parts) for k in ("en", "zh-CN")}


def facts_for(snap: Snapshot, acct: Account, resource: str) -> UlimitFacts:
    base, label = snap.baseline(resource)
    d = evaluate(parse_limits_files(snap.files), acct, resource, base, snap.nr_open, snap.debian)
    if d.disabled_by:  # pam_limits sets nothing: the session keeps what the login process has
        (soft, hard), label = snap.inherited(resource)
        d = Decision(soft, hard, "default", "default", disabled_by=d.disabled_by)
    return UlimitFacts(soft=_out(d.soft), hard=_out(d.hard), source=_fmt_src(d), unit=UNITS[resource],
                       default_from=label, pam_services=parse_pam_services(snap.pam))
