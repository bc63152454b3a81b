"""The process, service and file probes: real observations on this machine (both paths, which must agree),
and parse() on recorded or format-faithful outputs in tests/fixtures/{process,service,file}/."""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from envprobe.loader import load_text
from envprobe.probes.base import Probe, ProbeContext, ProbeError
from envprobe.probes.file import MAX_CONTENT, FileParams, FileProbe, file_command, shell_path
from envprobe.probes.process import ProcessParams, ProcessProbe, parse_ps
from envprobe.probes.service import ServiceParams, ServiceProbe, service_command
from envprobe.registry import Registry
from envprobe.runner import Runner
from envprobe.schema import Model, ValidationError
from envprobe.transport.base import CommandResult
from envprobe.transport.local import LocalTransport

FIXTURES = Path(__file__).parent / "fixtures"
posix_only = pytest.mark.skipif(os.name != "posix", reason="the shell path needs /bin/sh")


def ctx(native: bool) -> ProbeContext:
    return ProbeContext(LocalTransport(), "local", 10, prefer_native=native)


def both(probe: Probe, params: Model) -> tuple[Any, Any]:
    """Collect with psutil/stdlib and with the shell path on this machine."""
    return probe.collect(ctx(True), params), probe.collect(ctx(False), params)


def parsed(probe: Probe, params: Model, kind: str, name: str, rc: int = 0) -> Any:
    text = (FIXTURES / kind / name).read_text(encoding="utf-8")
    (src,) = probe.sources(params)
    return probe.parse(params, {src: CommandResult(rc, text, "", 5.0)})


def me() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


# ================================================================================================ process
@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """A copy of sleep under a unique name (comm is the file name), running `NAME 300`; killed by pid."""
    src = shutil.which("sleep")
    if src is None:
        pytest.skip("no sleep binary")
    name = "epslp" + uuid.uuid4().hex[:8]  # 13 characters: fits Linux's 15-character comm
    exe = tmp_path / name
    shutil.copy2(src, exe)
    proc = subprocess.Popen([str(exe), "300"])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # wait for the exec: until then the child still looks like python
            try:
                if psutil.Process(proc.pid).name() == name:
                    break
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.02)
        else:
            pytest.fail("the test process did not start")
        yield proc, name, str(exe)
    finally:
        proc.kill()
        proc.wait(timeout=5)


@posix_only
def test_process_found_by_name_both_paths(sleeper: tuple[subprocess.Popen[bytes], str, str]) -> None:
    proc, name, exe = sleeper
    native, shell = both(ProcessProbe(), ProcessParams(name=name))
    assert native == shell
    assert native.running is True
    assert native.count == 1
    assert native.pids == [proc.pid]
    assert native.users == [me()]
    assert native.cmdlines == [f"{exe} 300"]
    assert os.getpid() not in native.pids


@posix_only
def test_process_found_by_pattern_both_paths(sleeper: tuple[subprocess.Popen[bytes], str, str]) -> None:
    proc, name, _exe = sleeper
    native, shell = both(ProcessProbe(), ProcessParams(pattern=re.escape(name) + r" 300$"))
    assert native == shell
    assert native.pids == [proc.pid]
    # A pattern the command line does not hold finds nothing.
    native, shell = both(ProcessProbe(), ProcessParams(pattern=re.escape(name) + r" 301$"))
    assert native.count == shell.count == 0


@posix_only
def test_process_user_filter(sleeper: tuple[subprocess.Popen[bytes], str, str]) -> None:
    proc, name, _exe = sleeper
    native, shell = both(ProcessProbe(), ProcessParams(name=name, user=me()))
    assert native.pids == shell.pids == [proc.pid]
    other = "nobody" if me() != "nobody" else "root"
    native, shell = both(ProcessProbe(), ProcessParams(name=name, user=other))
    assert native.running is shell.running is False
    assert native.pids == shell.pids == []


@posix_only
def test_process_name_matches_argv0(tmp_path: Path) -> None:
    """A program started under another argv[0] (as daemons rename themselves) matches by that name."""
    src = shutil.which("sleep")
    assert src is not None
    alias = "ep-argv0-" + uuid.uuid4().hex[:12]  # longer than 15: only argv[0] can match
    proc = subprocess.Popen([alias, "300"], executable=src)
    try:
        time.sleep(0.2)
        native, shell = both(ProcessProbe(), ProcessParams(name=alias))
        assert native == shell
        assert native.pids == [proc.pid]
        assert native.cmdlines == [f"{alias} 300"]
    finally:
        proc.kill()
        proc.wait(timeout=5)


@posix_only
def test_process_missing_name() -> None:
    missing = "no-such-proc-" + uuid.uuid4().hex[:8]
    native, shell = both(ProcessProbe(), ProcessParams(name=missing))
    for f in (native, shell):
        assert f.running is False
        assert f.count == 0
        assert f.pids == [] and f.users == [] and f.cmdlines == []


@posix_only
def test_process_excludes_envprobe_itself_and_its_helpers() -> None:
    own = " ".join(psutil.Process().cmdline())
    native, shell = both(ProcessProbe(), ProcessParams(pattern="^" + re.escape(own) + "$"))
    assert os.getpid() not in native.pids
    assert os.getpid() not in shell.pids
    # The shell path's own sh and ps hold these strings in their command lines; they must not be counted.
    for pattern in ("@@envprobe:self", r"ps -ww -eo pid=,ppid="):
        assert ProcessProbe().collect(ctx(False), ProcessParams(pattern=pattern)).count == 0


@pytest.mark.skipif(sys.platform != "linux", reason="Linux kernel threads")
def test_process_both_paths_list_the_same_processes() -> None:
    # Kernel threads show as [name] on both paths; a few kworkers may come and go between the listings.
    native, shell = both(ProcessProbe(), ProcessParams(pattern=r"^\["))
    assert native.count > 0 and shell.count > 0
    assert len(set(native.pids) ^ set(shell.pids)) <= 3
    assert both(ProcessProbe(), ProcessParams(name="kthreadd"))[0].pids == [2]


def test_process_parse_fixture_app_server() -> None:
    p = ProcessProbe()

    def run(**kw: Any) -> Any:
        return parsed(p, ProcessParams(**kw), "process", "app-server-ps.txt")

    nginx = run(name="nginx")
    assert (nginx.running, nginx.count) == (True, 3)
    assert (nginx.pids, nginx.users) == ([1020, 1021, 1022], ["nginx", "root"])
    assert nginx.cmdlines[0] == "nginx: master process /usr/sbin/nginx"
    assert run(name="nginx", user="nginx").pids == [1021, 1022]
    java = run(pattern=r"-jar /opt/mes/mes-server\.jar")
    assert java.pids == [1310]  # the zombie child 2001 ([java] <defunct>) is not counted
    assert java.users == ["mes"]
    assert len(java.cmdlines[0]) == 200
    assert java.cmdlines[0].startswith("/usr/lib/jvm/java-11-openjdk/bin/java -Xms2g")
    assert run(name="java").pids == [1310]
    assert run(name="postgres").pids == [1400, 1401, 1402]
    assert run(name="tmux: server").pids == [2000]  # comm with a space, read from the second listing
    assert run(name="dmserver", user="dmdba").count == 1
    assert run(user="1234567", name="legacyd").pids == [2100]
    assert run(name="kthreadd").cmdlines == ["[kthreadd]"]
    # The probe's own shell, subshell and ps (children of $$) and the SSH session ($PPID) never match...
    assert run(pattern="envprobe").count == 0
    assert run(name="ps").count == 0
    assert run(pattern="^sshd").pids == [911, 24780]
    # ...though they are in the listing.
    procs, helpers = parse_ps(CommandResult(0, (FIXTURES / "process/app-server-ps.txt").read_text(), "", 1))
    assert {24811, 24812, 24813, 24790} <= helpers
    assert 911 not in helpers and 1 not in helpers
    assert any(pr.pid == 24811 for pr in procs)
    missing = run(name="httpd")
    assert missing.running is False and missing.count == 0


@pytest.mark.parametrize("fixture", ["busybox-ps.txt", "no-ps.txt"])
def test_process_parse_without_procps(fixture: str) -> None:
    with pytest.raises(ProbeError) as err:
        parsed(ProcessProbe(), ProcessParams(name="nginx"), "process", fixture, rc=1)
    assert "procps" in err.value.message["en"]
    assert "procps" in err.value.message["zh-CN"]
    if fixture == "busybox-ps.txt":
        assert "invalid option" in err.value.message["en"]


@pytest.mark.parametrize("params, needle", [
    ({}, "exactly one of name"),
    ({"name": "nginx", "pattern": "nginx"}, "exactly one of name"),
    ({"pattern": "java (["}, "not a valid regular expression"),
    ({"name": "/usr/sbin/nginx"}, "looks like a path"),
    ({"name": "  "}, "name is empty"),
    ({"name": "nginx", "user": ""}, "user is empty"),
    ({"name": "nginx", "uesr": "root"}, "Extra inputs are not permitted"),
])
def test_process_params_rejected(params: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        ProcessParams(**params)
    assert needle in str(err.value)


# ================================================================================================ service
def _systemd() -> bool:
    return os.path.isdir("/run/systemd/system")


@posix_only
def test_service_without_manager_on_this_machine() -> None:
    if _systemd():
        pytest.skip("this host runs systemd")
    name = "envprobe-no-such-svc"
    assert not os.path.exists(f"/etc/init.d/{name}")
    probe = ServiceProbe()
    native, shell = both(probe, ServiceParams(name=name))
    assert native == shell
    assert native.manager == "none"
    assert native.exists is False and native.active is False
    assert native.enabled is None and native.state is None and native.pid is None
    note = probe.note(ServiceParams(name=name), native)
    assert note is not None
    assert "no service manager was found" in note["en"] and "cannot be read" in note["en"]
    assert "probe: process" in note["en"]
    assert "未找到" in note["zh-CN"] and "无法读取服务状态" in note["zh-CN"] and "进程检查" in note["zh-CN"]


@posix_only
def test_service_sysv_script_on_this_machine() -> None:
    """Debian images keep SysV scripts (postgresql, dbus...) even without an init system."""
    if _systemd():
        pytest.skip("this host runs systemd")
    scripts = sorted(p for p in glob.glob("/etc/init.d/*") if os.access(p, os.X_OK) and "." not in p[12:])
    if not scripts:
        pytest.skip("no init scripts here")
    name = os.path.basename("/etc/init.d/postgresql" if "/etc/init.d/postgresql" in scripts else scripts[0])
    native, shell = both(ServiceProbe(), ServiceParams(name=name))
    assert native == shell
    assert native.manager == "sysv" and native.exists is True
    env = {**os.environ, "LC_ALL": "C"}
    rc = subprocess.run([f"/etc/init.d/{name}", "status"], capture_output=True, env=env).returncode
    assert native.active is {0: True, 1: False, 2: False, 3: False}.get(rc)
    links = glob.glob(f"/etc/rc[2345S].d/S[0-9][0-9]{name}")
    assert native.enabled is bool(links)


SERVICE_KEYS = ("manager", "exists", "active", "enabled", "state", "pid")


@pytest.mark.parametrize("fixture, name, expected", [
    ("systemd-nginx-active.txt", "nginx", ("systemd", True, True, True, "active", 1020)),
    ("systemd-nginx-inactive-disabled.txt", "nginx", ("systemd", True, False, False, "inactive", None)),
    ("systemd-mes-failed.txt", "mes", ("systemd", True, False, True, "failed", None)),
    ("systemd-nginx-not-found.txt", "nginx.service", ("systemd", False, False, None, "inactive", None)),
    ("systemd-firewalld-masked.txt", "firewalld", ("systemd", True, False, False, "inactive", None)),
    ("sysv-centos6-sshd-running.txt", "sshd", ("sysv", True, True, True, "running", 1534)),
    ("sysv-centos6-httpd-stopped-disabled.txt", "httpd", ("sysv", True, False, False, "stopped", None)),
    ("sysv-unknown-status.txt", "legacyd", ("sysv", True, None, None, "unknown", None)),
    ("debian12-sysv-postgresql-stopped.txt", "postgresql", ("sysv", True, False, True, "stopped", None)),
    ("debian12-sysv-dbus-stopped.txt", "dbus", ("sysv", True, False, True, "stopped", None)),
    ("debian12-container-none.txt", "nginx", ("none", False, False, None, None, None)),
    ("openrc-nginx-started.txt", "nginx", ("openrc", True, True, True, "started", None)),
])
def test_service_parse_fixtures(fixture: str, name: str, expected: tuple[Any, ...]) -> None:
    facts = parsed(ServiceProbe(), ServiceParams(name=name), "service", fixture)
    assert facts.model_dump() == dict(zip(SERVICE_KEYS, expected, strict=True))


def test_service_notes() -> None:
    probe = ServiceProbe()

    def note(fixture: str, name: str) -> Any:
        params = ServiceParams(name=name)
        return probe.note(params, parsed(probe, params, "service", fixture))

    assert note("systemd-nginx-active.txt", "nginx") is None
    nf = note("systemd-nginx-not-found.txt", "nginx")
    assert "LoadState=not-found" in nf["en"] and "nginx.service" in nf["zh-CN"]
    unknown = note("sysv-unknown-status.txt", "legacyd")
    assert "did not say whether it runs" in unknown["en"] and "开机自启" in unknown["zh-CN"]


def test_service_parse_without_systemd_bus() -> None:
    with pytest.raises(ProbeError) as err:
        parsed(ServiceProbe(), ServiceParams(name="nginx"), "service", "systemd-no-bus.txt", rc=0)
    assert "systemctl show nginx.service" in err.value.message["en"]
    assert "System has not been booted with systemd" in err.value.message["en"]
    assert "执行失败" in err.value.message["zh-CN"]


def test_service_params_and_quoting() -> None:
    assert ServiceParams(name="nginx.service").name == "nginx"
    assert ServiceParams(name=" sshd ").name == "sshd"
    assert "'MSSQL$SQLEXPRESS.service'" in service_command(ServiceParams(name="MSSQL$SQLEXPRESS").name)
    assert "postgresql@15-main.service" in service_command("postgresql@15-main")
    assert "sshd.socket --property" in service_command("sshd.socket")
    for bad, needle in [("nginx; rm -rf /", "not a service name"), ("", "name is empty"),
                        (".service", "name is empty"), ("$(id)", "not a service name")]:
        with pytest.raises(ValidationError) as err:
            ServiceParams(name=bad)
        assert needle in str(err.value)
    with pytest.raises(ValidationError):
        ServiceParams.model_validate({"name": "nginx", "state": "running"})


# =================================================================================================== file
def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


CONFIG = "server:\n  port: 8080\n# 数据库 / database\nurl: jdbc:dm://10.0.0.5:5236/MES\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    f = tmp_path / "app.yml"
    f.write_text(CONFIG, encoding="utf-8")
    f.chmod(0o640)
    (tmp_path / "link.yml").symlink_to("app.yml")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    d = tmp_path / "data"
    d.mkdir()
    d.chmod(0o2750)
    (tmp_path / "big.bin").write_bytes(os.urandom(8192))
    (tmp_path / "it's a file.txt").write_text("quoted name\n")
    return tmp_path


def file_both(**kw: Any) -> Any:
    params = FileParams(**kw)
    native, shell = both(FileProbe(), params)
    assert native == shell, f"native {native!r} != shell {shell!r}"
    return native


@posix_only
def test_file_regular_both_paths(tree: Path) -> None:
    import grp
    import pwd

    path = tree / "app.yml"
    st = os.stat(path)
    f = file_both(path=str(path))
    assert f.exists is True and f.type == "file"
    assert f.mode == "0640" and f.mode != "0644"
    assert f.size == len(CONFIG.encode("utf-8"))
    assert f.sha256 == hashlib.sha256(CONFIG.encode("utf-8")).hexdigest()
    assert f.owner == pwd.getpwuid(st.st_uid).pw_name
    assert f.group == grp.getgrgid(st.st_gid).gr_name
    assert f.mtime == _iso(st.st_mtime)
    assert f.content_match is None and f.link_target is None
    assert FileProbe().note(FileParams(path=str(path)), f) is None


@posix_only
@pytest.mark.parametrize("kw, expected", [
    ({"contains": "jdbc:dm://"}, True),
    ({"contains": "jdbc:mysql://"}, False),
    ({"contains": "数据库"}, True),
    ({"matches": r"^  port: 80\d\d$"}, True),
    ({"matches": r"^port: 8080$"}, False),
    ({"contains": "5236", "matches": r"^url: jdbc:dm://"}, True),
    ({"contains": "5236", "matches": r"^url: jdbc:oracle:"}, False),
    ({"contains": "1521", "matches": r"^url: jdbc:dm://"}, False),
])
def test_file_content_match(tree: Path, kw: dict[str, str], expected: bool) -> None:
    f = file_both(path=str(tree / "app.yml"), **kw)
    assert f.content_match is expected


@posix_only
def test_file_symlink(tree: Path) -> None:
    f = file_both(path=str(tree / "link.yml"), contains="8080")
    assert f.type == "symlink" and f.link_target == "app.yml"
    # Everything else describes the target, as cat and stat -L do.
    assert f.mode == "0640" and f.size == len(CONFIG.encode())
    assert f.sha256 == hashlib.sha256(CONFIG.encode()).hexdigest()
    assert f.content_match is True


@posix_only
def test_file_dangling_symlink(tree: Path) -> None:
    params = FileParams(path=str(tree / "dangling"))
    f = file_both(path=params.path)
    assert f.exists is True and f.type == "symlink" and f.link_target == str(tree / "nowhere")
    assert f.mode is None and f.sha256 is None
    note = FileProbe().note(params, f)
    assert note is not None and "dangling" in note["en"] and "失效链接" in note["zh-CN"]


@posix_only
def test_file_directory(tree: Path) -> None:
    f = file_both(path=str(tree / "data"), contains="x")
    assert f.type == "directory" and f.mode == "2750"
    assert f.sha256 is None and f.content_match is None
    note = FileProbe().note(FileParams(path=str(tree / "data"), contains="x"), f)
    assert note is not None and "not a readable regular file" in note["en"]


@posix_only
def test_file_missing(tree: Path) -> None:
    params = FileParams(path=str(tree / "missing.conf"), contains="x")
    f = file_both(path=params.path, contains="x")
    assert f.exists is False
    assert f.model_dump() == {"exists": False, "type": None, "mode": None, "owner": None, "group": None,
                              "size": None, "mtime": None, "sha256": None, "content_match": None,
                              "link_target": None}
    note = FileProbe().note(params, f)
    assert note is not None and "does not exist" in note["en"] and "不存在" in note["zh-CN"]
    # A path under a regular file is missing too (ENOTDIR), on both paths.
    assert file_both(path=str(tree / "app.yml" / "x")).exists is False


@posix_only
def test_file_hash_limits(tree: Path) -> None:
    big = str(tree / "big.bin")
    assert file_both(path=big).sha256 == hashlib.sha256((tree / "big.bin").read_bytes()).hexdigest()
    assert file_both(path=big, hash="none").sha256 is None
    params = FileParams(path=big, max_hash_mb=0.004)  # 4194 bytes < 8192
    f = file_both(path=big, max_hash_mb=0.004)
    assert f.sha256 is None and f.size == 8192
    note = FileProbe().note(params, f)
    assert note is not None and "max_hash_mb" in note["en"]


@posix_only
def test_file_tilde_and_quoting(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tree))
    f = file_both(path="~/app.yml", contains="8080")
    assert f.exists and f.content_match is True
    f = file_both(path=str(tree / "it's a file.txt"), matches="^quoted")
    assert f.exists and f.content_match is True
    assert file_both(path="~/nothing-here").exists is False


@posix_only
def test_file_against_system_file() -> None:
    f = file_both(path="/etc/passwd", contains="root:")
    assert f.type == "file" and f.content_match is True
    assert f.mode == f"{stat.S_IMODE(os.stat('/etc/passwd').st_mode):04o}"


@pytest.mark.parametrize("fixture, kw, expected", [
    ("config-file.txt", {"contains": "jdbc:dm://"},
     {"exists": True, "type": "file", "mode": "0640", "owner": "root", "group": "root", "size": 98,
      "mtime": "2026-11-20T08:00:00Z",
      "sha256": "939bb68bd1914dd2e05ebf02aff58f2561267da95df1a213bfdda78a1b00c08a",
      "content_match": True, "link_target": None}),
    ("symlink-to-file.txt", {"matches": "^ *url: jdbc:dm://"},
     {"exists": True, "type": "symlink", "mode": "0640", "owner": "root", "group": "root", "size": 98,
      "mtime": "2026-11-20T08:00:00Z",
      "sha256": "939bb68bd1914dd2e05ebf02aff58f2561267da95df1a213bfdda78a1b00c08a",
      "content_match": True, "link_target": "conf/application.yml"}),
    ("dangling-symlink.txt", {},
     {"exists": True, "type": "symlink", "mode": None, "owner": None, "group": None, "size": None,
      "mtime": None, "sha256": None, "content_match": None, "link_target": "/tmp/fx/nowhere"}),
    ("directory.txt", {"contains": "x"},
     {"exists": True, "type": "directory", "mode": "0755", "owner": "root", "group": "root", "size": 4096,
      "mtime": "2026-11-21T09:30:00Z", "sha256": None, "content_match": None, "link_target": None}),
    ("unknown-owner.txt", {},
     {"exists": True, "type": "file", "mode": "2750", "owner": "1005", "group": "1005", "size": 512,
      "mtime": "2025-11-26T00:00:00Z",
      "sha256": "076a27c79e5ace2a3d47f9dd2e83e4ff6ea8872b3c2218f66c92b89b55f36560",
      "content_match": None, "link_target": None}),
    ("large-file.txt", {},
     {"exists": True, "type": "file", "mode": "0644", "owner": "postgres", "group": "postgres",
      "size": 2147483648, "mtime": "2025-11-26T00:00:00Z", "sha256": None, "content_match": None,
      "link_target": None}),
    ("empty-file.txt", {"contains": "x"},
     {"exists": True, "type": "file", "mode": "0600", "owner": "root", "group": "root", "size": 0,
      "mtime": "2025-11-26T00:00:00Z",
      "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "content_match": False, "link_target": None}),
    ("missing.txt", {"contains": "x"},
     {"exists": False, "type": None, "mode": None, "owner": None, "group": None, "size": None,
      "mtime": None, "sha256": None, "content_match": None, "link_target": None}),
])
def test_file_parse_fixtures(fixture: str, kw: dict[str, str], expected: dict[str, Any]) -> None:
    facts = parsed(FileProbe(), FileParams(path="/opt/mes/conf/application.yml", **kw), "file", fixture)
    assert facts.model_dump() == expected


def test_file_parse_content_mismatch_in_fixture() -> None:
    facts = parsed(FileProbe(), FileParams(path="/x", contains="jdbc:oracle:"), "file", "config-file.txt")
    assert facts.content_match is False


def test_file_parse_large_file_note() -> None:
    params = FileParams(path="/var/lib/pgsql/base.dump")
    facts = parsed(FileProbe(), params, "file", "large-file.txt")
    note = FileProbe().note(params, facts)
    assert note is not None and "2048.0 MiB is above max_hash_mb (64 MiB)" in note["en"]


def test_file_parse_bsd_stat() -> None:
    with pytest.raises(ProbeError) as err:
        parsed(FileProbe(), FileParams(path="/etc/hosts"), "file", "bsd-stat.txt", rc=1)
    assert "GNU coreutils" in err.value.message["en"] and "illegal option" in err.value.message["en"]
    assert "stat -c" in err.value.message["zh-CN"]


def test_file_shell_words() -> None:
    assert shell_path("/etc/my.cnf") == "/etc/my.cnf"
    assert shell_path("~") == '"$HOME"'
    assert shell_path("~/a b") == "\"$HOME\"/'a b'"
    assert shell_path("~deploy/app.conf") == "~deploy/app.conf"
    assert shell_path("/x/$(reboot)") == "'/x/$(reboot)'"
    cmd = file_command(FileParams(path="/etc/hosts", hash="none"))
    assert "sha256sum" not in cmd and "head -c" not in cmd
    cmd = file_command(FileParams(path="/etc/hosts", contains="x"))
    assert f"head -c {MAX_CONTENT}" in cmd and "sha256sum" in cmd and "-le 67108864" in cmd


@pytest.mark.parametrize("params, needle", [
    ({"path": "etc/hosts"}, "is relative"),
    ({"path": ""}, "path is empty"),
    ({"path": "~bad user/x"}, "after ~ give / or a user name"),
    ({"path": "/etc/hosts", "hash": "md5"}, "use sha256 or none"),
    ({"path": "/etc/hosts", "matches": "(["}, "not a valid regular expression"),
    ({"path": "/etc/hosts", "contains": ""}, "contains is empty"),
    ({"path": "/etc/hosts", "max_hash_mb": 0}, "greater than 0"),
    ({"path": "/etc/hosts", "sha": "x"}, "Extra inputs are not permitted"),
])
def test_file_params_rejected(params: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        FileParams(**params)
    assert needle in str(err.value)


def test_file_params_accepted() -> None:
    assert FileParams.model_validate({"path": "/etc/hosts", "hash": False}).hash == "none"
    assert FileParams.model_validate({"path": "/etc/hosts", "hash": "SHA-256"}).hash == "sha256"
    assert FileParams(path="C:\\app\\app.ini").path == "C:\\app\\app.ini"
    assert FileParams(path="~").path == "~"


# ================================================================================================= common
@pytest.mark.parametrize("probe", [ProcessProbe, ServiceProbe, FileProbe])
def test_spec_is_complete(probe: type[Probe]) -> None:
    assert probe.summary["en"] and probe.summary["zh-CN"]
    for fname, info in probe.Facts.model_fields.items():
        assert info.description, f"{probe.name}.{fname} has no description"
    for fname, info in probe.Params.model_fields.items():
        assert info.description, f"{probe.name} param {fname} has no description"
    for key, text in probe.advice.items():
        assert key == "*" or key in probe.Facts.model_fields, key
        assert text["en"] and text["zh-CN"]
    assert probe.has_native


@pytest.mark.parametrize("probe", [ProcessProbe, ServiceProbe, FileProbe])
def test_example_loads(probe: type[Probe]) -> None:
    text = "version: 1\nname: example\nchecks:\n" + "".join(f"  {ln}\n" for ln in probe.example.splitlines())
    plan = load_text(text, "example.yaml", Registry(), environ={})
    (check,) = plan.checks
    assert check.probe is probe
    assert check.expectations, "the example should show an expectation"


@pytest.mark.skipif(sys.platform != "linux", reason="compares against the Linux shell path")
def test_registry_names() -> None:
    reg = Registry()
    assert reg.get("process") is ProcessProbe
    assert reg.get("service") is ServiceProbe
    assert reg.get("file") is FileProbe


@posix_only
def test_runner_shows_the_note_and_advice(tree: Path) -> None:
    """Through the runner: a failed service check carries the 'no service manager' note; a file check
    passes."""
    if _systemd():
        pytest.skip("this host runs systemd")
    text = f"""\
version: 1
name: t
checks:
  - id: svc
    probe: service
    with: {{name: envprobe-no-such-svc}}
    expect: {{active: true}}
  - id: cfg
    probe: file
    with: {{path: "{tree / 'app.yml'}", contains: "jdbc:dm://"}}
    expect: {{exists: true, mode: "0640", content_match: true, size: "< 1 KB"}}
"""
    run = Runner(load_text(text, "t.yaml", Registry(), environ={}), {"local": LocalTransport()},
                 host_facts=False).run()
    by = {r.check: r for r in run.results}
    assert by["svc"].status.value == "fail"
    assert "no service manager was found" in by["svc"].message["en"]
    assert by["svc"].hint is not None and "systemctl start" in by["svc"].hint["en"]
    assert by["cfg"].status.value == "pass", by["cfg"].message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_linux_table_agrees_with_psutil() -> None:
    import psutil

    from envprobe.probes.process import _linux_table

    child = subprocess.Popen(["sh", "-c", "sleep 30; : envprobe-linux-table-marker"])
    try:
        ours = {p.pid: p for p in _linux_table(os.getpid())}
        assert os.getpid() not in ours
        theirs = {p.info["pid"]: p.info for p in psutil.process_iter(["pid", "ppid", "name", "username", "cmdline",
                                                                       "status"])}
        assert child.pid in ours and ours[child.pid].cmdline == "sh -c sleep 30; : envprobe-linux-table-marker"
        compared = 0
        for pid, p in ours.items():
            q = theirs.get(pid)
            if q is None or q["status"] == psutil.STATUS_ZOMBIE:
                continue  # ended in between
            assert (p.ppid, p.user, p.comm) == (q["ppid"], q["username"], q["name"]), pid
            compared += 1
        assert compared >= 3
    finally:
        child.kill()
        child.wait()
