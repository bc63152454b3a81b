"""The sysctl, ulimit, user and group probes.

* sysctl: key ↔ path mapping as sysctl(8) does it, field-by-field comparison, parse errors; live against
  /proc/sys and the real ``sysctl -n``; over SSH to a network-namespace host whose per-namespace settings the test
  changes (so the remote values differ from this machine's).
* ulimit: pam_limits' rules on recorded configurations (RHEL 7/8/9 with Oracle's preinstall file, Kylin V10 with
  DM8's, UOS with KingbaseES's, openGauss on openEuler) and PAM stacks; live, a test user and group with a
  limits.d file the test writes, compared with what a real ``su -l`` session (pam_limits in /etc/pam.d/su) gets.
* user/group: recorded outputs (shadow states, sudo -l of RHEL/Kylin/UOS, LDAP users, a broken sudoers file, a
  host without sudo); live against accounts, passwords, expiry and sudoers.d rules the test creates; over SSH as
  root and as an unprivileged login that gets root through sudo (inventory ``sudo: true``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from envprobe import expect
from envprobe.probes.account import (
    GroupParams,
    GroupProbe,
    UserParams,
    UserProbe,
    parse_group,
    parse_sudo_list,
    parse_user,
)
from envprobe.probes.base import ProbeContext, ProbeError
from envprobe.probes.sysctl import SysctlParams, SysctlProbe, SysctlValue, key_to_path, parse_sysctl, path_to_key
from envprobe.probes.ulimit import (
    INF,
    RESOURCES,
    Account,
    Line,
    UlimitParams,
    UlimitProbe,
    evaluate,
    facts_for,
    parse_limits_files,
    parse_pam_services,
    parse_proc_limits,
    split_output,
    ulimit_command,
)
from envprobe.schema import ValidationError
from envprobe.transport.base import CommandResult
from envprobe.transport.local import LocalTransport
from tests.conftest import cli, need

FIX = Path(__file__).resolve().parent / "fixtures" / "accounts"
PROBES = [SysctlProbe, UlimitProbe, UserProbe, GroupProbe]
ROOT = os.geteuid() == 0


def ctx() -> ProbeContext:
    return ProbeContext(LocalTransport(), "local", 30)


def sh(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, input=input)


# ===========================================================================================================
# registration and documentation
# ===========================================================================================================
def test_entry_points_name_these_classes():
    eps = {ep.name: ep.value for ep in entry_points(group="envprobe.probes")}
    for cls in PROBES:
        assert eps[cls.name] == f"{cls.__module__}:{cls.__name__}"


# ===========================================================================================================
# sysctl
# ===========================================================================================================
@pytest.mark.parametrize(("key", "path"), [
    ("kernel.sem", "/proc/sys/kernel/sem"),
    ("fs.file-max", "/proc/sys/fs/file-max"),
    ("net.ipv4.ip_local_port_range", "/proc/sys/net/ipv4/ip_local_port_range"),
    ("net.ipv4.conf.eth0/100.rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"),  # sysctl(8) slashdot
    ("net/ipv4/conf/eth0.100/rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"),  # path form kept
    ("/proc/sys/vm/swappiness", "/proc/sys/vm/swappiness"),
    ("vm.swappiness", "/proc/sys/vm/swappiness"),
])
def test_sysctl_key_to_path(key, path):
    assert key_to_path(key) == path
    assert key_to_path(path_to_key(path)) == path


@pytest.mark.parametrize("bad", ["", "kernel.sem = 250", "net..ipv4", "kernel sem", "../etc/passwd", "a/../b"])
def test_sysctl_params_refused(bad):
    with pytest.raises(ValidationError):
        SysctlParams.model_validate({"key": bad})


@pytest.mark.parametrize(("value", "op", "wanted", "ok"), [
    ("250 32000 100 128", ">=", "250 32000 100 128", True),
    ("250 32000 100 256", ">=", "250 32000 100 128", True),
    ("250 32000 100 100", ">=", "250 32000 100 128", False),   # every field must satisfy
    ("32000 1024000000 500 32000", ">=", "250 32000 100 128", True),
    ("250 32000 100 128", "==", "250  32000\t100 128", True),
    ("250 32000 100 128", "!=", "250 32000 100 128", False),
    ("250 32000 100 129", "!=", "250 32000 100 128", True),
    ("250 32000", ">=", "250 32000 100 128", False),          # different field counts never order
    ("250 32000", "==", "250 32000 100 128", False),
    ("9000 65500", ">=", "9000 65500", True),
    ("32768 60999", "<=", "9000 65500", False),
    ("1048576", ">=", "1048576", True),
    ("1048576", ">", "6815744", False),
    ("18446744073692774399", ">=", "4294967295", True),       # kernel.shmmax's default is huge: exact ints
    ("0", "==", "0", True),
    ("-1", "<", "0", True),
    ("cubic", "==", "cubic", True),
    ("cubic", "!=", "bbr", True),
])
def test_sysctl_value_compares_field_by_field(value, op, wanted, ok):
    assert SysctlValue(value).compare_with(op, wanted) is ok


def test_sysctl_text_ordering_falls_back_to_the_generic_rules():
    assert SysctlValue("cubic").compare_with(">=", "bbr") is None


@pytest.mark.parametrize(("spec", "value", "ok"), [
    (">= 250 32000 100 128", "250 32000 100 128", True),
    (">= 250 32000 100 128", "250 32000 100 100", False),
    (">= 1048576", "6815744", True),
    (">= 1048576", "65536", False),
    (1, "1", True),                  # YAML number, bare equality
    ("== 0", "1", False),
    ("9000 65500", "9000\t65500", True),
    ("~ ^9000 ", "9000 65500", True),
    ("in [0, 1]", "1", True),
])
def test_sysctl_expectations(spec, value, ok):
    facts = parse_sysctl("/proc/sys/x/y", CommandResult(0, value + "\n", "", 1.0))
    assert expect.parse(spec, None, "value").check(facts.value).ok is ok


def test_sysctl_parse_values_and_errors(tmp_path):
    f = parse_sysctl("/proc/sys/kernel/sem", CommandResult(0, "250\t32000\t100\t128\n", "", 1.0))
    assert (f.exists, f.value, f.values) == (True, "250 32000 100 128", [250, 32000, 100, 128])
    g = parse_sysctl("/proc/sys/kernel/core_pattern",
                     CommandResult(0, "|/usr/share/apport/apport -p%p -s%s\n", "", 1.0))
    assert g.values == ["|/usr/share/apport/apport", "-p%p", "-s%s"]
    missing = parse_sysctl("/proc/sys/net/ipv4/tcp_tw_recycle",
                           CommandResult(1, "", "cat: /proc/sys/net/ipv4/tcp_tw_recycle: No such file or directory",
                                         1.0))
    assert (missing.exists, missing.value, missing.values) == (False, None, [])
    with pytest.raises(ProbeError, match="permission denied") as err:
        parse_sysctl("/proc/sys/vm/stat_refresh",
                     CommandResult(1, "", "cat: /proc/sys/vm/stat_refresh: Permission denied", 1.0))
    assert err.value.hint and "root" in err.value.hint["en"]
    # a directory, read through the real local transport
    res = LocalTransport()._fetch_uncached([SysctlProbe().sources(SysctlParams(key="net.ipv4"))[0]], 5)
    with pytest.raises(ProbeError, match="group of parameters"):
        parse_sysctl("/proc/sys/net/ipv4", next(iter(res.values())))


LIVE_KEYS = ["kernel.sem", "kernel.shmmax", "kernel.shmall", "kernel.shmmni", "fs.file-max", "fs.aio-max-nr",
             "net.ipv4.ip_local_port_range", "net.core.somaxconn", "vm.swappiness", "kernel.pid_max",
             "kernel.ostype", "net.ipv4.tcp_congestion_control", "kernel.threads-max", "vm.overcommit_memory"]


@pytest.mark.parametrize("key", LIVE_KEYS)
def test_sysctl_live_matches_proc_sys_and_the_sysctl_tool(key):
    path = "/proc/sys/" + key.replace(".", "/")
    if not os.path.exists(path):
        pytest.skip(f"{key} does not exist on this kernel")
    with open(path) as fh:
        want = " ".join(fh.read().split())
    f = SysctlProbe().collect(ctx(), SysctlParams(key=key))
    assert (f.exists, f.value, f.path) == (True, want, path)
    assert " ".join(str(v) for v in f.values) == want
    if shutil.which("sysctl"):
        tool = sh("sysctl", "-n", key).stdout
        assert f.value == " ".join(tool.split())


def test_sysctl_live_missing_key():
    f = SysctlProbe().collect(ctx(), SysctlParams(key="net.ipv4.envprobe_no_such_key"))
    assert (f.exists, f.value) == (False, None)
    note = SysctlProbe().note(SysctlParams(key="net.ipv4.envprobe_no_such_key"), f)
    assert note and "does not exist" in note["en"]


# ===========================================================================================================
# ulimit: pam_limits' rules on synthetic lines
# ===========================================================================================================
ORACLE = Account("oracle", 54321, 54321, {"oinstall": 54321, "dba": 54322})
ROOT_ACCT = Account("root", 0, 0, {"root": 0})


def lines(text: str, name: str = "/etc/security/limits.conf") -> list[Line]:
    return parse_limits_files([(name, text)])


BASE = (1024, 4096)


@pytest.mark.parametrize(("text", "resource", "soft", "hard", "src"), [
    # user beats group beats '*', whatever the order
    ("oracle soft nofile 2000\n@dba soft nofile 3000\n* soft nofile 4000\n", "nofile", 2000, 4096, "L1/-"),
    ("* - nofile 4000\n@dba - nofile 3000\noracle - nofile 2000\n", "nofile", 2000, 2000, "L3"),
    ("* - nofile 4000\n@dba - nofile 3000\n", "nofile", 3000, 3000, "L2"),
    # same strength: the last line wins
    ("oracle hard nofile 5000\noracle hard nofile 6000\n", "nofile", 1024, 6000, "-/L2"),
    ("@dba soft nproc 100\n@oinstall soft nproc 200\n", "nproc", 200, 4096, "L2/-"),
    # '-' sets both; a stronger soft stops the line before its hard part (pam_limits returns early)
    ("oracle soft nofile 2000\n@dba - nofile 3000\n", "nofile", 2000, 4096, "L1/-"),
    ("oracle hard nofile 9000\n@dba - nofile 3000\n", "nofile", 3000, 9000, "L2/L1"),
    # unlimited, infinity, -1; nofile unlimited is fs.nr_open
    ("oracle - memlock unlimited\n", "memlock", INF, INF, "L1"),
    ("oracle - memlock infinity\n", "memlock", INF, INF, "L1"),
    ("oracle - memlock -1\n", "memlock", INF, INF, "L1"),
    ("oracle - nofile unlimited\n", "nofile", 1048576, 1048576, "L1"),
    # case-insensitive type/item/value, comments, bad lines skipped
    ("oracle HARD NoFile 7000 # comment\n", "nofile", 1024, 7000, "-/L1"),
    ("# oracle - nofile 1\noracle soft nofile abc\noracle bogus nofile 1\noracle soft nofile\n", "nofile",
     1024, 4096, "-/-"),
    # soft above hard is lowered to hard
    ("oracle soft nofile 9000\noracle hard nofile 5000\n", "nofile", 5000, 5000, "L1/L2"),
    # uid and gid ranges
    ("54000:55000 soft nofile 1500\n", "nofile", 1500, 4096, "L1/-"),
    (":54321 soft nofile 1600\n", "nofile", 1600, 4096, "L1/-"),
    ("60000: soft nofile 1700\n", "nofile", 1024, 4096, "-/-"),
    ("@54321:54321 soft nofile 1800\n", "nofile", 1800, 4096, "L1/-"),   # primary gid range
    ("@:54322 soft nofile 1900\n", "nofile", 1900, 4096, "L1/-"),        # any group, exact gid
    ("@54322: soft nofile 1950\n", "nofile", 1024, 4096, "-/-"),          # range looks at the primary gid only
    # '%' domains are for maxlogins only; other users and groups do not apply
    ("% - nofile 100\n%dba - nofile 100\ngrid - nofile 100\n@asm - nofile 100\n", "nofile", 1024, 4096, "-/-"),
    # other items do not interfere
    ("oracle - nproc 100\n", "nofile", 1024, 4096, "-/-"),
])
def test_pam_limits_rules(text, resource, soft, hard, src):
    d = evaluate(lines(text), ORACLE, resource, BASE, 1048576, debian=False)
    assert (d.soft, d.hard) == (soft, hard)
    want = src.split("/") if "/" in src else [src, src]
    got = [s if s == "default" else "L" + s.rsplit(":", 1)[1] for s in (d.soft_src, d.hard_src)]
    assert got == [("default" if w == "-" else w) for w in want]


def test_pam_limits_units():
    d = evaluate(lines("oracle soft stack 10240\noracle soft cpu 60\noracle - nice -5\n"), ORACLE, "stack",
                 (8192, INF), None, False)
    assert (d.soft, d.hard) == (10240, INF)  # KiB, as limits.conf and ulimit -s
    assert evaluate(lines("oracle - nice -25\n"), ORACLE, "nice", (20, 20), None, False).soft == -20


def test_pam_limits_disable_line_switches_everything_off():
    ls = lines("oracle soft nofile 2000\n@dba -\n")
    d = evaluate(ls, ORACLE, "nofile", BASE, None, False)
    assert d.disabled_by == "/etc/security/limits.conf:2" and (d.soft, d.hard) == BASE
    assert evaluate(lines("@asm -\noracle soft nofile 2000\n"), ORACLE, "nofile", BASE, None, False).soft == 2000


def test_pam_limits_root_on_debian_ignores_group_and_wildcard():
    text = "* soft core 1234\n@root soft stack 4321\n"
    deb = [evaluate(lines(text), ROOT_ACCT, r, (0, INF), None, debian=True).soft for r in ("core", "stack")]
    up = [evaluate(lines(text), ROOT_ACCT, r, (0, INF), None, debian=False).soft for r in ("core", "stack")]
    assert deb == [0, 0] and up == [1234, 4321]
    # uid ranges and literal root apply on Debian too (checked with su -l root on Debian 12)
    text2 = "0: soft core 777\nroot hard core 999\n"
    d = evaluate(lines(text2), ROOT_ACCT, "core", (0, INF), None, debian=True)
    assert (d.soft, d.hard) == (777, 999)


def test_limits_files_order_limits_conf_then_dropins_by_name():
    chunks = [("/etc/security/limits.d/99-b.conf", "oracle hard nofile 3\n"),
              ("/etc/security/limits.conf", "oracle hard nofile 1\n"),
              ("/etc/security/limits.d/10-a.conf", "oracle hard nofile 2\n"),
              ("/etc/security/limits.d/Z.conf", "oracle hard nofile 4\n")]  # 'Z' < '1'? no: C order puts it last
    order = [ln.file.rsplit("/", 1)[1] for ln in parse_limits_files(chunks)]
    assert order == ["limits.conf", "10-a.conf", "99-b.conf", "Z.conf"]
    assert evaluate(parse_limits_files(chunks), ORACLE, "nofile", BASE, None, False).hard == 4


def test_proc_limits_units():
    got = parse_proc_limits((FIX / "rhel8-sshd.limits").read_text())
    assert got["nofile"] == (1024, 262144) and got["stack"] == (8192, INF) and got["memlock"] == (64, 64)
    assert got["nice"] == (20, 20) and got["msgqueue"] == (819200, 819200) and got["cpu"] == (INF, INF)
    assert set(got) == set(RESOURCES)


@pytest.mark.parametrize(("stack", "want"), [
    ("pam-rhel8", ["sshd", "su", "crond"]),
    ("pam-openeuler2203", ["sshd"]),          # login's system-auth has pam_limits commented out
    ("pam-debian12-nolimits", ["su"]),
])
def test_pam_services_follow_includes(stack, want):
    files = {p.name: p.read_text() for p in (FIX / stack).iterdir()}
    assert parse_pam_services(files) == want


def test_pam_services_of_this_machine():
    need(os.path.isdir("/etc/pam.d"), "needs /etc/pam.d")
    files = {p.name: p.read_text(errors="replace") for p in Path("/etc/pam.d").iterdir() if p.is_file()}
    got = parse_pam_services(files)
    for svc in ("sshd", "su", "login"):
        if svc in files:
            direct = any(re.match(r"^\s*-?session\s+\S+\s+\S*pam_limits\.so", ln) for ln in files[svc].splitlines())
            if direct:
                assert svc in got


def _recorded(name: str, resource: str):
    snap = split_output((FIX / name).read_text())
    from envprobe.probes.ulimit import account_from

    acct = account_from(snap.passwd, snap.gids, snap.gnames)
    assert acct is not None
    return facts_for(snap, acct, resource)


PRE = "/etc/security/limits.d/oracle-database-preinstall-19c.conf"


@pytest.mark.parametrize(("file", "resource", "soft", "hard", "source", "default_from"), [
    # RHEL 8: Oracle's preinstall file; unset limits come from the sshd listener (systemd service defaults)
    ("ulimit-rhel8-oracle.out", "nofile", 1024, 65536, f"soft {PRE}:3, hard {PRE}:6", "sshd pid 1187"),
    ("ulimit-rhel8-oracle.out", "nproc", 16384, 16384, f"soft {PRE}:10, hard {PRE}:13", None),  # beats '*'
    ("ulimit-rhel8-oracle.out", "stack", 10240, 32768, None, None),
    ("ulimit-rhel8-oracle.out", "memlock", 134217728, 134217728, None, None),
    ("ulimit-rhel8-oracle.out", "data", INF, INF, None, None),
    ("ulimit-rhel8-oracle.out", "core", INF, INF, "default", "sshd pid 1187"),
    # Kylin V10: '*' lines in limits.conf, DM8's dmdba file in limits.d; no sshd running: PID 1
    ("ulimit-kylin-v10-dmdba.out", "nofile", 65536, 65536,
     "soft /etc/security/limits.d/dm8.conf:10, hard /etc/security/limits.d/dm8.conf:11", None),
    ("ulimit-kylin-v10-dmdba.out", "core", INF, INF, None, None),
    ("ulimit-kylin-v10-dmdba.out", "nice", 0, 0, None, None),
    ("ulimit-kylin-v10-dmdba.out", "stack", 8192, INF, "default", "pid 1"),
    # UOS (Debian family): KingbaseES' soft above hard is lowered; unset limits start from PID 1's
    ("ulimit-uos20-kingbase.out", "nofile", 65535, 65535, None, "pid 1"),
    ("ulimit-uos20-kingbase.out", "nproc", 65535, 65535, None, None),
    ("ulimit-uos20-kingbase.out", "memlock", 64, 64, "default", "pid 1"),
])
def test_ulimit_recorded(file, resource, soft, hard, source, default_from):
    f = _recorded(file, resource)
    assert (f.soft, f.hard) == (soft, hard)
    if source is not None:
        assert f.source == source
    if default_from is not None:
        assert f.default_from == default_from
    assert f.unit


def test_ulimit_debian_family_starts_nofile_soft_at_1024():
    snap = split_output((FIX / "ulimit-uos20-kingbase.out").read_text())
    assert snap.baseline("nofile") == ((1024, 1048576), "pid 1")
    snap.debian = False
    assert snap.baseline("nofile") == ((1048576, 1048576), "pid 1")


def test_ulimit_recorded_pam_services_and_notes():
    rhel = _recorded("ulimit-rhel8-oracle.out", "nofile")
    assert rhel.pam_services == ["sshd", "su", "crond"]
    uos = _recorded("ulimit-uos20-kingbase.out", "nofile")
    assert "sshd" not in uos.pam_services
    note = UlimitProbe().note(UlimitParams(user="kingbase", resource="nofile"), uos)
    assert note and "SSH logins do not get these limits" in note["en"] and "sshd" in note["zh-CN"]


def test_ulimit_params():
    assert UlimitParams.model_validate({"user": "oracle", "resource": "open_files"}).resource == "nofile"
    assert UlimitParams.model_validate({"user": "oracle", "resource": "NPROC"}).resource == "nproc"
    for bad in ({"user": "oracle", "resource": "files"}, {"user": "a b", "resource": "nofile"}, {"user": "x"}):
        with pytest.raises(ValidationError):
            UlimitParams.model_validate(bad)


def test_ulimit_unknown_user_is_a_clean_error():
    with pytest.raises(ProbeError) as err:
        UlimitProbe().collect(ctx(), UlimitParams(user="envprobe-nobody-here", resource="nofile"))
    assert "does not exist" in err.value.message["en"] and err.value.hint


def test_ulimit_unlimited_meets_a_minimum():
    f = _recorded("ulimit-rhel8-oracle.out", "data")
    assert expect.parse(">= 65536", None, "soft").check(f.soft).ok
    assert expect.parse("unlimited", None, "soft").check(f.soft).ok
    assert expect.display_value(f.soft, None) == "unlimited"


# ===========================================================================================================
# live accounts: a user, a second user and two groups made by the test
# ===========================================================================================================
class Accounts:
    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}{secrets.token_hex(2)}"
        self.user = f"epu{tag}"
        self.user2 = f"epv{tag}"
        self.primary = f"epp{tag}"
        self.group = f"epg{tag}"
        self.files: list[Path] = []

    def create(self) -> Accounts:
        sh("groupadd", self.primary)
        sh("groupadd", self.group)
        sh("useradd", "-m", "-g", self.primary, "-G", self.group, "-s", "/bin/bash", self.user)
        sh("useradd", "-M", "-g", self.group, "-s", "/usr/sbin/nologin", "-d", f"/nonexistent/{self.user2}",
           self.user2)
        return self

    def id(self, flag: str, who: str | None = None) -> str:
        return sh("id", flag, who or self.user).stdout.strip()

    def write(self, path: str, text: str) -> Path:
        p = Path(path)
        p.write_text(text)
        self.files.append(p)
        return p

    def remove(self) -> None:
        for p in self.files:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        for u in (self.user, self.user2):
            sh("userdel", "-r", u, check=False)
        for g in (self.group, self.primary):
            sh("groupdel", g, check=False)


@pytest.fixture(scope="module")
def accts() -> Iterator[Accounts]:
    need(ROOT, "needs root to create users, groups and limits files")
    need(all(shutil.which(c) for c in ("useradd", "groupadd", "userdel", "groupdel", "chpasswd", "chage")),
         "needs the shadow tools (useradd, groupadd, chpasswd, chage)")
    a = Accounts().create()
    try:
        yield a
    finally:
        a.remove()


# -- user / group ---------------------------------------------------------------------------------------------
def _user(name: str):
    return UserProbe().collect(ctx(), UserParams(name=name))


def test_user_live_account_facts(accts):
    f = _user(accts.user)
    pw = sh("getent", "passwd", accts.user).stdout.strip().split(":")
    assert (f.exists, f.name, f.uid, f.gid) == (True, accts.user, int(pw[2]), int(pw[3]))
    assert f.primary_group == accts.primary == accts.id("-gn")
    assert f.groups == [accts.group]
    assert (f.shell, f.home, f.home_exists) == ("/bin/bash", pw[5], True)
    g = _user(accts.user2)
    assert (g.primary_group, g.groups, g.home_exists, g.shell) == (accts.group, [], False, "/usr/sbin/nologin")
    assert _user("envprobe-no-such-user").exists is False


def test_user_live_password_and_expiry(accts):
    sh("usermod", "-L", accts.user)
    f = _user(accts.user)
    assert (f.password_status, f.locked, f.expired) == ("locked", True, False)
    sh("chpasswd", input=f"{accts.user}:{secrets.token_urlsafe(12)}\n")
    f = _user(accts.user)
    assert (f.password_status, f.locked) == ("usable", False)
    assert "$" not in json.dumps(f.model_dump())  # the hash never leaves the host
    sh("chage", "-E", "2000-01-01", accts.user)
    assert _user(accts.user).expired is True
    sh("chage", "-E", "-1", accts.user)
    assert _user(accts.user).expired is False


def _sudoers(accts: Accounts, text: str) -> Path:
    path = f"/etc/sudoers.d/envprobe-test-{accts.user}"
    p = accts.write(path, text)
    os.chmod(p, 0o440)
    check = sh("visudo", "-cf", str(p), check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    return p


def test_user_live_sudo_rights(accts):
    need(shutil.which("sudo") is not None and shutil.which("visudo") is not None, "needs sudo")
    f = _user(accts.user)
    assert (f.sudo, f.sudo_all, f.sudo_nopasswd, f.sudo_rules) == (False, False, False, [])
    p = _sudoers(accts, f"%{accts.group} ALL=(root) NOPASSWD: /usr/bin/true, /usr/bin/id\n")
    try:
        f = _user(accts.user)
        assert (f.sudo, f.sudo_all, f.sudo_nopasswd) == (True, False, True)
        assert f.sudo_rules == ["(root) NOPASSWD: /usr/bin/true, /usr/bin/id"]
        p.write_text(p.read_text() + f"{accts.user} ALL=(ALL:ALL) ALL\n")
        f = _user(accts.user)
        assert (f.sudo, f.sudo_all) == (True, True) and "(ALL : ALL) ALL" in f.sudo_rules
        # the answer is sudo's own: check it agrees with sudo -l -U
        listed = sh("sudo", "-n", "-l", "-U", accts.user).stdout
        assert parse_sudo_list(listed.splitlines())[3] == f.sudo_rules
    finally:
        p.unlink()


def test_group_live(accts):
    g = GroupProbe().collect(ctx(), GroupParams(name=accts.group))
    entry = sh("getent", "group", accts.group).stdout.strip().split(":")
    assert (g.exists, g.name, g.gid) == (True, accts.group, int(entry[2]))
    assert g.listed_members == [accts.user]              # supplementary member
    assert g.primary_members == [accts.user2]            # primary group of user2
    assert g.members == sorted([accts.user, accts.user2])
    p = GroupProbe().collect(ctx(), GroupParams(name=accts.primary))
    assert p.members == [accts.user] and p.listed_members == []
    assert GroupProbe().collect(ctx(), GroupParams(name="envprobe-no-such-group")).exists is False


# -- user / group: recorded outputs -----------------------------------------------------------------------------
@pytest.mark.parametrize(("file", "want"), [
    ("user-rhel8-oracle-root.out", dict(uid=54321, primary_group="oinstall",
                                        groups=["backupdba", "dba", "dgdba", "kmdba", "oper", "racdba"],
                                        password_status="usable", locked=False, expired=False, sudo=False,
                                        sudo_all=False, home_exists=True)),
    ("user-kylin-v10-dmdba-wheel.out", dict(primary_group="dinstall", groups=["wheel"], locked=True, sudo=True,
                                            sudo_all=True, sudo_nopasswd=False, sudo_rules=["(ALL) ALL"])),
    ("user-uos20-deploy-nopasswd.out", dict(home_exists=False, sudo=True, sudo_all=False, sudo_nopasswd=True,
                                            sudo_rules=["(root) NOPASSWD: /usr/bin/systemctl restart mes, "
                                                        "/usr/bin/systemctl status mes, /usr/bin/journalctl -u mes",
                                                        "(ALL : ALL) /usr/bin/less /var/log/mes/*"])),
    ("user-openeuler-nonroot.out", dict(primary_group="dbgrp", password_status=None, locked=None, sudo=None,
                                        sudo_all=None)),
    ("user-ldap-no-shadow.out", dict(uid=200105, groups=["mes_admins"], password_status=None, sudo=True,
                                     sudo_all=True, sudo_nopasswd=True)),
    ("user-sudoers-broken.out", dict(shell="/sbin/nologin", locked=True, expired=True, sudo=None)),
    ("user-alpine-no-sudo.out", dict(password_status="empty", locked=False, sudo=False, groups=["wheel"])),
    ("user-missing.out", dict(exists=False, uid=None, sudo=None)),
])
def test_user_parse_recorded(file, want):
    f = parse_user((FIX / file).read_text())
    for k, v in want.items():
        assert getattr(f, k) == v, (k, getattr(f, k), v)


def test_user_notes_say_what_is_unknown_and_why():
    f = parse_user((FIX / "user-openeuler-nonroot.out").read_text())
    note = UserProbe().note(UserParams(name="omm"), f)
    assert note and "sudo: true" in note["en"] and "root" in note["zh-CN"]


@pytest.mark.parametrize(("file", "members", "listed", "primary"), [
    ("group-rhel8-oinstall.out", ["grid", "oracle"], [], ["grid", "oracle"]),
    ("group-rhel8-dba.out", ["grid", "oracle"], ["grid", "oracle"], []),
    ("group-missing.out", [], [], []),
])
def test_group_parse_recorded(file, members, listed, primary):
    g = parse_group((FIX / file).read_text())
    assert (g.members, g.listed_members, g.primary_members) == (members, listed, primary)
    assert g.exists == (file != "group-missing.out")


# -- ulimit: live, against a real su -l session ---------------------------------------------------------------
def _has_cap_sys_resource() -> bool:
    with open("/proc/self/status") as fh:
        cap = next(int(ln.split()[1], 16) for ln in fh if ln.startswith("CapEff:"))
    return bool(cap & (1 << 24))


def _session_limits(user: str) -> dict:
    out = sh("su", "-l", user, "-s", "/bin/sh", "-c", "cat /proc/self/limits").stdout
    return parse_proc_limits(out)


def _rl(resource: str, v: float) -> float:
    """Order limits the way the kernel does (the nice value runs the other way round)."""
    return -v if resource == "nice" else v


def _need_su_with_pam_limits() -> None:
    need(ROOT and shutil.which("su") is not None, "needs root and su")
    text = Path("/etc/pam.d/su").read_text() if os.path.exists("/etc/pam.d/su") else ""
    need(bool(re.search(r"^\s*session\s+\S+\s+pam_limits\.so", text, re.M)),
         "needs pam_limits in /etc/pam.d/su to compare with a real login session")
    need(os.path.exists("/etc/debian_version"), "the live comparison is calibrated on Debian's pam_limits")


def test_ulimit_live_matches_a_real_su_login_session(accts):
    """The probe's answer for every resource against the limits a real ``su -l`` session gets.

    pam_limits asks the kernel for each resource it sets; raising a hard limit above the login process's needs
    CAP_SYS_RESOURCE, which this test's container may lack (a normal host has it). Where the kernel refuses,
    the session keeps what su had (su itself lowers the soft nofile limit to 1024 before PAM runs) — so for
    those resources the expected session value is su's, and for all others the probe's."""
    _need_su_with_pam_limits()
    uid = int(accts.id("-u"))
    pgid = int(accts.id("-g"))
    a = accts.write(f"/etc/security/limits.d/zz-envprobe-{accts.user}-a.conf", "\n".join([
        "# written by envprobe's tests; removed at the end of the test",
        f"{accts.user} soft nofile 4096",
        f"@{accts.group} - nofile 8000",        # group loses soft to the user line; its hard part is skipped
        f"{accts.user} hard nofile 12000",
        f"@{accts.primary} soft nproc 3000",
        f"@{accts.group} soft nproc 2000",      # same strength: the later group line wins
        f"{accts.user} hard nproc 7000",
        f"{accts.user} soft stack 4096",
        f"{accts.user} hard stack 20000",
        f"{accts.user} soft core 500",
        f"{accts.user} hard core 100",          # soft above hard: lowered to 100
        f"{accts.user} - memlock 4096",
        "* hard msgqueue 819200",               # harmless for everyone else (the default anyway)
        f"{accts.user} hard msgqueue 409600",   # the user line beats '*'
        f"{uid}:{uid} hard locks 5000",         # uid ranges are user entries
        f":{uid} soft locks 4000",
        f"@{pgid}:{pgid} soft sigpending 1000",  # primary-gid range: a group entry
        f"{accts.user} hard sigpending 2000",
        f"{accts.user} Hard FSize 1048576",     # case-insensitive type and item
        f"{accts.user} soft nofile abc",        # not a number: skipped
        "",
    ]))
    b = accts.write(f"/etc/security/limits.d/zz-envprobe-{accts.user}-b.conf",
                    f"{accts.user} hard stack 16000\n")  # a later file overrides an earlier one
    try:
        caller = parse_proc_limits(Path("/proc/self/limits").read_text())
        caller["nofile"] = (1024, caller["nofile"][1])
        privileged = _has_cap_sys_resource()
        session = _session_limits(accts.user)
        checked = 0
        for r in RESOURCES:
            f = UlimitProbe().collect(ctx(), UlimitParams(user=accts.user, resource=r))
            assert f.default_from == "pid 1"
            allowed = privileged or _rl(r, f.hard) <= _rl(r, caller[r][1])
            want = (f.soft, f.hard) if allowed else caller[r]
            assert session[r] == want, (r, session[r], (f.soft, f.hard), caller[r], f.source)
            checked += allowed
        probe = {r: UlimitProbe().collect(ctx(), UlimitParams(user=accts.user, resource=r)) for r in
                 ("nofile", "nproc", "stack", "core", "memlock", "msgqueue", "locks", "sigpending", "fsize")}
        assert (probe["nofile"].soft, probe["nofile"].hard) == (4096, 12000)
        assert probe["nofile"].source == f"soft {a}:2, hard {a}:4"
        assert (probe["nproc"].soft, probe["nproc"].hard) == (2000, 7000)
        assert (probe["stack"].soft, probe["stack"].hard) == (4096, 16000) and f"{b}:1" in probe["stack"].source
        assert (probe["core"].soft, probe["core"].hard) == (100, 100)
        assert (probe["memlock"].soft, probe["memlock"].hard) == (4096, 4096)
        assert (probe["msgqueue"].soft, probe["msgqueue"].hard) == (409600, 409600)
        assert (probe["locks"].soft, probe["locks"].hard) == (4000, 5000)
        assert (probe["sigpending"].soft, probe["sigpending"].hard) == (1000, 2000)
        assert probe["fsize"].hard == 1048576
        assert checked >= 12, "too few resources could be compared with the real session"
        # the bash builtin a person would type agrees
        builtin = sh("su", "-l", accts.user, "-s", "/bin/bash", "-c", "ulimit -Sn; ulimit -Hn").stdout.split()
        assert [int(x) for x in builtin] == list(session["nofile"])
    finally:
        a.unlink()
        b.unlink()


def test_ulimit_live_disable_line(accts):
    _need_su_with_pam_limits()
    a = accts.write(f"/etc/security/limits.d/zz-envprobe-{accts.user}-a.conf",
                    f"{accts.user} soft nofile 4096\n@{accts.group} -\n")
    try:
        f = UlimitProbe().collect(ctx(), UlimitParams(user=accts.user, resource="nofile"))
        assert f.source == f"none: {a}:2"
        note = UlimitProbe().note(UlimitParams(user=accts.user, resource="nofile"), f)
        assert note and "no limits" in note["en"]
        session = _session_limits(accts.user)
        caller = parse_proc_limits(Path("/proc/self/limits").read_text())
        assert session["nofile"] == (1024, caller["nofile"][1])  # nothing applied: su's own value
        assert session["memlock"] == caller["memlock"]
    finally:
        a.unlink()


def test_ulimit_shell_command_reads_everything_in_one_go(accts):
    res = LocalTransport().run(ulimit_command(accts.user), timeout=20, env={"LC_ALL": "C"})
    assert res.rc == 0, res.stderr
    assert res.stderr == ""  # no noise from processes that vanish while /proc is read
    snap = split_output(res.stdout)
    assert snap.passwd.startswith(accts.user + ":") and snap.pid1 and snap.debian == os.path.exists(
        "/etc/debian_version")
    assert set(snap.gnames.split()) == {accts.primary, accts.group}


# ===========================================================================================================
# over SSH: a network-namespace host (its own network sysctls, the machine's files and accounts)
# ===========================================================================================================
def _scan(workdir: Path, checks: list[dict], inv: dict) -> tuple[int, dict[str, dict]]:
    c = workdir / f"c{time.monotonic_ns()}.yaml"
    c.write_text(yaml.safe_dump({"version": 1, "checks": checks}, allow_unicode=True), encoding="utf-8")
    (workdir / "inv.yaml").write_text(yaml.safe_dump(inv))
    out = workdir / f"r{time.monotonic_ns()}.json"
    res = cli("scan", str(c), "-i", str(workdir / "inv.yaml"), "--known-hosts", str(workdir / "kh"),
              "--accept-new-hostkeys", "--json", str(out), "--lang", "en")
    data = json.loads(out.read_text())
    return res.code, {f"{r['check']}@{r['host']}": r for r in data["results"]}


@pytest.fixture
def keydir() -> Iterator[Path]:
    """A key pair other accounts can read (sshd reads authorized keys as the logging-in user)."""
    d = Path(tempfile.mkdtemp(prefix="envprobe-keys-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_over_ssh_in_a_namespace(accts, keydir, tmp_path):
    from tests.netlab import NetLab, need_netlab
    from tests.sshfix import SshServer, keygen, need_sshd

    need_sshd()
    need_netlab()
    key = keygen(keydir / "key")
    os.chmod(f"{key}.pub", 0o644)
    with NetLab() as lab:
        host = lab.add_host()
        host.sysctl("net.core.somaxconn", "1234")
        host.sysctl("net.ipv4.ip_local_port_range", "20000 40000")
        host.exec(["ip", "link", "add", "v0.100", "type", "veth", "peer", "name", "v1.100"])
        host.sysctl("net.ipv4.conf.v0/100.rp_filter", "2")
        srv = SshServer(tmp_path / "sshd", key, address=host.address, port=22, netns=host.ns).start()
        try:
            local_somaxconn = Path("/proc/sys/net/core/somaxconn").read_text().strip()
            assert local_somaxconn != "1234"
            checks = [
                {"id": "somaxconn", "probe": "sysctl", "hosts": ["ns"], "with": {"key": "net.core.somaxconn"},
                 "expect": {"value": 1234}},
                {"id": "ports", "probe": "sysctl", "hosts": ["ns"],
                 "with": {"key": "net.ipv4.ip_local_port_range"}, "expect": {"value": ">= 10000 30000"}},
                {"id": "ports-too-low", "probe": "sysctl", "hosts": ["ns"],
                 "with": {"key": "net.ipv4.ip_local_port_range"}, "expect": {"value": ">= 25000 30000"}},
                {"id": "dotted-if", "probe": "sysctl", "hosts": ["ns"],
                 "with": {"key": "net.ipv4.conf.v0/100.rp_filter"}, "expect": {"value": 2}},
                {"id": "sem", "probe": "sysctl", "hosts": ["ns"], "with": {"key": "kernel.sem"},
                 "expect": {"value": ">= 1 1 1 1"}},
                {"id": "user", "probe": "user", "hosts": ["ns"], "with": {"name": accts.user},
                 "expect": {"exists": True, "groups": f"contains {accts.group}"}},
                {"id": "group", "probe": "group", "hosts": ["ns"], "with": {"name": accts.group},
                 "expect": {"members": f"contains {accts.user2}"}},
                {"id": "nofile", "probe": "ulimit", "hosts": ["ns"],
                 "with": {"user": accts.user, "resource": "nofile"}, "expect": {"hard": ">= 1"}},
            ]
            inv = {"hosts": {"ns": {"address": host.address, "user": "root", "key": str(key)}}}
            code, r = _scan(tmp_path, checks, inv)
            status = {k.split("@")[0]: v["status"] for k, v in r.items()}
            assert status == {"somaxconn": "pass", "ports": "pass", "ports-too-low": "fail", "dotted-if": "pass",
                              "sem": "pass", "user": "pass", "group": "pass", "nofile": "pass"}, {
                k: v["message"]["en"] for k, v in r.items()}
            assert r["ports@ns"]["observed"]["values"] == [20000, 40000]
            assert r["sem@ns"]["observed"]["value"] == " ".join(Path("/proc/sys/kernel/sem").read_text().split())
            # accounts and limits are the machine's (a namespace shares files): same facts as locally
            assert r["user@ns"]["observed"] == _user(accts.user).model_dump(mode="json")
            local_ulimit = UlimitProbe().collect(ctx(), UlimitParams(user=accts.user, resource="nofile"))
            assert r["nofile@ns"]["observed"] == json.loads(json.dumps(local_ulimit.model_dump(mode="json")))
            assert srv.exec_requests <= 3  # one batch for every check (plus the host facts)

            # an unprivileged login: shadow and sudo need root, asked for through sudo (inventory sudo: true)
            sh("chpasswd", input=f"{accts.user}:{secrets.token_urlsafe(12)}\n")  # sshd refuses locked accounts
            rule = _sudoers(accts, f"{accts.user} ALL=(ALL) NOPASSWD: ALL\n")
            try:
                who = [{"id": "u2", "probe": "user", "hosts": ["ns"], "with": {"name": accts.user2}}]
                plain = {"hosts": {"ns": {"address": host.address, "user": accts.user, "key": str(key)}}}
                _, r1 = _scan(tmp_path, who, plain)
                assert r1["u2@ns"]["status"] == "pass", r1["u2@ns"]["message"]["en"]
                assert r1["u2@ns"]["observed"]["sudo"] is None and r1["u2@ns"]["observed"]["locked"] is None
                assert "sudo: true" in r1["u2@ns"]["message"]["en"]
                with_sudo = {"hosts": {"ns": {**plain["hosts"]["ns"], "sudo": True}}}
                _, r2 = _scan(tmp_path, who, with_sudo)
                obs = r2["u2@ns"]["observed"]
                assert (obs["sudo"], obs["locked"], obs["password_status"]) == (False, True, "locked"), obs
            finally:
                rule.unlink()
        finally:
            srv.stop()
