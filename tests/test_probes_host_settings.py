"""The net_interface, time, selinux and locale probes (and config's documentation).

Three kinds of test, as for the system probes:
* the pure parsers on outputs recorded from RHEL/CentOS, Kylin, UOS, openEuler, Ubuntu, Debian
  (tests/fixtures/hostsettings/{netif,time,selinux,locale}; one README per folder says what each file is);
* both collection paths on this machine, checked against independent readings (``ip -j addr``,
  ``readlink /etc/localtime``, ``date +%z``, ``locale -a``, /sys/fs/selinux);
* over SSH to a host in a network namespace (a real sshd): the MTU the test sets on its veth, a bridge with a
  tap port the test creates there, the login shell's locale from a profile the test writes, and the clock
  offset (the same clock: 0 within the measured uncertainty).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from envprobe.probes.base import NoParams, ProbeContext, ProbeError
from envprobe.probes.configfile import ConfigProbe
from envprobe.probes.localeinfo import (
    DEFAULT_LOCALE,
    ENVIRONMENT,
    LOCALE_A,
    LOCALE_CONF,
    SESSION,
    SYSCONFIG_I18N,
    LocaleParams,
    LocaleProbe,
    normalise,
)
from envprobe.probes.netif import (
    BONDING,
    IF_INET6,
    IFCONFIG,
    IP_ADDR,
    IP_LINK,
    SYSFS,
    NetInterfaceParams,
    NetInterfaceProbe,
)
from envprobe.probes.selinux import CONFIG, ENFORCE, ENFORCE_OLD, GETENFORCE, SESTATUS, SelinuxProbe
from envprobe.probes.timesync import (
    CHRONYC,
    DAEMONS,
    DATE,
    ETC_TIMEZONE,
    KERNEL,
    LOCALTIME_LINK,
    NTPQ,
    REMOTE_CLOCK,
    SYSCONFIG_CLOCK,
    TIMEDATECTL,
    TimeParams,
    TimeProbe,
    parse_remote_clock,
)
from envprobe.schema import ValidationError
from envprobe.transport.base import CommandResult, Source
from envprobe.transport.local import LocalTransport
from tests.conftest import need
from tests.netlab import need_netlab, netlab  # noqa: F401 - the fixture is used by name
from tests.sshfix import SshServer, keygen, need_sshd

FIX = Path(__file__).resolve().parent / "fixtures" / "hostsettings"
LINUX = sys.platform.startswith("linux")
linux_only = pytest.mark.skipif(not LINUX, reason="reads /proc and /sys: Linux only")
NOT_THERE = CommandResult(127, "", "sh: command not found", 0.0)


def replay(probe, params, folder: Path, files: dict[Source, str]) -> dict[Source, CommandResult]:
    """What a host returned for each of the probe's sources, from a recorded folder: ``NAME`` is the output
    (exit 0), ``NAME.fail`` the error text of a command that ran and failed (exit 1), no file: not there."""
    wanted = probe.sources(params)
    assert set(files) <= set(wanted), f"fixture maps sources the probe no longer asks for: {set(files) - set(wanted)}"
    out: dict[Source, CommandResult] = {}
    for src in wanted:
        name = files.get(src)
        ok, failed = (folder / name, folder / f"{name}.fail") if name else (None, None)
        if ok is not None and ok.exists():
            out[src] = CommandResult(0, ok.read_text(encoding="utf-8"), "", 1.0)
        elif failed is not None and failed.exists():
            out[src] = CommandResult(1, "", failed.read_text(encoding="utf-8"), 1.0)
        else:
            out[src] = NOT_THERE
    return out


def ctx(native: bool, transport=None, timeout: float = 20) -> ProbeContext:
    return ProbeContext(transport or LocalTransport(), "local", timeout, prefer_native=native)


# ===========================================================================================================
# registration and documentation
# ===========================================================================================================
PROBES = [NetInterfaceProbe, TimeProbe, SelinuxProbe, LocaleProbe, ConfigProbe]


def test_entry_points_name_these_classes():
    eps = {ep.name: ep.value for ep in entry_points(group="envprobe.probes")}
    for cls in PROBES:
        assert eps[cls.name] == f"{cls.__module__}:{cls.__name__}"


@pytest.mark.parametrize("cls", PROBES, ids=lambda c: c.name)
def test_probe_has_a_native_path_and_general_advice(cls):
    assert cls.has_native and "*" in cls.advice


# ===========================================================================================================
# selinux
# ===========================================================================================================
SELINUX_FILES = {ENFORCE: "enforce", ENFORCE_OLD: "selinux-enforce-old", CONFIG: "config", GETENFORCE: "getenforce",
                 SESTATUS: "sestatus"}
SELINUX_CASES = {
    # case: (mode, config_mode, policy, mode_source, reboot_pending)
    "rhel9-enforcing": ("enforcing", "enforcing", "targeted", "selinuxfs", False),
    "openeuler2203-permissive-now": ("permissive", "enforcing", "targeted", "selinuxfs", False),
    "kylin-v10-disabled-pending": ("enforcing", "disabled", "targeted", "selinuxfs", True),
    "centos7-disabled": ("disabled", "disabled", "targeted", "getenforce", False),
    "uos20-config-only": ("disabled", "permissive", "targeted", "config", True),
    "rhel6-enforcing": ("enforcing", "enforcing", "targeted", "selinuxfs", False),
    "debian12-absent": ("absent", None, None, None, False),
    "ubuntu2204-absent": ("absent", None, None, None, False),
}


@pytest.mark.parametrize("case", sorted(SELINUX_CASES))
def test_selinux_parse_recorded(case):
    p = SelinuxProbe()
    f = p.parse(NoParams(), replay(p, NoParams(), FIX / "selinux" / case, SELINUX_FILES))
    assert (f.mode, f.config_mode, f.policy, f.mode_source, f.reboot_pending) == SELINUX_CASES[case]


def test_selinux_notes():
    p = SelinuxProbe()
    f = p.parse(NoParams(), replay(p, NoParams(), FIX / "selinux" / "kylin-v10-disabled-pending", SELINUX_FILES))
    assert "reboot" in p.note(NoParams(), f)["en"] and "重启" in p.note(NoParams(), f)["zh-CN"]


@linux_only
@pytest.mark.parametrize("native", [True, False], ids=["native", "shell"])
def test_selinux_here_matches_the_machine(native):
    f = SelinuxProbe().collect(ctx(native), NoParams())
    has_fs = os.path.exists("/sys/fs/selinux/enforce")
    has_conf = os.path.exists("/etc/selinux/config")
    if not has_fs and not has_conf and shutil.which("getenforce") is None:
        assert (f.mode, f.config_mode, f.policy) == ("absent", None, None)  # Debian here: no SELinux at all
        assert "no SELinux" in SelinuxProbe().note(NoParams(), f)["en"]
    elif has_fs:
        assert f.mode == ("enforcing" if Path("/sys/fs/selinux/enforce").read_text().strip() == "1" else
                          "permissive")
    else:
        assert f.mode == "disabled"


# ===========================================================================================================
# locale
# ===========================================================================================================
LOCALE_FILES = {SESSION: "session", LOCALE_A: "locale-a", LOCALE_CONF: "locale.conf", DEFAULT_LOCALE: "default-locale",
                SYSCONFIG_I18N: "i18n", ENVIRONMENT: "environment"}
LOCALE_CASES = {
    # case: (lang, lc_all, ctype, codeset, source, ctype_available, has_zh_cn_utf8)
    "rhel9-zh": ("zh_CN.UTF-8", None, "zh_CN.UTF-8", "UTF-8", "/etc/locale.conf", True, True),
    "kylin-v10-zh": ("zh_CN.UTF-8", None, "zh_CN.UTF-8", "UTF-8", "/etc/locale.conf", True, True),
    "ubuntu2204-en": ("en_US.UTF-8", None, "en_US.UTF-8", "UTF-8", "/etc/default/locale", True, False),
    "centos6-i18n": ("en_US.UTF-8", None, "en_US.UTF-8", "UTF-8", "/etc/sysconfig/i18n", True, True),
    "uos20-gbk-missing": ("zh_CN.GBK", "zh_CN.GBK", "zh_CN.GBK", "GBK", "login-shell", False, True),
    "openeuler2203-lc-all-c": ("en_US.UTF-8", "C", "C", None, "login-shell", True, False),
    "debian12-unset": (None, None, "C", None, "unset", True, False),
}


@pytest.mark.parametrize("case", sorted(LOCALE_CASES))
def test_locale_parse_recorded(case):
    p, params = LocaleProbe(), LocaleParams(name="zh_CN.utf8")
    f = p.parse(params, replay(p, params, FIX / "locale" / case, LOCALE_FILES))
    assert (f.lang, f.lc_all, f.ctype, f.codeset, f.source, f.ctype_available, f.has_zh_cn_utf8) == LOCALE_CASES[case]
    assert f.has_name == f.has_zh_cn_utf8  # the name is matched tolerantly, as has_zh_cn_utf8 is
    assert f.utf8 == (f.codeset == "UTF-8")
    assert f.available == (FIX / "locale" / case / "locale-a").read_text().split()


def test_locale_system_lang_and_notes():
    p, params = LocaleProbe(), LocaleParams()
    f = p.parse(params, replay(p, params, FIX / "locale" / "uos20-gbk-missing", LOCALE_FILES))
    assert f.system_lang == "zh_CN.UTF-8" and f.language == "zh_CN" and f.has_name is None
    assert "zh_CN.GBK" in p.note(params, f)["en"] and "未安装" in p.note(params, f)["zh-CN"]


@pytest.mark.parametrize("name,norm", [
    ("zh_CN.utf8", "zh_CN.UTF-8"), ("zh_CN.UTF-8", "zh_CN.UTF-8"), ("zh_CN.gb18030", "zh_CN.GB18030"),
    ("en_US.iso88591", "en_US.ISO-8859-1"), ("sr_RS.utf8@latin", "sr_RS.UTF-8@latin"), ("C.utf8", "C.UTF-8"),
    ("zh_TW.euctw", "zh_TW.EUC-TW"), ("POSIX", "POSIX"), ("zh_CN", "zh_CN"), ("de_DE@euro", "de_DE@euro"),
])
def test_locale_normalisation(name, norm):
    assert normalise(name) == norm


def test_locale_session_without_marker_falls_back_to_files():
    p, params = LocaleProbe(), LocaleParams()
    data = replay(p, params, FIX / "locale" / "rhel9-zh", LOCALE_FILES)
    data[SESSION] = CommandResult(124, "", "timeout", 5000.0)  # a profile script that hung
    f = p.parse(params, data)
    assert (f.lang, f.source) == ("zh_CN.UTF-8", "/etc/locale.conf")


@linux_only
def test_locale_here_both_paths_agree_with_locale_a():
    need(shutil.which("locale") is not None, "needs the locale command")
    listed = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
    native = LocaleProbe().collect(ctx(True), LocaleParams(name="C.UTF-8"))
    shell = LocaleProbe().collect(ctx(False), LocaleParams(name="C.UTF-8"))
    assert native == shell
    assert native.available == listed
    assert native.has_name == any(normalise(x) == "C.UTF-8" for x in listed)


# ===========================================================================================================
# time
# ===========================================================================================================
TIME_FILES = {DATE: "date", LOCALTIME_LINK: "localtime-link", ETC_TIMEZONE: "etc-timezone",
              SYSCONFIG_CLOCK: "sysconfig-clock", TIMEDATECTL: "timedatectl", CHRONYC: "chronyc", NTPQ: "ntpq",
              KERNEL: "kernel", DAEMONS: "daemons"}
TIME_CASES = {
    # case: (timezone, tz source, utc_offset, synchronized, ntp_source, ntp_server, stratum, ntp_offset_ms,
    #        ntp_service)
    "rhel9-chrony-synced": ("Asia/Shanghai", "/etc/localtime", "+08:00", True, "chronyc", "10.10.10.1", 3,
                            0.023914, "chronyd"),
    "kylin-v10-chrony-unsynced": ("Asia/Shanghai", "/etc/localtime", "+08:00", False, "chronyc", None, 0, 0.0,
                                  "chronyd"),
    "centos7-ntpd-synced": ("Asia/Shanghai", "/etc/localtime", "+08:00", True, "ntpq", "10.20.0.11", 2, -0.731,
                            "ntpd"),
    "openeuler2203-ntpd-unsynced": ("Asia/Shanghai", "/etc/localtime", "+08:00", False, "ntpq", None, None, None,
                                    "ntpd"),
    "ubuntu2204-timesyncd": ("Asia/Shanghai", "/etc/localtime", "+08:00", True, "timedatectl", None, None, None,
                             "systemd-timesyncd"),
    "uos20-ntptime-unsync": ("Asia/Shanghai", "/etc/localtime", "+08:00", False, "adjtimex", None, None, None,
                             "none"),
    "centos6-adjtimex-two-daemons": ("Asia/Shanghai", "/etc/sysconfig/clock", "+08:00", True, "adjtimex", None,
                                     None, None, "chronyd"),
    "rhel8-tz-env": ("Asia/Tokyo", "TZ", "+09:00", True, "chronyc", "169.254.169.123", 4, -0.001021, "chronyd"),
    "debian12-no-daemon": ("Etc/UTC", "/etc/localtime", "+00:00", None, None, None, None, None, "none"),
}


@pytest.mark.parametrize("case", sorted(TIME_CASES))
def test_time_parse_recorded(case):
    p, params = TimeProbe(), TimeParams()
    f = p.parse(params, replay(p, params, FIX / "time" / case, TIME_FILES))
    got = (f.timezone, f.timezone_source, f.utc_offset, f.ntp_synchronized, f.ntp_source, f.ntp_server,
           f.ntp_stratum, f.ntp_offset_ms, f.ntp_service)
    assert got == TIME_CASES[case]
    assert f.offset_ms is None and f.offset_uncertainty_ms is None  # measured apart, never from the batch


def test_time_two_daemons_are_reported():
    p, params = TimeProbe(), TimeParams()
    f = p.parse(params, replay(p, params, FIX / "time" / "centos6-adjtimex-two-daemons", TIME_FILES))
    assert f.ntp_services == ["chronyd", "ntpd"]
    note = p.note(params, f)
    assert "several time daemons" in note["en"] and "多个时间同步服务" in note["zh-CN"]


def test_time_no_source_is_null_with_a_note():
    p, params = TimeProbe(), TimeParams()
    f = p.parse(params, replay(p, params, FIX / "time" / "debian12-no-daemon", TIME_FILES))
    assert f.ntp_synchronized is None and "could say" in p.note(params, f)["en"]


@pytest.mark.parametrize("text,expected", [
    ("1795680001.235082123\n", (1795680001.235082123, 0.0)),
    ("1795680001.%N\n", (1795680001.5, 0.5)),  # a date without %N: whole seconds
    ("1795680001\n", (1795680001.5, 0.5)),
    ("garbage", None),
])
def test_remote_clock_parse(text, expected):
    assert parse_remote_clock(text) == expected


@linux_only
@pytest.mark.parametrize("native", [True, False], ids=["native", "shell"])
def test_time_here(native):
    f = TimeProbe().collect(ctx(native), TimeParams())
    z = time.strftime("%z")
    assert f.utc_offset == f"{z[:3]}:{z[3:]}"
    link = os.readlink("/etc/localtime") if os.path.islink("/etc/localtime") else None
    if link and not os.environ.get("TZ"):
        assert f.timezone == link.split("zoneinfo/", 1)[1] and f.timezone_source == "/etc/localtime"
    assert (f.offset_ms, f.offset_uncertainty_ms) == (0.0, 0.0)  # this machine is the scanning machine
    tools = [t for t in ("chronyc", "ntpq", "timedatectl", "ntptime", "adjtimex") if shutil.which(t)]
    if native:
        assert f.ntp_source is not None  # the kernel's flag, read directly, at least
    elif not tools:
        assert f.ntp_source is None and f.ntp_synchronized is None  # nothing to ask: null, not a guess


class ShiftedClock(LocalTransport):
    """This machine, seen as a remote host whose clock runs ``shift`` seconds ahead: the host's ``date`` is a
    real process whose output is moved by awk (CLOCK_REALTIME cannot be shifted per namespace). ``whole``:
    a date that prints whole seconds only (BusyBox)."""

    is_local = False

    def __init__(self, shift: float, whole: bool = False):
        super().__init__()
        self.shift = shift
        self.whole = whole
        self.clock_reads = 0

    def run(self, cmd, timeout=10.0, env=None, stdin=None):
        if cmd == REMOTE_CLOCK:
            self.clock_reads += 1
            fmt = "%d" if self.whole else "%.9f"
            cmd = f"date +%s.%N | awk '{{ printf \"{fmt}\\n\", $1 + {self.shift} }}'"
        return super().run(cmd, timeout=timeout, env=env, stdin=stdin)


@linux_only
def test_time_offset_of_a_clock_that_runs_ahead():
    tr = ShiftedClock(5.0)
    f = TimeProbe().collect(ProbeContext(tr, "skewed", 20), TimeParams(offset_samples=3))
    assert tr.clock_reads == 3
    assert f.offset_uncertainty_ms is not None and 0 < f.offset_uncertainty_ms < 1000
    assert abs(f.offset_ms - 5000.0) <= f.offset_uncertainty_ms + 0.01
    tr = ShiftedClock(-2.0, whole=True)
    f = TimeProbe().collect(ProbeContext(tr, "busybox", 20), TimeParams())
    assert f.offset_uncertainty_ms >= 500  # whole seconds only
    assert abs(f.offset_ms + 2000.0) <= f.offset_uncertainty_ms + 0.01
    f = TimeProbe().collect(ProbeContext(ShiftedClock(1.0), "off", 20), TimeParams(offset_samples=0))
    assert f.offset_ms is None


# ===========================================================================================================
# net_interface
# ===========================================================================================================
NETIF_FILES = {SYSFS: "sysfs", IP_ADDR: "ip-addr", IP_LINK: "ip-link", IFCONFIG: "ifconfig", IF_INET6: "if_inet6",
               BONDING: "bonding"}


def netif(case: str, name: str | None = None):
    p, params = NetInterfaceProbe(), NetInterfaceParams(name=name)
    return p.parse(params, replay(p, params, FIX / "netif" / case, NETIF_FILES))


def test_netif_rhel8_active_backup_bond():
    f = netif("rhel8-bond-active-backup", "bond0")
    assert (f.kind, f.state, f.bond_mode, f.slaves, f.bond_active_slave) == (
        "bond", "up", "active-backup", ["ens1f0", "ens1f1"], "ens1f0")
    assert f.addresses == ["10.40.1.21/24", "fe80::b605:5dff:fe2a:9120/64"] and f.ipv4 == ["10.40.1.21"]
    assert (f.mtu, f.speed_mbps, f.mac) == (1500, 10000, "b4:05:5d:2a:91:20")
    s = netif("rhel8-bond-active-backup", "ens1f1")
    assert (s.kind, s.master, s.bond_mode, s.addresses) == ("physical", "bond0", None, [])
    down = netif("rhel8-bond-active-backup", "eno1")
    assert (down.state, down.operstate, down.admin_up, down.speed_mbps) == ("down", "down", False, None)
    every = netif("rhel8-bond-active-backup")
    assert (every.count, every.up_count, every.physical_count) == (5, 4, 3)
    assert [i["name"] for i in every.interfaces] == ["bond0", "eno1", "ens1f0", "ens1f1", "lo"]


def test_netif_kylin_lacp_bond_with_vlan_and_jumbo_frames():
    f = netif("kylin-v10-lacp-vlan", "bond1")
    assert (f.bond_mode, f.slaves, f.mtu, f.bond_active_slave) == ("802.3ad", ["enp125s0f0", "enp125s0f1"], 9000,
                                                                   None)
    v = netif("kylin-v10-lacp-vlan", "bond1.120")
    assert (v.kind, v.state, v.mtu) == ("vlan", "up", 9000)
    assert v.ipv4 == ["172.16.120.15", "172.16.120.16"]


def test_netif_centos6_without_ip_uses_ifconfig_and_if_inet6():
    f = netif("centos6-ifconfig", "eth0")
    assert f.addresses == ["192.168.10.31/24", "192.168.10.32/24", "fe80::250:56ff:fea1:3b7c/64"]
    assert (f.kind, f.state, f.speed_mbps, f.mac) == ("physical", "up", 1000, "00:50:56:a1:3b:7c")
    lo = netif("centos6-ifconfig", "lo")
    assert (lo.kind, lo.addresses) == ("loopback", ["127.0.0.1/8", "::1/128"])


def test_netif_ubuntu_bridge_tap_and_veth():
    br = netif("ubuntu2204-bridge", "br0")
    assert (br.kind, br.slaves, br.ipv4) == ("bridge", ["enp3s0", "vnet0"], ["10.8.0.20"])
    assert netif("ubuntu2204-bridge", "docker0").slaves == ["veth3f2a1b0"]
    veth = netif("ubuntu2204-bridge", "veth3f2a1b0")
    assert (veth.kind, veth.master, veth.speed_mbps) == ("veth", "docker0", 10000)
    tap = netif("ubuntu2204-bridge", "vnet0")
    assert (tap.kind, tap.state, tap.operstate) == ("tap", "up", "unknown")
    assert netif("ubuntu2204-bridge", "enp3s0").kind == "physical"


def test_netif_bond_from_proc_alone_and_kind_without_ip():
    """Without ip (no link kinds) and with /proc/net/bonding only, kinds come from sysfs."""
    p, params = NetInterfaceProbe(), NetInterfaceParams(name="bond0")
    data = replay(p, params, FIX / "netif" / "rhel8-bond-active-backup", NETIF_FILES)
    data[IP_LINK] = NOT_THERE
    f = p.parse(params, data)
    assert (f.kind, f.bond_mode, f.slaves) == ("bond", "active-backup", ["ens1f0", "ens1f1"])


def test_netif_missing_name_and_nothing_readable():
    f = netif("debian12-vm", "bond0")
    assert f.exists is False and f.state is None
    assert "bond0" in NetInterfaceProbe().note(NetInterfaceParams(name="bond0"), f)["en"]
    p, params = NetInterfaceProbe(), NetInterfaceParams()
    with pytest.raises(ProbeError) as err:
        p.parse(params, {s: NOT_THERE for s in p.sources(params)})
    assert err.value.message["zh-CN"] and err.value.hint["en"]
    with pytest.raises(ValidationError):
        NetInterfaceParams(name="eth0:1")


def test_netif_this_vm_recorded():
    f = netif("debian12-vm", "eth0")
    assert (f.kind, f.mtu, f.speed_mbps, f.state) == ("physical", 1400, None, "up")  # virtio: speed -1 → null
    assert netif("debian12-vm", "ifb0").kind == "ifb"


def _ip_json() -> dict[str, dict]:
    out = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout
    return {i["ifname"]: i for i in json.loads(out)}


def _stable(name: str) -> bool:
    return not name.startswith("ep")  # other tests' namespaces come and go while this one runs


@linux_only
@pytest.mark.parametrize("native", [True, False], ids=["native", "shell"])
def test_netif_here_matches_ip_json(native):
    need(shutil.which("ip") is not None, "needs iproute2 (ip -j addr)")
    f = NetInterfaceProbe().collect(ctx(native), NetInterfaceParams())
    real = _ip_json()
    ours = {i["name"]: i for i in f.interfaces if _stable(i["name"])}
    assert set(ours) == {n for n in real if _stable(n)}
    for name, row in ours.items():
        r = real[name]
        assert row["mtu"] == r["mtu"], name
        assert row["mac"] == r.get("address"), name
        assert row["admin_up"] == ("UP" in r["flags"]), name
        expect_up = "UP" in r["flags"] and r["operstate"] in ("UP", "UNKNOWN")
        assert (row["state"] == "up") == expect_up, name
        cidrs = {f"{a['local']}/{a['prefixlen']}" for a in r.get("addr_info", [])}
        assert set(row["addresses"]) == cidrs, name
        if r.get("link_type") == "loopback":
            assert row["kind"] == "loopback"


@linux_only
def test_netif_both_paths_agree_here():
    native = NetInterfaceProbe().collect(ctx(True), NetInterfaceParams())
    shell = NetInterfaceProbe().collect(ctx(False), NetInterfaceParams())
    a = {i["name"]: {**i, "addresses": sorted(i["addresses"])} for i in native.interfaces if _stable(i["name"])}
    b = {i["name"]: {**i, "addresses": sorted(i["addresses"])} for i in shell.interfaces if _stable(i["name"])}
    for rows in (a, b):  # bridge port lists include other tests' veths
        for row in rows.values():
            row["slaves"] = [s for s in row["slaves"] if _stable(s)]
            row["ipv6"] = sorted(row["ipv6"])
            row["ipv4"] = sorted(row["ipv4"])
    assert a == b


# ===========================================================================================================
# over SSH to a namespace host
# ===========================================================================================================
@pytest.fixture
def ssh_host(netlab, tmp_path):  # noqa: F811
    need_sshd()
    need_netlab()
    from envprobe.transport.ssh import SshTransport

    key = keygen(tmp_path / "key")
    host = netlab.add_host()
    server = SshServer(tmp_path / "srv", key, address=host.address, port=22, netns=host.ns).start()
    transports: list[SshTransport] = []

    def connect() -> SshTransport:
        tr = SshTransport(host.name, host.address, user="root", key_file=str(key), known_hosts=str(tmp_path / "kh"),
                          accept_new_hostkeys=True, connect_timeout=5)
        transports.append(tr)
        return tr

    try:
        yield host, server, connect
    finally:
        for tr in transports:
            tr.close()
        server.stop()


def test_netif_over_ssh_sees_the_mtu_and_devices_the_test_sets(ssh_host):
    host, _, connect = ssh_host
    host.exec(["ip", "link", "set", "eth0", "mtu", "1400"])
    host.exec(["ip", "link", "add", "br7", "type", "bridge"])
    host.exec(["ip", "tuntap", "add", "mode", "tap", "tap7"])
    host.exec(["ip", "link", "set", "tap7", "master", "br7"])
    host.exec(["ip", "link", "set", "br7", "mtu", "1300", "up"])
    tr = connect()
    c = ProbeContext(tr, host.name, 20)
    eth0 = NetInterfaceProbe().collect(c, NetInterfaceParams(name="eth0"))
    assert (eth0.exists, eth0.mtu, eth0.state, eth0.kind) == (True, 1400, "up", "veth")
    assert f"{host.address}/24" in eth0.addresses
    every = NetInterfaceProbe().collect(c, NetInterfaceParams())
    assert {i["name"] for i in every.interfaces} == {"lo", "eth0", "br7", "tap7"}
    rows = {i["name"]: i for i in every.interfaces}
    assert (rows["br7"]["kind"], rows["br7"]["slaves"], rows["br7"]["mtu"]) == ("bridge", ["tap7"], 1300)
    assert (rows["tap7"]["kind"], rows["tap7"]["master"], rows["tap7"]["state"]) == ("tap", "br7", "down")
    assert tr.exec_count == 1  # every source of both checks came in one batch
    assert not NetInterfaceProbe().collect(c, NetInterfaceParams(name="bond0")).exists
    # the same host through the namespace transport (native psutil cannot look into another namespace)
    local_view = NetInterfaceProbe().collect(ctx(False, host.transport()), NetInterfaceParams(name="eth0"))
    assert local_view == eth0


def test_time_over_ssh_offset_is_zero_within_its_uncertainty(ssh_host):
    """The namespace host shares this machine's clock: the true offset is 0, so the measured one must lie
    within ± its uncertainty (half the exec's round trip)."""
    host, _, connect = ssh_host
    tr = connect()
    f = TimeProbe().collect(ProbeContext(tr, host.name, 20), TimeParams(offset_samples=3))
    assert f.offset_uncertainty_ms is not None and 0 < f.offset_uncertainty_ms < 1000
    assert abs(f.offset_ms) <= f.offset_uncertainty_ms + 0.001
    assert tr.exec_count == 1 + 3  # the batch, then one exec per clock sample
    here = TimeProbe().collect(ctx(False), TimeParams())
    assert (f.timezone, f.utc_offset, f.ntp_source) == (here.timezone, here.utc_offset, here.ntp_source)


def test_locale_over_ssh_is_the_login_shells(ssh_host):
    """The host's root login shell (bash -l) reads the ~/.profile the test writes in the server's own /root."""
    host, server, connect = ssh_host
    (server.dir / "root" / ".profile").write_text(
        "echo 'Welcome to the test host'\nexport LANG=C.UTF-8\nexport LC_MESSAGES=zh_CN.UTF-8\n")
    tr = connect()
    f = LocaleProbe().collect(ProbeContext(tr, host.name, 20), LocaleParams(name="C.utf8"))
    assert (f.lang, f.lc_messages, f.ctype, f.messages) == ("C.UTF-8", "zh_CN.UTF-8", "C.UTF-8", "zh_CN.UTF-8")
    assert (f.source, f.utf8, f.has_name) == ("login-shell", True, True)
    listed = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
    assert f.available == listed and f.ctype_available == any(normalise(x) == "C.UTF-8" for x in listed)
    (server.dir / "root" / ".profile").write_text("export LANG=zz_ZZ.UTF-8\n")
    f = LocaleProbe().collect(ProbeContext(connect(), host.name, 20), LocaleParams())
    assert (f.lang, f.ctype_available) == ("zz_ZZ.UTF-8", False)


def test_selinux_over_ssh_absent_like_here(ssh_host):
    host, _, connect = ssh_host
    f = SelinuxProbe().collect(ProbeContext(connect(), host.name, 20), NoParams())
    assert f == SelinuxProbe().collect(ctx(True), NoParams())


@linux_only
def test_a_local_scan_with_the_host_setting_probes(tmp_path):
    """Through the CLI on this machine: honest results, each with its observed facts."""
    from tests.conftest import cli

    checklist = tmp_path / "c.yaml"
    checklist.write_text(
        "version: 1\nchecks:\n"
        "  - {id: lo, probe: net_interface, with: {name: lo}, expect: {exists: true, state: up, kind: loopback}}\n"
        "  - {id: nics, probe: net_interface, expect: {count: '>= 1'}}\n"
        "  - {id: clock, probe: time, expect: {offset_ms: '< 1'}}\n"
        "  - {id: selinux, probe: selinux, expect: {mode: 'in [permissive, disabled, absent]'}}\n"
        "  - {id: c-utf8, probe: locale, with: {name: C.UTF-8}, expect: {ctype_available: true}}\n"
        "  - {id: mem, probe: memory, expect: {installed_gb: '>= 0.25'}}\n")
    out = tmp_path / "r.json"
    res = cli("scan", str(checklist), "--json", str(out), "--lang", "en")
    results = {r["check"]: r for r in json.loads(out.read_text())["results"]}
    assert {k: r["status"] for k, r in results.items()} == {k: "pass" for k in results}, res.out
    assert res.code == 0
    assert results["clock"]["observed"]["offset_uncertainty_ms"] == 0.0
    assert results["mem"]["observed"]["installed_source"] in ("dmi", "memory-blocks", "rounded")
