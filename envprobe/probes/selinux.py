"""``selinux``: is SELinux enforcing, permissive, disabled, or not part of this system at all?

Shell path, in the host's one batch: the kernel's own answer (``/sys/fs/selinux/enforce``; ``/selinux/enforce``
on RHEL 6), ``getenforce`` and ``sestatus`` (loaded policy name), and ``/etc/selinux/config`` (the mode the
next boot will use). ``mode`` is what runs now:

* ``enforcing`` / ``permissive`` — selinuxfs says so (or getenforce/sestatus when selinuxfs is not readable);
* ``disabled`` — the system has SELinux (config file or tools) but the kernel runs without it
  (``SELINUX=disabled``, ``selinux=0`` on the kernel command line, or a change not yet rebooted into);
* ``absent`` — no trace of SELinux: Debian, Ubuntu, SUSE and most desktops (they use AppArmor, if anything).

Native path (this machine): the same files read directly on Linux; other systems have no SELinux (absent).
"""

from __future__ import annotations

import sys
from typing import Any, Literal

from envprobe.model import Text, t
from envprobe.probes.base import Facts, NoParams, Probe, ProbeContext
from envprobe.probes.system import maybe_text
from envprobe.schema import Field, Model
from envprobe.transport.base import CommandResult, Source

Mode = Literal["enforcing", "permissive", "disabled", "absent"]

ENFORCE = Source.file("/sys/fs/selinux/enforce")
ENFORCE_OLD = Source.file("/selinux/enforce")
CONFIG = Source.file("/etc/selinux/config")
GETENFORCE = Source.command("getenforce")
SESTATUS = Source.command("sestatus")


class SelinuxFacts(Facts):
    mode: Mode = Field(description="what the kernel runs now: enforcing, permissive, disabled (SELinux is "
                                   "installed but not running) or absent (no SELinux on this system)")
    config_mode: Literal["enforcing", "permissive", "disabled"] | None = Field(
        description="SELINUX= in /etc/selinux/config: the mode the next boot uses (null when the file is "
                    "missing or says nothing)")
    policy: str | None = Field(description="the policy: the loaded one (sestatus 'Loaded policy name') when "
                                           "known, else SELINUXTYPE= from the config file, e.g. targeted, mls")
    mode_source: str | None = Field(description="where mode came from: selinuxfs, getenforce, sestatus, "
                                                "config (installed but not running) or null (absent)")
    reboot_pending: bool = Field(description="the config file names a different mode than the running one "
                                             "in a way only a reboot applies (to or from disabled)")


def parse_config(text: str) -> dict[str, str]:
    """``/etc/selinux/config`` (``KEY=value`` lines, ``#`` comments) → {KEY: value}."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip().upper()] = value.strip().strip("'\"")
    return out


def parse_sestatus(text: str) -> dict[str, str]:
    """``sestatus`` → {lower-cased label: value}: ``selinux status``, ``current mode``, ``mode from config
    file``, ``loaded policy name`` (``policy from config file`` on RHEL 6)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            out[" ".join(key.lower().split())] = value.strip()
    return out


def _norm_mode(word: str | None) -> str | None:
    w = (word or "").strip().lower()
    return w if w in ("enforcing", "permissive", "disabled") else None


def selinux_facts(enforce: str | None, getenforce: str | None, sestatus: str | None,
                  config: str | None) -> SelinuxFacts:
    """The facts from the raw texts (None: that source was missing or failed)."""
    conf = parse_config(config) if config is not None else {}
    status = parse_sestatus(sestatus) if sestatus is not None else {}
    mode: str | None = None
    source: str | None = None
    value = (enforce or "").strip()
    if value in ("0", "1"):
        mode, source = ("enforcing" if value == "1" else "permissive"), "selinuxfs"
    if mode is None and getenforce is not None:
        first = getenforce.strip().splitlines()[0] if getenforce.strip() else ""
        if _norm_mode(first):
            mode, source = _norm_mode(first), "getenforce"
    if mode is None and status:
        if status.get("selinux status", "").lower() == "disabled":
            mode, source = "disabled", "sestatus"
        elif _norm_mode(status.get("current mode")):
            mode, source = _norm_mode(status.get("current mode")), "sestatus"
    if mode is None:
        if config is not None or getenforce is not None or sestatus is not None:
            mode, source = "disabled", "config" if config is not None else "getenforce"
        else:
            mode = "absent"
    config_mode = _norm_mode(conf.get("SELINUX"))
    if config_mode is None:
        config_mode = _norm_mode(status.get("mode from config file"))
    policy = status.get("loaded policy name") or status.get("policy from config file") or conf.get("SELINUXTYPE")
    pending = config_mode is not None and mode != "absent" and (mode == "disabled") != (config_mode == "disabled")
    return SelinuxFacts(mode=mode, config_mode=config_mode, policy=policy or None, mode_source=source,
                        reboot_pending=pending)


def _ok(res: CommandResult | None) -> str | None:
    """A command's output when it ran (getenforce exits 0 even when disabled); None when missing."""
    if res is None or res.timed_out or res.rc != 0:
        return None
    return res.stdout


class SelinuxProbe(Probe):
    name = "selinux"
    summary = t("SELinux: running mode, the mode configured for the next boot, policy",
                "SELinux：当前运行模式、下次启动的配置模式、策略")
    Params = NoParams
    Facts = SelinuxFacts
    requires = t("no privileges; reads /sys/fs/selinux/enforce and /etc/selinux/config, runs getenforce and "
                 "sestatus when present",
                 "无需特权；读取 /sys/fs/selinux/enforce 与 /etc/selinux/config，如有则运行 getenforce、sestatus")
    example = """\
- id: selinux
  title: {zh-CN: SELinux 未启用强制模式, en: SELinux not enforcing}
  probe: selinux
  expect: {mode: "in [permissive, disabled, absent]", config_mode: "!= enforcing"}
"""
    advice = {
        "mode": t("switch now with setenforce 0 (permissive) and make it permanent with SELINUX=permissive "
                  "(or disabled) in /etc/selinux/config; disabling takes a reboot — or ask the vendor for "
                  "the SELinux policy module the product needs",
                  "可用 setenforce 0 临时切换为 permissive，并在 /etc/selinux/config 中设置 SELINUX=permissive"
                  "（或 disabled）使其永久生效；禁用需重启——或向厂商索取产品所需的 SELinux 策略模块"),
        "config_mode": t("edit SELINUX= in /etc/selinux/config; it takes effect at the next boot",
                         "修改 /etc/selinux/config 中的 SELINUX=，下次启动生效"),
        "policy": t("set SELINUXTYPE= in /etc/selinux/config to the policy the product supports and reboot",
                    "在 /etc/selinux/config 中将 SELINUXTYPE= 设为产品支持的策略并重启"),
        "reboot_pending": t("the configured mode differs from the running one: plan a reboot so they agree",
                            "配置的模式与当前运行的不一致：请安排重启使其生效"),
        "*": t("check with getenforce and sestatus on the host", "请在主机上用 getenforce 与 sestatus 核查"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [ENFORCE, ENFORCE_OLD, CONFIG, GETENFORCE, SESTATUS]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> SelinuxFacts:
        enforce = maybe_text(data, ENFORCE)
        if enforce is None:
            enforce = maybe_text(data, ENFORCE_OLD)
        return selinux_facts(enforce, _ok(data.get(GETENFORCE)), _ok(data.get(SESTATUS)),
                             maybe_text(data, CONFIG))

    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> SelinuxFacts:
        if not sys.platform.startswith("linux"):
            return selinux_facts(None, None, None, None)
        # Linux: the same sources (files and two small commands), through this machine's transport
        return self.parse(params, ctx.fetch(self.sources(params)))

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, SelinuxFacts)
        if facts.mode == "absent":
            return t("this system has no SELinux (no selinuxfs, no /etc/selinux/config, no getenforce)",
                     "该系统没有 SELinux（无 selinuxfs、/etc/selinux/config 与 getenforce）")
        if facts.reboot_pending:
            return t(f"running {facts.mode}, configured {facts.config_mode}: a reboot applies the change",
                     f"当前运行 {facts.mode}，配置为 {facts.config_mode}：重启后生效")
        return None

