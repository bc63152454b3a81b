"""``service``: is a system service known, running, and set to start at boot.

The host's service manager is detected, not assumed:

* **systemd** when ``/run/systemd/system`` exists (systemd is PID 1): ``systemctl show``;
* **openrc** when ``/run/openrc`` exists and ``/etc/init.d/NAME`` is there: ``rc-service NAME status``;
* **sysv** when ``/etc/init.d/NAME`` exists: ``service NAME status`` (or the script itself), judged by the
  LSB exit code (0 running, 1/2 dead, 3 stopped, 4 unknown); enabled when an ``S??NAME`` link is in a boot
  runlevel;
* **none** otherwise (a container, a minimal image): the service state cannot be read, so the facts say so
  and the note suggests a ``process`` check;
* **windows** / **launchd** on this machine when it is a Windows or macOS laptop (native path).
"""

from __future__ import annotations

import re
import shlex
import sys
from typing import Any, Literal

from envprobe.model import Text, join_text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator
from envprobe.transport.base import CommandResult, Source

Manager = Literal["systemd", "sysv", "openrc", "windows", "launchd", "none"]

_MARK = "@@envprobe:"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9@._:+$-]*$")
#: systemd unit suffixes other than .service that a checklist may name explicitly.
_UNIT_SUFFIXES = (".socket", ".timer", ".target", ".mount", ".path", ".slice", ".scope", ".automount",
                  ".swap", ".device")
_SYSTEMD_PROPS = "LoadState,ActiveState,SubState,UnitFileState,MainPID"
#: UnitFileState → starts at boot. Others (static, indirect, generated, transient, bad, empty) are unknown.
_ENABLED = {"enabled": True, "enabled-runtime": True, "linked": True, "linked-runtime": True, "alias": True,
            "disabled": False, "masked": False, "masked-runtime": False}
#: LSB init-script status codes.
_LSB = {0: ("running", True), 1: ("dead", False), 2: ("dead", False), 3: ("stopped", False)}
_PID_RE = re.compile(r"\bpid\D{0,3}(\d+)", re.IGNORECASE)


class ServiceParams(Model):
    name: str = Field(description="service name as the service manager knows it: nginx, postgresql, sshd "
                      "(nginx.service is accepted); on Windows the service name, not the display name")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if v.endswith(".service"):
            v = v[: -len(".service")]
        if not v:
            raise ValueError("name is empty; give a service name such as nginx or postgresql")
        if not _NAME_RE.match(v):
            raise ValueError(
                f"{v!r} is not a service name: use letters, digits and @ . _ : + - $ only "
                "(e.g. nginx, postgresql@15-main, MSSQL$SQLEXPRESS)"
            )
        return v


class ServiceFacts(Facts):
    manager: Manager = Field(description="service manager found on the host: systemd, sysv, openrc, windows, "
                             "launchd, or none (no manager knows this service, e.g. in a container)")
    exists: bool = Field(description="the service manager knows the service (unit file or init script found)")
    active: bool | None = Field(description="the service is running now (null: the manager could not tell)")
    enabled: bool | None = Field(description="the service starts at boot (null: unknown, e.g. a static unit)")
    state: str | None = Field(description="the manager's own state word: active, inactive, failed, "
                              "activating (systemd); running, stopped, dead, unknown (sysv); started, "
                              "stopped (openrc); running, stopped (windows, launchd); null when there is no "
                              "manager")
    pid: int | None = Field(description="main process id, when the manager reports one")


def unit_name(name: str) -> str:
    return name if name.endswith(_UNIT_SUFFIXES) else f"{name}.service"


def service_command(name: str) -> str:
    """The one POSIX sh command the shell path runs; its output is split into marked sections."""
    n = shlex.quote(name)
    u = shlex.quote(unit_name(name))
    script = shlex.quote(f"/etc/init.d/{name}")
    m = _MARK
    return (
        "("
        f"if [ -d /run/systemd/system ]; then echo {m}manager systemd; "
        f"systemctl show {u} --property={_SYSTEMD_PROPS} --no-pager 2>&1; printf '\\n{m}rc %s\\n' \"$?\"; "
        f"elif [ -d /run/openrc ] && [ -f {script} ]; then echo {m}manager openrc; "
        f"rc-service {n} status 2>&1; printf '\\n{m}rc %s\\n' \"$?\"; "
        f"echo {m}links; "
        "ls -1 /etc/runlevels/sysinit /etc/runlevels/boot /etc/runlevels/default 2>/dev/null; "
        f"elif [ -f {script} ]; then echo {m}manager sysv; "
        f"if command -v service >/dev/null 2>&1; then service {n} status 2>&1; "
        f"else {script} status 2>&1; fi; printf '\\n{m}rc %s\\n' \"$?\"; "
        f"echo {m}links; ls -1 /etc/rc2.d /etc/rc3.d /etc/rc4.d /etc/rc5.d /etc/rcS.d "
        f"/etc/rc.d/rc2.d /etc/rc.d/rc3.d /etc/rc.d/rc4.d /etc/rc.d/rc5.d 2>/dev/null; "
        f"else echo {m}manager none; fi)"
    )


def _sections(out: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Split the marked output: ({marker: value}, {marker: following lines})."""
    values: dict[str, str] = {}
    lines: dict[str, list[str]] = {}
    cur = ""
    for line in out.splitlines():
        if line.startswith(_MARK):
            key, _, val = line[len(_MARK):].partition(" ")
            values[key] = val.strip()
            cur = key
            lines.setdefault(cur, [])
            continue
        lines.setdefault(cur, []).append(line)
    return values, lines


def _first_line(lines: list[str], fallback: str) -> str:
    for ln in lines:
        if ln.strip():
            return ln.strip()[:200]
    return fallback


class ServiceProbe(Probe):
    name = "service"
    summary = t("A system service: known to the service manager, running, enabled at boot",
                "系统服务：是否存在、是否运行、是否开机自启")
    Params = ServiceParams
    Facts = ServiceFacts
    example = """\
- id: nginx-service
  title: {zh-CN: Nginx 服务, en: Nginx service}
  probe: service
  with: {name: nginx}
  expect: {exists: true, active: true, enabled: true}
"""
    advice = {
        "exists": t("install the package that provides the service, or check the service name "
                    "(systemctl list-units --type=service --all)",
                    "安装提供该服务的软件包，或核对服务名称（systemctl list-units --type=service --all）"),
        "active": t("start it (systemctl start NAME) and read why it stopped (journalctl -u NAME -n 50)",
                    "启动服务（systemctl start NAME），并查看停止原因（journalctl -u NAME -n 50）"),
        "enabled": t("enable it at boot (systemctl enable NAME), so a reboot does not leave it stopped",
                     "设置开机自启（systemctl enable NAME），以免重启后服务未启动"),
        "state": t("see the full status with systemctl status NAME (or service NAME status)",
                   "用 systemctl status NAME（或 service NAME status）查看完整状态"),
        "manager": t("the host has a different service manager than expected; adjust the checklist",
                     "主机的服务管理器与预期不同，请调整检查清单"),
        "*": t("check the service on the host with systemctl status NAME or service NAME status",
               "在主机上用 systemctl status NAME 或 service NAME status 查看服务"),
    }
    requires = t("systemctl (systemd) or service / init scripts (SysV); no root needed to read the state",
                 "需要 systemctl（systemd）或 service/init 脚本（SysV）；读取状态无需 root 权限")

    # -- shell path ------------------------------------------------------------------------------------
    def sources(self, params: Any) -> list[Source]:
        return [Source.command(service_command(params.name))]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> ServiceFacts:
        res = data[Source.command(service_command(params.name))]
        values, lines = _sections(res.stdout)
        manager = values.get("manager")
        if manager is None:
            why = _first_line(res.stderr.splitlines() + res.stdout.splitlines(), f"exit status {res.rc}")
            raise ProbeError(t(f"could not check the service manager on the host ({why})",
                               f"无法检查主机的服务管理器（{why}）"))
        if manager == "systemd":
            return _parse_systemd(params.name, lines.get("manager", []), values.get("rc", ""))
        if manager == "sysv" or manager == "openrc":
            kind: Manager = "sysv" if manager == "sysv" else "openrc"
            return _parse_script(params.name, kind, lines.get("manager", []), values.get("rc", ""),
                                 lines.get("links"))
        return ServiceFacts(manager="none", exists=False, active=False, enabled=None, state=None, pid=None)

    # -- native path -----------------------------------------------------------------------------------
    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> ServiceFacts:
        if sys.platform == "win32":
            return _windows(params.name)
        if sys.platform == "darwin":
            return _launchd(ctx, params.name)
        # Linux and other POSIX systems: the service managers are read through their commands.
        return self.parse(params, ctx.fetch(self.sources(params)))

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, ServiceFacts)
        n = params.name
        if facts.manager == "none":
            return t(
                f"no service manager was found for {n} on this host: systemd is not running and there is "
                f"no /etc/init.d/{n} script (a container or minimal image?), so the service state cannot be "
                f"read; check the program with a process check instead (probe: process, with: {{name: {n}}})",
                f"主机上未找到管理 {n} 的服务管理器：systemd 未运行，也没有 /etc/init.d/{n} 脚本"
                f"（容器或精简镜像？），因此无法读取服务状态；"
                f"请改用进程检查（probe: process, with: {{name: {n}}}）",
            )
        parts: list[Text] = []
        if not facts.exists:
            if facts.manager == "systemd":
                parts.append(t(
                    f"systemd has no unit {unit_name(n)} (LoadState=not-found): the package may not be "
                    "installed, or the unit has another name (e.g. ssh vs sshd, postgresql@15-main)",
                    f"systemd 中没有 {unit_name(n)} 单元（LoadState=not-found）：可能未安装相应软件包，"
                    "或单元名称不同（如 ssh 与 sshd、postgresql@15-main）",
                ))
            elif facts.manager == "windows":
                parts.append(t(
                    f"no Windows service named {n}: use the service name (Get-Service), not the display name",
                    f"没有名为 {n} 的 Windows 服务：请使用服务名（Get-Service 可查），而非显示名称",
                ))
            elif facts.manager == "launchd":
                parts.append(t(
                    f"launchctl lists no job named {n} (or ending in .{n}); without root only the user's own "
                    "agents are listed",
                    f"launchctl 中没有名为 {n}（或以 .{n} 结尾）的任务；非 root 用户只能看到自己的代理任务",
                ))
        elif facts.active is None:
            parts.append(t(
                f"the status command for {n} did not say whether it runs (state {facts.state}); "
                "check it by hand or add a process check",
                f"{n} 的状态命令未给出是否运行（状态 {facts.state}）；请手动确认，或增加进程检查",
            ))
        if facts.exists and facts.enabled is None and facts.manager in ("systemd", "sysv", "openrc"):
            parts.append(t(
                "whether it starts at boot is unknown (a static, generated or indirect unit, or no "
                "runlevel links)",
                "无法确定是否开机自启（静态/生成/间接单元，或没有运行级别链接）",
            ))
        return join_text(*parts, sep="; ") if parts else None


def _parse_systemd(name: str, lines: list[str], rc: str) -> ServiceFacts:
    props: dict[str, str] = {}
    for ln in lines:
        key, sep, val = ln.partition("=")
        if sep and key.strip() in _SYSTEMD_PROPS.split(","):
            props[key.strip()] = val.strip()
    if "LoadState" not in props or "ActiveState" not in props:
        why = _first_line(lines, f"exit status {rc or '?'}")
        raise ProbeError(t(
            f"`systemctl show {unit_name(name)}` failed: {why} (is systemd reachable for this user?)",
            f"`systemctl show {unit_name(name)}` 执行失败：{why}（当前用户能否访问 systemd？）",
        ))
    load = props["LoadState"]
    exists = load != "not-found"
    active_state = props["ActiveState"]
    pid_s = props.get("MainPID", "")
    pid = int(pid_s) if pid_s.isdigit() and int(pid_s) > 0 else None
    enabled = _ENABLED.get(props.get("UnitFileState", "")) if exists else None
    if load == "masked":
        enabled = False
    return ServiceFacts(
        manager="systemd",
        exists=exists,
        active=active_state in ("active", "reloading"),
        enabled=enabled,
        state=active_state,
        pid=pid,
    )


def _parse_script(name: str, manager: Manager, lines: list[str], rc_s: str,
                  links: list[str] | None) -> ServiceFacts:
    try:
        rc = int(rc_s)
    except ValueError:
        raise ProbeError(t(f"the status of {name} could not be read (no exit status in the output)",
                           f"无法读取 {name} 的状态（输出中没有退出码）")) from None
    text = "\n".join(lines)
    state: str
    active: bool | None
    if manager == "openrc":
        m = re.search(r"status:\s*(\S+)", text)
        state = m.group(1) if m else ("started" if rc == 0 else "stopped" if rc == 3 else "unknown")
        active = True if state == "started" else None if state == "unknown" else False
    elif rc in _LSB:
        state, active = _LSB[rc]
    else:
        state, active = "unknown", None
    pid = None
    if active:
        m = _PID_RE.search(text)
        pid = int(m.group(1)) if m else None
    enabled: bool | None = None
    if links is not None:
        entries = [ln.strip() for ln in links if ln.strip() and not ln.endswith(":")]
        if entries:
            if manager == "openrc":
                enabled = name in entries
            else:
                start = re.compile(rf"^S\d\d{re.escape(name)}$")
                enabled = any(start.match(e) for e in entries)
    return ServiceFacts(manager=manager, exists=True, active=active, enabled=enabled, state=state, pid=pid)


def _windows(name: str) -> ServiceFacts:
    import psutil

    if sys.platform == "win32":  # the psutil functions below exist only on Windows
        try:
            svc = psutil.win_service_get(name)
            info = svc.as_dict()
        except psutil.NoSuchProcess:
            return ServiceFacts(manager="windows", exists=False, active=False, enabled=None, state=None,
                                pid=None)
        except psutil.AccessDenied as exc:
            raise ProbeError(t(f"access denied reading Windows service {name}: {exc}",
                               f"读取 Windows 服务 {name} 被拒绝：{exc}")) from None
        status = str(info.get("status") or "")
        start = str(info.get("start_type") or "")
        pid = info.get("pid")
        return ServiceFacts(
            manager="windows",
            exists=True,
            active=status == "running",
            enabled=True if start == "automatic" else False if start in ("manual", "disabled") else None,
            state=status or None,
            pid=int(pid) if pid else None,
        )
    raise ProbeError(t("Windows services can only be read on Windows", "只能在 Windows 上读取 Windows 服务"))


def _launchd(ctx: ProbeContext, name: str) -> ServiceFacts:
    res = ctx.run(["launchctl", "list"])
    if not res.ok:
        why = _first_line(res.stderr.splitlines(), f"exit status {res.rc}")
        raise ProbeError(t(f"`launchctl list` failed: {why}", f"`launchctl list` 执行失败：{why}"))
    best: tuple[str, str] | None = None
    for ln in res.stdout.splitlines()[1:]:
        parts = ln.split("\t") if "\t" in ln else ln.split()
        if len(parts) < 3:
            continue
        pid_s, _status, label = parts[0].strip(), parts[1].strip(), parts[2].strip()
        named = label == name or label.endswith("." + name)
        if named and (best is None or (best[0] == "-" and pid_s != "-")):
            best = (pid_s, label)
    if best is None:
        return ServiceFacts(manager="launchd", exists=False, active=False, enabled=None, state=None, pid=None)
    running = best[0].isdigit()
    return ServiceFacts(manager="launchd", exists=True, active=running, enabled=None,
                        state="running" if running else "stopped", pid=int(best[0]) if running else None)
