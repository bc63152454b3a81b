"""``process``: is a process running, how many, under which accounts.

A process matches by ``name`` (the kernel's process name — ``comm`` on Linux — or the basename of its
``argv[0]``; on Windows ``nginx`` also matches ``nginx.exe``) or by ``pattern`` (a regular expression searched
in the full command line). Zombies are not counted. envprobe's own process and the helper commands its shell
path starts (the ``sh`` and ``ps`` that list processes) never match.

Native path: /proc on Linux (psutil is not imported there), psutil on Windows and macOS. Shell path: one
``ps`` (procps) listing, parsed in Python; no Python needed on the host.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from envprobe.model import t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator, model_validator
from envprobe.transport.base import CommandResult, Source

#: How many command lines the facts carry, and how long each may be.
MAX_CMDLINES = 5
MAX_CMDLINE_CHARS = 200

_MARK = "@@envprobe:"

#: One command for the whole listing. ``$$`` (the shell running it) and ``$PPID`` (whoever started that
#: shell: envprobe itself locally, the SSH session remotely) are printed so that parse() can drop the probe's
#: own processes. Two ``ps`` runs, joined on the pid: ``comm`` may contain spaces, so it is read alone, last
#: on its line. ``user:64`` keeps long account names from being cut to 8 characters.
_PS_COMMAND = (
    f'(echo "{_MARK}self $$ $PPID"; '
    "if command -v ps >/dev/null 2>&1; then "
    f"echo {_MARK}ps; ps -ww -eo pid=,ppid=,s=,user:64=,args= 2>&1 && "
    f"echo {_MARK}comm && ps -eo pid=,comm= 2>&1; "
    f"else echo {_MARK}no-ps; fi)"
)


class ProcessParams(Model):
    name: str | None = Field(
        default=None,
        description="exact process name (Linux comm, or the file name of the program), e.g. nginx, java, "
        "postgres; give this or pattern",
    )
    pattern: str | None = Field(
        default=None,
        description="regular expression searched in the full command line, e.g. 'java .*mes-server\\.jar'; "
        "give this or name",
    )
    user: str | None = Field(default=None, description="count only processes running as this account")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip()
        if not v:
            raise ValueError("name is empty; give a process name such as nginx")
        if "/" in v or "\\" in v:
            bare = _base(v)
            raise ValueError(
                f"name {v!r} looks like a path; give the bare process name (e.g. {bare!r}) "
                "or use pattern to match the full command line"
            )
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v:
            raise ValueError("pattern is empty; give a regular expression such as 'java .*app\\.jar'")
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"pattern {v!r} is not a valid regular expression: {exc}") from None
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("user is empty; give an account name such as postgres, or leave it out")
        return v.strip() if v is not None else v

    @model_validator(mode="after")
    def _one_of(self) -> ProcessParams:
        if (self.name is None) == (self.pattern is None):
            raise ValueError(
                "give exactly one of name (a process name, e.g. nginx) or pattern "
                "(a regular expression searched in the command line)"
            )
        return self


class ProcessFacts(Facts):
    running: bool = Field(description="at least one matching process is running")
    count: int = Field(description="number of matching processes (an nginx master and 4 workers count 5)")
    pids: list[int] = Field(description="process ids of the matching processes, ascending")
    users: list[str] = Field(description="accounts the matching processes run as, sorted, each once")
    cmdlines: list[str] = Field(
        default_factory=list,
        description=f"command lines of the first {MAX_CMDLINES} matching processes (by pid), "
        f"each cut to {MAX_CMDLINE_CHARS} characters",
    )


class _Proc:
    __slots__ = ("pid", "ppid", "user", "comm", "cmdline")

    def __init__(self, pid: int, ppid: int, user: str | None, comm: str, cmdline: str):
        self.pid = pid
        self.ppid = ppid
        self.user = user
        self.comm = comm
        self.cmdline = cmdline


class ProcessProbe(Probe):
    name = "process"
    summary = t("Whether a process is running: count, pids, accounts and command lines",
                "进程是否在运行：数量、PID、运行账户与命令行")
    Params = ProcessParams
    Facts = ProcessFacts
    example = """\
- id: mes-server-running
  title: {zh-CN: MES 服务进程, en: MES server process}
  probe: process
  with: {pattern: "java .*mes-server\\\\.jar", user: mes}
  expect: {running: true, count: 1}
"""
    advice = {
        "running": t("start the program (or its service) and check its log for why it stopped",
                     "启动该程序（或其服务），并查看日志确认其停止的原因"),
        "count": t("compare with the expected number of instances/workers; extra copies may be leftovers "
                   "of a previous start", "与期望的实例/工作进程数对比；多出的进程可能是上次启动残留"),
        "users": t("the process runs under an unexpected account: check the service's User= setting or "
                   "the start script", "进程的运行账户不符合预期：检查服务的 User= 配置或启动脚本"),
        "*": t("list the processes on the host with `ps -ef` to see what is running",
               "在主机上用 `ps -ef` 查看实际运行的进程"),
    }
    requires = t("the `ps` command from procps (procps-ng) on Linux hosts; no special privileges",
                 "Linux 主机需有 procps（procps-ng）的 `ps` 命令；无需特殊权限")

    # -- shell path ------------------------------------------------------------------------------------
    def sources(self, params: Any) -> list[Source]:
        return [Source.command(_PS_COMMAND)]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> ProcessFacts:
        res = data[Source.command(_PS_COMMAND)]
        procs, helpers = parse_ps(res)
        return _match(params, [p for p in procs if p.pid not in helpers], windows=False)

    # -- native path -----------------------------------------------------------------------------------
    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> ProcessFacts:
        def table() -> list[_Proc]:
            if sys.platform.startswith("linux"):
                return _linux_table(os.getpid())
            import psutil  # only where /proc is not there to read

            own = os.getpid()
            procs: list[_Proc] = []
            attrs = ["pid", "ppid", "name", "username", "cmdline", "status"]
            for p in psutil.process_iter(attrs):
                info = p.info
                if info["pid"] == own or info.get("status") == psutil.STATUS_ZOMBIE:
                    continue
                comm = info.get("name") or ""
                argv = info.get("cmdline") or []
                cmdline = " ".join(argv) if argv else f"[{comm}]"
                procs.append(_Proc(info["pid"], info.get("ppid") or 0, info.get("username"), comm, cmdline))
            return procs

        # one snapshot of the process table per scan, shared by every process check on this host
        return _match(params, ctx.transport.memo("process.table", table), windows=sys.platform == "win32")


def _linux_table(own: int) -> list[_Proc]:
    """The process table straight from /proc (Linux): ~4× faster than psutil, which parses every field of
    /proc/PID/status and looks each user up in the password database anew. Same facts: name as psutil gives
    it, effective user as ps shows it, zombies left out."""
    import pwd

    users: dict[int, str] = {}
    procs: list[_Proc] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == own:
            continue
        try:
            with open(f"/proc/{pid}/status", "rb") as fh:
                status = fh.read(4096).decode("utf-8", "replace")
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                raw = fh.read()
        except OSError:  # gone meanwhile, or hidden (hidepid)
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("State", "").startswith("Z"):
            continue
        try:
            ppid = int(fields.get("PPid", "0"))
            euid = int(fields.get("Uid", "").split()[1])
        except (ValueError, IndexError):
            continue
        if euid not in users:
            try:
                users[euid] = pwd.getpwuid(euid).pw_name
            except KeyError:
                users[euid] = str(euid)
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
        comm = fields.get("Name", "")
        if len(comm) >= 15 and argv:  # the kernel cuts names at 15 characters; psutil completes them so
            base = os.path.basename(argv[0])
            if base.startswith(comm):
                comm = base
        cmdline = " ".join(argv) if argv else f"[{comm}]"
        procs.append(_Proc(pid, ppid, users[euid], comm, cmdline))
    return procs


def parse_ps(res: CommandResult) -> tuple[list[_Proc], set[int]]:
    """Parse the output of the ps command: (processes, pids of the probe's own helpers)."""
    out = res.stdout
    # Markers are whole lines: the listing shell's own command line (in the ps output) contains them too.
    marks = {ln[len(_MARK):].split(" ", 1)[0] for ln in out.splitlines() if ln.startswith(_MARK)}
    if "no-ps" in marks:
        raise ProbeError(t(
            "the host has no `ps` command (a minimal image?): install procps (Debian/Ubuntu: procps; "
            "RHEL/Kylin/openEuler: procps-ng) or check the process another way",
            "主机上没有 `ps` 命令（精简镜像？）：请安装 procps（Debian/Ubuntu：procps；RHEL/麒麟/openEuler："
            "procps-ng），或改用其他方式检查进程",
        ))
    if "comm" not in marks:
        text = out + "\n" + res.stderr
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(_MARK)]
        why = lines[0][:200] if lines else f"exit status {res.rc}"
        raise ProbeError(t(
            f"could not list processes with `ps -eo` ({why}); BusyBox ps lacks these options: install procps "
            "on the host",
            f"无法用 `ps -eo` 列出进程（{why}）；BusyBox 的 ps 不支持这些选项：请在主机上安装 procps",
        ))
    self_pids: set[int] = set()
    shell: int | None = None
    section = ""
    rows: dict[int, tuple[int, str, str, str]] = {}
    comms: dict[int, str] = {}
    for line in out.splitlines():
        if line.startswith(_MARK):
            word, _, rest = line[len(_MARK):].partition(" ")
            section = word
            if word == "self":
                nums = [int(x) for x in rest.split() if x.isdigit()]
                self_pids.update(nums)
                shell = nums[0] if nums else None
            continue
        if section == "ps":
            parts = line.split(None, 4)
            if len(parts) < 4 or not parts[0].isdigit() or not parts[1].isdigit():
                continue
            pid, ppid, state, user = int(parts[0]), int(parts[1]), parts[2], parts[3]
            if state.startswith("Z"):
                continue
            rows[pid] = (ppid, state, user, parts[4] if len(parts) > 4 else "")
        elif section == "comm":
            parts = line.split(None, 1)
            if parts and parts[0].isdigit():
                comms[int(parts[0])] = parts[1] if len(parts) > 1 else ""
    if not rows:
        raise ProbeError(t("`ps` listed no processes; the output could not be read",
                           "`ps` 未列出任何进程，无法解析其输出"))
    # The helpers: the listing shell ($$), everything it started (subshells, ps), and its parent ($PPID).
    helpers = set(self_pids)
    if shell is not None:
        children: dict[int, list[int]] = {}
        for pid, (ppid, _s, _u, _a) in rows.items():
            children.setdefault(ppid, []).append(pid)
        stack = [shell]
        while stack:
            cur = stack.pop()
            for c in children.get(cur, []):
                if c not in helpers:
                    helpers.add(c)
                    stack.append(c)
    procs = []
    for pid, (ppid, _state, user, args) in rows.items():
        argv0 = args.split(" ", 1)[0] if args else ""
        comm = comms.get(pid) or os.path.basename(argv0)
        procs.append(_Proc(pid, ppid, user, comm, args or f"[{comm}]"))
    return procs, helpers


def _base(path: str) -> str:
    return re.split(r"[/\\]", path)[-1]


def _name_matches(name: str, proc: _Proc, windows: bool) -> bool:
    argv0 = proc.cmdline.split(" ", 1)[0] if not proc.cmdline.startswith("[") else ""
    candidates = {proc.comm, _base(argv0)}
    if windows:
        want = name.lower()
        want_stem = want[:-4] if want.endswith(".exe") else want
        for c in candidates:
            c = c.lower()
            if c in (want, want_stem) or (c.endswith(".exe") and c[:-4] == want_stem):
                return True
        return False
    return name in candidates


def _user_matches(want: str, user: str | None) -> bool:
    if user is None:
        return False
    if user == want:
        return True
    # Windows reports DOMAIN\\user; accept the bare account name too (Windows names ignore case).
    return "\\" in user and user.rsplit("\\", 1)[-1].lower() == want.lower()


def _match(params: Any, procs: list[_Proc], windows: bool) -> ProcessFacts:
    rx = re.compile(params.pattern) if params.pattern is not None else None
    found: list[_Proc] = []
    for p in procs:
        if rx is not None:
            if not rx.search(p.cmdline):
                continue
        elif not _name_matches(params.name, p, windows):
            continue
        if params.user is not None and not _user_matches(params.user, p.user):
            continue
        found.append(p)
    found.sort(key=lambda p: p.pid)
    return ProcessFacts(
        running=bool(found),
        count=len(found),
        pids=[p.pid for p in found],
        users=sorted({p.user for p in found if p.user}),
        cmdlines=[p.cmdline[:MAX_CMDLINE_CHARS] for p in found[:MAX_CMDLINES]],
    )
