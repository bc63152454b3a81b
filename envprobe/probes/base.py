"""The probe interface.

A probe *observes*: ``collect()`` returns facts (an ``envprobe.schema.Model``) and never decides pass or fail; the
checklist's expectations and severities do. A probe talks to its host only through the transport in its
context, so the same probe runs locally and, later, over SSH.

Shell-path probes declare the raw data they need (:meth:`Probe.sources`) and turn it into facts with a pure
:meth:`Probe.parse`; the runner may prefetch every host's sources in one batch. Probes that also have a
native path for this machine (psutil) implement :meth:`Probe.collect_native`, used when the transport is local.
"""

from __future__ import annotations

import shlex
import time
from typing import Any, ClassVar

from envprobe.model import Text, t
from envprobe.schema import Model
from envprobe.transport.base import CommandResult, PrivilegeError, Source, Transport


class NoParams(Model):
    """A probe that takes no parameters."""


class Facts(Model):
    """Base for observed facts. Field descriptions become the probe's documentation."""


class ProbeError(Exception):
    """A clean, explained failure to observe (becomes an ``error`` result with this bilingual message)."""

    def __init__(self, message: Text, hint: Text | None = None):
        super().__init__(message.get("en", ""))
        self.message = message
        #: What to check next, shown as the result's advice.
        self.hint = hint


class ProbeContext:
    """What a probe gets to work with: the host's transport and the time it may use."""

    def __init__(self, transport: Transport, host: str, timeout: float, prefer_native: bool = True,
                 host_transport: Transport | None = None):
        #: where the probe observes from: the check's host, or its ``from:`` vantage host
        self.transport = transport
        #: the check's own host (differs from ``transport`` only when ``from:`` names a vantage host)
        self.host_transport = host_transport or transport
        self.host = host
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        #: Use psutil when the host is this machine. Tests turn it off to exercise the shell path locally.
        self.prefer_native = prefer_native and transport.is_local

    @property
    def os_family(self) -> str:
        """``posix`` or ``windows`` (of the observing host): the command set a probe should use there."""
        return self.transport.os_family

    def remaining(self, floor: float = 0.5) -> float:
        return max(floor, self.deadline - time.monotonic())

    def fetch(self, sources: list[Source]) -> dict[Source, CommandResult]:
        return self.transport.fetch(sources, timeout=self.remaining())

    def run(self, cmd: list[str] | str, timeout: float | None = None, privileged: bool = False) -> CommandResult:
        """Run a command on the host. ``privileged``: as root (directly, or through the host's sudo settings);
        when root cannot be had, a :class:`ProbeError` that says why and what to configure."""
        limit = self.remaining() if timeout is None else min(timeout, self.remaining())
        env = {"LC_ALL": "C", "LANG": "C"}
        if not privileged:
            return self.transport.run(cmd, timeout=limit, env=env)
        line = cmd if isinstance(cmd, str) else shlex.join(cmd)
        try:
            return self.transport.run_privileged(line, timeout=limit, env=env)
        except PrivilegeError as exc:
            raise ProbeError(*_privilege_message(exc, self.transport.name)) from exc


class Probe:
    #: The name used in checklists (``probe: memory``).
    name: ClassVar[str] = ""
    #: One line saying what it observes.
    summary: ClassVar[Text] = t("", "")
    Params: ClassVar[type[Model]] = NoParams
    Facts: ClassVar[type[Model]] = Facts
    #: A YAML checklist entry showing typical use; validated by the test suite.
    example: ClassVar[str] = ""
    #: Advice per observed field (and "*" for any), shown with a failure: what to do next.
    advice: ClassVar[dict[str, Text]] = {}
    #: Privileges or tools the probe needs on the host, for the docs.
    requires: ClassVar[Text | None] = None
    #: A network probe: ``from: HOST`` may run it from another inventory host (its transport is the vantage).
    vantage: ClassVar[bool] = False

    # -- the shell path (any POSIX host) ------------------------------------------------------------
    def sources(self, params: Any) -> list[Source]:
        """Raw data this probe needs from a POSIX host (files, commands). Empty: not a source-based probe."""
        return []

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> Model:
        """Turn fetched sources into facts. Pure: no I/O."""
        raise ProbeError(t(f"probe {self.name} has no shell path", f"探针 {self.name} 不支持命令方式采集"))

    # -- the native path (this machine) -----------------------------------------------------------------
    has_native: ClassVar[bool] = False

    def collect_native(self, ctx: ProbeContext, params: Any) -> Model:
        raise ProbeError(t(f"probe {self.name} has no native path", f"探针 {self.name} 不支持本机方式采集"))

    # -- entry point ------------------------------------------------------------------------------------
    def collect(self, ctx: ProbeContext, params: Any) -> Model:
        if self.has_native and ctx.prefer_native:
            return self.collect_native(ctx, params)
        if ctx.os_family == "windows":  # the shell path reads /proc and runs POSIX tools: no answer, not "absent"
            raise ProbeError(t(f"probe {self.name} cannot observe a Windows host yet (it reads POSIX files and "
                               f"commands)", f"探针 {self.name} 暂不支持 Windows 主机（它读取 POSIX 文件与命令）"),
                             t("check this item by hand on the Windows host", "请在 Windows 主机上手动检查此项"))
        return self.parse(params, ctx.fetch(self.sources(params)))

    def note(self, params: Any, facts: Model) -> Text | None:
        """Optional context for the result message (e.g. "no service manager on this host")."""
        return None

    @classmethod
    def fields(cls) -> dict[str, Any]:
        return dict(cls.Facts.model_fields)


def _privilege_message(exc: PrivilegeError, host: str) -> tuple[Text, Text]:
    """What went wrong getting root on ``host``, and what to configure (bilingual)."""
    detail = f" ({exc.detail})" if exc.detail else ""
    if exc.reason == "not-root":
        return (t(f"this check needs root on {host}, and the login user is not root",
                  f"该检查需要 {host} 上的 root 权限，而登录用户不是 root"),
                t("set `sudo: true` for the host in the inventory (and `sudo_password: ${env:NAME}` if sudo asks "
                  "for a password), or log in as root; run a local scan as root",
                  "在清单中为该主机设置 `sudo: true`（若 sudo 需要密码，再设置 `sudo_password: ${env:变量名}`），"
                  "或以 root 登录；本机扫描请以 root 运行"))
    if exc.reason == "sudo-missing":
        return (t(f"this check needs root on {host}; sudo is configured but not installed there",
                  f"该检查需要 {host} 上的 root 权限；已配置 sudo，但该主机未安装 sudo"),
                t("log in as root for this host, or ask the client's administrator to run the check",
                  "请以 root 登录该主机，或请客户管理员协助执行该检查"))
    if exc.reason == "sudo-password":
        return (t(f"sudo on {host} asked for a password and the one configured was missing or refused{detail}",
                  f"{host} 上的 sudo 需要密码，但未配置密码或密码被拒绝{detail}"),
                t("check `sudo_password` for this host in the inventory (give it as ${env:NAME}); "
                  "the sudo password is the login user's own password",
                  "请检查清单中该主机的 `sudo_password`（以 ${env:变量名} 提供）；sudo 密码即登录用户自己的密码"))
    return (t(f"sudo on {host} refused to run the check as root{detail}",
              f"{host} 上的 sudo 拒绝以 root 身份执行该检查{detail}"),
            t("ask the client's administrator to grant the login user sudo rights (or the specific command)",
              "请客户管理员为登录用户授予 sudo 权限（或授予该命令的权限）"))
