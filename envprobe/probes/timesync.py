"""``time``: time zone, NTP synchronisation, and how far the host's clock is from the scanning machine's.

**Time zone** (first that answers): ``TZ`` in the session's environment (it overrides everything for the
programs that see it), the target of the ``/etc/localtime`` symlink (what glibc reads), ``timedatectl``,
``/etc/timezone`` (Debian, Ubuntu), ``/etc/sysconfig/clock`` (CentOS 6). ``utc_offset`` comes from
``date +%z`` on the host.

**Synchronised?** Asked of whoever knows, in this order, and ``ntp_source`` says which answered: ``chronyc -n
tracking`` (chronyd: leap status and reference), ``ntpq -pn`` (ntpd: a ``*`` system peer), ``timedatectl``
(``NTPSynchronized``: systemd's reading of the kernel flag, whichever daemon set it), the kernel's own
``STA_UNSYNC`` flag (``adjtimex(2)``: read directly on this machine, through ``ntptime`` or ``adjtimex -p`` on
a remote host). When none of them can be asked, ``ntp_synchronized`` is null — never a guess.
``ntp_service`` names the time daemon that runs (from ``/proc/*/comm``: chronyd, ntpd, systemd-timesyncd).

**Offset from the scanning machine** (``offset_ms``): the host's clock minus this machine's clock. The host's
clock is read with ``date +%s.%N`` in an exec of its own — *not* in the host's batch, where it would wait
behind every other source (a CPU sample sleeps 200 ms) and the bracket would be far wider — and the exec is
bracketed by two local clock reads t0 and t1: the host read its clock somewhere in [t0, t1], so
``offset = remote − (t0 + t1) / 2`` within ``± (t1 − t0) / 2`` (``offset_uncertainty_ms``). With
``offset_samples`` > 1 the sample with the narrowest bracket is kept (NTP's clock-filter idea). On this
machine (the local transport) the clock *is* the scanning machine's: 0 ± 0, nothing is run. A host whose
``date`` has no ``%N`` (BusyBox) gives whole seconds; the uncertainty then grows by 0.5 s.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.probes.system import maybe_text
from envprobe.schema import Field, Model
from envprobe.transport.base import CommandResult, Source, TransportError

_TIMEOUT = "T=; command -v timeout >/dev/null 2>&1 && T='timeout -k 1 5'; "


def _guarded(tool: str, line: str) -> str:
    """Run ``line`` only when ``tool`` exists (exit 127 otherwise), under a 5 s timeout when available."""
    return f"command -v {tool} >/dev/null 2>&1 || exit 127; {_TIMEOUT}$T {line}"


ETC_TIMEZONE = Source.file("/etc/timezone")
SYSCONFIG_CLOCK = Source.file("/etc/sysconfig/clock")
LOCALTIME_LINK = Source.command("readlink /etc/localtime")
DATE = Source.command("date +%z; date +%Z; printf 'TZ=%s\\n' \"${TZ-@unset}\"")
TIMEDATECTL = Source.command(_guarded("timedatectl", "timedatectl show 2>/dev/null || $T timedatectl status"))
CHRONYC = Source.command(_guarded("chronyc", "chronyc -n tracking"))
NTPQ = Source.command(_guarded("ntpq", "ntpq -pn"))
KERNEL = Source.command("if command -v ntptime >/dev/null 2>&1; then echo @@ntptime; ntptime; "
                        "elif command -v adjtimex >/dev/null 2>&1; then echo @@adjtimex; "
                        "adjtimex --print 2>/dev/null || adjtimex; "
                        "else exit 127; fi")
DAEMONS = Source.command("for f in /proc/[0-9]*/comm; do read -r c < \"$f\" 2>/dev/null || continue; "
                         "case $c in chronyd|ntpd|systemd-timesyn|openntpd|xntpd) echo \"$c\";; esac; "
                         "done; true")
REMOTE_CLOCK = "date +%s.%N"

#: kernel status bit: the clock is not synchronised (include/uapi/linux/timex.h)
STA_UNSYNC = 0x0040
_DAEMON_NAMES = {"chronyd": "chronyd", "ntpd": "ntpd", "xntpd": "ntpd", "openntpd": "openntpd",
                 "systemd-timesyn": "systemd-timesyncd"}


class TimeParams(Model):
    offset_samples: int = Field(default=1, ge=0, le=10,
                                description="how many times the host's clock is read for offset_ms (each read is "
                                            "one exec; the narrowest bracket wins); 0: do not measure "
                                            "(offset_ms is then null)")


class TimeFacts(Facts):
    timezone: str | None = Field(description="IANA time zone name, e.g. Asia/Shanghai, Etc/UTC (null when "
                                             "the host does not say)")
    timezone_source: str | None = Field(description="where timezone came from: TZ, /etc/localtime, timedatectl, "
                                                    "/etc/timezone, /etc/sysconfig/clock")
    utc_offset: str | None = Field(description="the host's offset from UTC now, e.g. +08:00")
    tz_abbreviation: str | None = Field(description="the zone's abbreviation now, e.g. CST, UTC")
    ntp_synchronized: bool | None = Field(description="the clock is synchronised to a time source, as the "
                                                      "source named in ntp_source says; null when nothing on "
                                                      "the host can tell")
    ntp_source: str | None = Field(description="which answered ntp_synchronized: chronyc, ntpq, timedatectl, "
                                                "adjtimex (the kernel flag), or null")
    ntp_server: str | None = Field(description="the server the clock follows (chrony's reference, ntpd's "
                                                "system peer), when known")
    ntp_stratum: int | None = Field(description="stratum of the host's clock (chrony) or of its system peer "
                                                "(ntpd), when known")
    ntp_offset_ms: float | None = Field(description="the daemon's estimate of the local clock minus NTP time, "
                                                    "ms (chrony 'System time', ntpd peer offset), when known")
    ntp_service: str = Field(description="the time daemon that runs: chronyd, ntpd, systemd-timesyncd, "
                                         "openntpd, or none (seen in /proc; a /proc mounted with hidepid hides "
                                         "other users' daemons from a non-root login)")
    ntp_services: list[str] = Field(description="every time daemon that runs (two at once fight over the clock)")
    offset_ms: float | None = Field(description="the host's clock minus the scanning machine's clock, ms "
                                                "(0 on this machine; null when not measured)")
    offset_uncertainty_ms: float | None = Field(description="offset_ms is right within ± this many ms "
                                                            "(half the measuring exec's round trip)")


# -- parsers ---------------------------------------------------------------------------------------------
def zone_from_link(target: str) -> str | None:
    """``/usr/share/zoneinfo/Asia/Shanghai`` or ``../usr/share/zoneinfo/posix/Etc/UTC`` → the IANA name."""
    target = target.strip()
    if "zoneinfo/" not in target:
        return None
    name = target.split("zoneinfo/", 1)[1]
    for prefix in ("posix/", "right/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name or None


def parse_sysconfig_clock(text: str) -> str | None:
    """``ZONE="Asia/Shanghai"`` in /etc/sysconfig/clock (CentOS 6)."""
    m = re.search(r"^\s*ZONE\s*=\s*\"?([^\"\s]+)\"?", text, re.M)
    return m.group(1) if m else None


def parse_date(text: str) -> tuple[str | None, str | None, str | None]:
    """The output of :data:`DATE` → (utc offset ``+08:00``, abbreviation, TZ or None when unset)."""
    lines = text.splitlines()
    offset = abbrev = tz = None
    if lines and re.fullmatch(r"[+-]\d{4}", lines[0].strip()):
        z = lines[0].strip()
        offset = f"{z[:3]}:{z[3:]}"
    if len(lines) > 1 and lines[1].strip():
        abbrev = lines[1].strip()
    for line in lines[2:]:
        if line.startswith("TZ="):
            value = line[3:]
            tz = None if value == "@unset" or not value else value
    return offset, abbrev, tz


def tz_env_zone(tz: str | None) -> str | None:
    """A TZ value that names a zone: ``Asia/Shanghai`` or ``:Asia/Shanghai``; POSIX rules (``CST-8``) are
    reported as written."""
    if not tz:
        return None
    return tz[1:] if tz.startswith(":") else tz


def parse_timedatectl(text: str) -> dict[str, str]:
    """``timedatectl show`` (``Key=value``) or ``timedatectl status`` (``Label: value``, CentOS 7's and newer
    wording) → {"timezone": …, "synchronized": "yes"|"no", "ntp": "yes"|"no"}."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if "=" in line and ":" not in line.split("=", 1)[0]:
            key, _, value = line.partition("=")
            if key == "Timezone" and value:
                out["timezone"] = value.strip()
            elif key == "NTPSynchronized":
                out["synchronized"] = value.strip().lower()
            elif key == "NTP":
                out["ntp"] = value.strip().lower()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        label, value = key.strip().lower(), value.strip()
        if label == "time zone" and value:
            out["timezone"] = value.split()[0]
        elif label in ("system clock synchronized", "ntp synchronized"):
            out["synchronized"] = value.lower()
        elif label in ("ntp service", "ntp enabled", "network time on"):
            out["ntp"] = "yes" if value.lower() in ("active", "yes") else "no"
    return out


def parse_chronyc_tracking(text: str) -> dict[str, Any] | None:
    """``chronyc -n tracking`` → {synchronized, server, stratum, offset_ms}; None when chronyd did not answer
    (``506 Cannot talk to daemon``)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    if "leap status" not in fields or "reference id" not in fields:
        return None
    ref = fields["reference id"]
    m = re.match(r"^([0-9A-Fa-f]{8})\s*(?:\((.*)\))?", ref)
    ref_hex = m.group(1) if m else ""
    ref_name = (m.group(2) or "").strip() if m else ""
    stratum = int(fields["stratum"]) if fields.get("stratum", "").isdigit() else None
    leap = fields["leap status"].lower()
    synced = leap != "not synchronised" and ref_hex not in ("", "00000000") and stratum not in (None, 0, 16)
    offset_ms = None
    sm = re.match(r"^([0-9.]+)\s+seconds\s+(fast|slow)", fields.get("system time", ""))
    if sm:
        offset_ms = round(float(sm.group(1)) * 1000 * (1 if sm.group(2) == "fast" else -1), 6)
    server = ref_name or (ref_hex if ref_hex not in ("", "00000000") else None)
    return {"synchronized": synced, "server": server or None, "stratum": stratum, "offset_ms": offset_ms}


def parse_ntpq_peers(text: str) -> dict[str, Any] | None:
    """``ntpq -pn`` → {synchronized, server, stratum, offset_ms}; None when ntpd did not answer. The system
    peer carries the tally ``*`` (``o`` for a PPS peer)."""
    lines = text.splitlines()
    if not any(line.lstrip().startswith("remote") for line in lines):
        if any("No association ID" in line for line in lines):
            return {"synchronized": False, "server": None, "stratum": None, "offset_ms": None}
        return None
    past_rule = False
    for line in lines:
        if line.startswith("====="):
            past_rule = True
            continue
        if not past_rule or not line.strip():
            continue
        tally, rest = line[0], line[1:].split()
        if tally in "*o" and len(rest) >= 9:
            try:
                stratum: int | None = int(rest[2])
            except ValueError:
                stratum = None
            try:
                offset: float | None = float(rest[-2])
            except ValueError:
                offset = None
            return {"synchronized": True, "server": rest[0], "stratum": stratum, "offset_ms": offset}
    return {"synchronized": False, "server": None, "stratum": None, "offset_ms": None}


def parse_kernel_status(text: str) -> int | None:
    """``ntptime`` (``status 0x2001 (PLL,NANO)``), ``adjtimex --print`` (``status: 8193``) or BusyBox
    ``adjtimex`` (``status:       64 (UNSYNC)``) → the kernel's status word; None when none printed one."""
    m = re.search(r"^\s*status\s+(0x[0-9a-fA-F]+)", text, re.M)
    if m:
        return int(m.group(1), 16)
    m = re.search(r"^\s*status:\s*(\d+)", text, re.M)
    if m:
        return int(m.group(1))
    return None


def parse_daemons(text: str) -> list[str]:
    found = [_DAEMON_NAMES[w] for w in text.split() if w in _DAEMON_NAMES]
    return list(dict.fromkeys(sorted(found)))


def parse_remote_clock(text: str) -> tuple[float, float] | None:
    """``date +%s.%N`` → (seconds since the epoch, extra uncertainty in s): nanoseconds when the host's date
    knows %N, else whole seconds (the true time lies in [s, s + 1): centre + 0.5 s, ± 0.5 s)."""
    m = re.match(r"^\s*(\d+)(?:\.(\d{1,9}))?", text)
    if not m:
        return None
    if m.group(2):
        return float(f"{m.group(1)}.{m.group(2)}"), 0.0
    return float(m.group(1)) + 0.5, 0.5


def time_facts(data: dict[Source, CommandResult], kernel_status: int | None = None) -> TimeFacts:
    """Facts from the host's batch (offset_ms left null: it is measured apart). ``kernel_status``: the
    adjtimex status word when read some other way (on this machine, directly)."""
    offset, abbrev, tz = parse_date(maybe_text(data, DATE) or "")
    tdc_text = maybe_text(data, TIMEDATECTL)
    tdc = parse_timedatectl(tdc_text) if tdc_text else {}
    link = maybe_text(data, LOCALTIME_LINK)
    candidates: list[tuple[str, str | None]] = [
        ("TZ", tz_env_zone(tz)),
        ("/etc/localtime", zone_from_link(link) if link else None),
        ("timedatectl", tdc.get("timezone") if tdc.get("timezone") not in (None, "n/a") else None),
        ("/etc/timezone", (maybe_text(data, ETC_TIMEZONE) or "").strip().splitlines()[0]
         if (maybe_text(data, ETC_TIMEZONE) or "").strip() else None),
        ("/etc/sysconfig/clock", parse_sysconfig_clock(maybe_text(data, SYSCONFIG_CLOCK) or "")),
    ]
    zone, zone_source = next(((z, s) for s, z in candidates if z), (None, None))

    synced: bool | None = None
    source: str | None = None
    server: str | None = None
    stratum: int | None = None
    ntp_offset: float | None = None
    for name, src, parser in (("chronyc", CHRONYC, parse_chronyc_tracking), ("ntpq", NTPQ, parse_ntpq_peers)):
        res = data.get(src)
        if res is None or res.timed_out:
            continue
        got = parser(res.stdout)
        if got is not None:
            synced, source = bool(got["synchronized"]), name
            server, stratum, ntp_offset = got["server"], got["stratum"], got["offset_ms"]
            break
    if source is None and tdc.get("synchronized") in ("yes", "no"):
        synced, source = tdc["synchronized"] == "yes", "timedatectl"
    if source is None:
        status = kernel_status
        if status is None:
            status = parse_kernel_status(maybe_text(data, KERNEL) or "")
        if status is not None:
            synced, source = not status & STA_UNSYNC, "adjtimex"
    daemons = parse_daemons(maybe_text(data, DAEMONS) or "")
    return TimeFacts(
        timezone=zone, timezone_source=zone_source, utc_offset=offset, tz_abbreviation=abbrev,
        ntp_synchronized=synced, ntp_source=source, ntp_server=server, ntp_stratum=stratum,
        ntp_offset_ms=ntp_offset, ntp_service=daemons[0] if daemons else "none", ntp_services=daemons,
        offset_ms=None, offset_uncertainty_ms=None,
    )


# -- the kernel flag on this machine ----------------------------------------------------------------------
def local_kernel_status() -> int | None:
    """adjtimex(2) in read-only mode (modes = 0) on this Linux machine: the kernel's status word."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    class Timeval(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]

    class Timex(ctypes.Structure):  # struct timex, include/uapi/linux/timex.h
        _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                    ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                    ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                    ("time", Timeval), ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long),
                    ("jitter", ctypes.c_long), ("shift", ctypes.c_int), ("stabil", ctypes.c_long),
                    ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long), ("errcnt", ctypes.c_long),
                    ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int), ("padding", ctypes.c_int * 11)]

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        tx = Timex()
        if libc.adjtimex(ctypes.byref(tx)) < 0:
            return None
        return int(tx.status)
    except (OSError, AttributeError):
        return None


def measure_offset(ctx: ProbeContext, samples: int) -> tuple[float | None, float | None]:
    """(offset_ms, uncertainty_ms) of the host's clock against this machine's; see the module docstring."""
    if samples <= 0:
        return None, None
    if ctx.transport.is_local:
        return 0.0, 0.0
    best: tuple[float, float] | None = None
    for _ in range(samples):
        try:  # the transport brackets the command as tightly as it can (SSH: after opening the channel)
            res, t0, t1 = ctx.transport.timed_run(REMOTE_CLOCK, timeout=min(10.0, ctx.remaining()))
        except TransportError:
            break
        got = parse_remote_clock(res.stdout) if res.ok else None
        if got is None:
            continue
        remote, extra = got
        offset = remote - (t0 + t1) / 2
        unc = (t1 - t0) / 2 + extra
        if best is None or unc < best[1]:
            best = (offset, unc)
    if best is None:
        return None, None
    return round(best[0] * 1000, 3), round(best[1] * 1000, 3)


class TimeProbe(Probe):
    name = "time"
    summary = t("Time: time zone, NTP/chrony synchronisation, clock offset from the scanning machine",
                "时间：时区、NTP/chrony 同步状态、与扫描机的时钟偏差")
    Params = TimeParams
    Facts = TimeFacts
    requires = t("no privileges; reads /etc/localtime, /etc/timezone and /proc, asks chronyc, ntpq, timedatectl "
                 "or ntptime when present; the clock offset costs one extra exec per sample on a remote host",
                 "无需特权；读取 /etc/localtime、/etc/timezone 与 /proc，如有则询问 chronyc、ntpq、timedatectl "
                 "或 ntptime；远程主机上每次测量时钟偏差多一次执行")
    example = """\
- id: time-sync
  title: {zh-CN: 时区与时间同步, en: Time zone and time sync}
  probe: time
  expect: {timezone: Asia/Shanghai, ntp_synchronized: true, offset_ms: "< 500"}
"""
    advice = {
        "timezone": t("set the zone: timedatectl set-timezone Asia/Shanghai (or ln -sf "
                      "/usr/share/zoneinfo/Asia/Shanghai /etc/localtime), then restart the applications",
                      "设置时区：timedatectl set-timezone Asia/Shanghai（或 ln -sf "
                      "/usr/share/zoneinfo/Asia/Shanghai /etc/localtime），然后重启应用"),
        "utc_offset": t("the host runs in another time zone: set it with timedatectl set-timezone",
                        "主机时区不符：请用 timedatectl set-timezone 设置"),
        "ntp_synchronized": t("start a time daemon and point it at the site's NTP server: chrony (server "
                              "NTP_IP iburst in /etc/chrony.conf, systemctl enable --now chronyd), then check "
                              "chronyc tracking / chronyc sources",
                              "启动时间同步服务并指向现场 NTP 服务器：chrony（在 /etc/chrony.conf 中写 "
                              "server NTP_IP iburst，systemctl enable --now chronyd），再用 chronyc tracking / "
                              "chronyc sources 检查"),
        "ntp_service": t("install and enable one time daemon (chronyd on RHEL-family, Kylin, UOS, openEuler; "
                         "chrony or systemd-timesyncd on Debian/Ubuntu) and disable the others",
                         "安装并启用一个时间同步服务（RHEL 系、麒麟、统信、欧拉用 chronyd；Debian/Ubuntu 用 "
                         "chrony 或 systemd-timesyncd），并停用其他时间服务"),
        "ntp_services": t("run only one time daemon: stop and disable the others (systemctl disable --now ntpd)",
                          "只保留一个时间同步服务：停止并禁用其余的（systemctl disable --now ntpd）"),
        "offset_ms": t("the host's clock differs from the scanning machine's: synchronise both to the same NTP "
                       "server (chronyc makestep forces a step once synchronised)",
                       "主机时钟与扫描机不一致：请让两者同步到同一 NTP 服务器（同步后可用 chronyc makestep "
                       "立即校正）"),
        "ntp_offset_ms": t("the clock is far from NTP time: check chronyc sources / ntpq -p and force a step "
                           "(chronyc makestep)", "时钟与 NTP 时间偏差大：检查 chronyc sources / ntpq -p，"
                           "并用 chronyc makestep 立即校正"),
        "*": t("check with timedatectl, chronyc tracking or ntpq -p on the host",
               "请在主机上用 timedatectl、chronyc tracking 或 ntpq -p 核查"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [DATE, LOCALTIME_LINK, ETC_TIMEZONE, SYSCONFIG_CLOCK, TIMEDATECTL, CHRONYC, NTPQ, KERNEL, DAEMONS]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> TimeFacts:
        return time_facts(data)

    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> TimeFacts:
        if os.name != "posix":
            return _windows_facts(params)
        facts = time_facts(ctx.fetch(self.sources(params)), kernel_status=local_kernel_status())
        return _with_offset(facts, 0.0 if params.offset_samples else None, 0.0 if params.offset_samples else None)

    def collect(self, ctx: ProbeContext, params: Any) -> Model:
        if self.has_native and ctx.prefer_native:
            return self.collect_native(ctx, params)
        facts = self.parse(params, ctx.fetch(self.sources(params)))
        # measured after the batch (the connection is open and warm), in execs of its own
        offset, unc = measure_offset(ctx, params.offset_samples)
        return _with_offset(facts, offset, unc)

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, TimeFacts)
        parts = []
        if facts.ntp_source is None:
            parts.append(t("nothing on the host could say whether the clock is synchronised (no chronyc, ntpq, "
                           "timedatectl or ntptime answered)",
                           "主机上无法判断时钟是否已同步（chronyc、ntpq、timedatectl、ntptime 均无应答）"))
        if len(facts.ntp_services) > 1:
            names = ", ".join(facts.ntp_services)
            parts.append(t(f"several time daemons run at once: {names}", f"同时运行多个时间同步服务：{names}"))
        if facts.offset_ms is not None and facts.offset_uncertainty_ms:
            parts.append(t(f"clock offset {facts.offset_ms:+.1f} ms ± {facts.offset_uncertainty_ms:.1f} ms",
                           f"时钟偏差 {facts.offset_ms:+.1f} ms ± {facts.offset_uncertainty_ms:.1f} ms"))
        if not parts:
            return None
        return t("; ".join(p["en"] for p in parts), "；".join(p["zh-CN"] for p in parts))


def _with_offset(facts: TimeFacts, offset: float | None, unc: float | None) -> TimeFacts:
    return TimeFacts(**{**facts.model_dump(), "offset_ms": offset, "offset_uncertainty_ms": unc})


def _windows_facts(params: Any) -> TimeFacts:
    """Windows: the zone's name and offset from Python; synchronisation is not observed (w32tm needs admin)."""
    lt = time.localtime()
    gmtoff = lt.tm_gmtoff or 0
    sign = "+" if gmtoff >= 0 else "-"
    hh, mm = divmod(abs(gmtoff) // 60, 60)
    if not lt.tm_zone and not time.tzname[0]:
        raise ProbeError(t("this machine does not say which time zone it is in", "本机未提供时区信息"))
    return TimeFacts(timezone=lt.tm_zone or time.tzname[0], timezone_source="windows",
                     utc_offset=f"{sign}{hh:02d}:{mm:02d}", tz_abbreviation=lt.tm_zone or None,
                     ntp_synchronized=None, ntp_source=None, ntp_server=None, ntp_stratum=None, ntp_offset_ms=None,
                     ntp_service="none", ntp_services=[],
                     offset_ms=0.0 if params.offset_samples else None,
                     offset_uncertainty_ms=0.0 if params.offset_samples else None)
