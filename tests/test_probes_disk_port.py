"""The disk and port probes: parsers on recorded outputs, both paths on this machine against independent
sources (shutil.disk_usage, os.statvfs, sockets the test opens itself), and both paths side by side."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from envprobe.probes.base import ProbeContext, ProbeError
from envprobe.probes.disk import (
    DF_ALL,
    DiskParams,
    DiskProbe,
    _root_device,
    df_sources,
    disk_usage,
    is_real_fs,
    linux_partitions,
    parse_mounts,
)
from envprobe.probes.port import PortParams, PortProbe, _linux_name, try_bind
from envprobe.transport.base import CommandResult, Source
from envprobe.transport.local import LocalTransport
from tests.conftest import need

FIX = Path(__file__).resolve().parent / "fixtures"
LINUX = sys.platform.startswith("linux")
linux_only = pytest.mark.skipif(not LINUX, reason="the shell path reads /proc: Linux only")


def ctx(native: bool) -> ProbeContext:
    return ProbeContext(LocalTransport(), "local", 20, prefer_native=native)


def both(probe, params) -> tuple:
    return probe.collect(ctx(True), params), probe.collect(ctx(False), params)


def ok(text: str) -> CommandResult:
    return CommandResult(0, text, "", 1.0)


def gib(n: float) -> float:
    return round(n / 2**30, 2)


# ===========================================================================================================
# disk: recorded outputs
# ===========================================================================================================
DISK_CASES = {
    # case: (path, mount, device, fstype, total_gb, free_gb, used_percent, inodes_free_percent)
    "debian12": ("/data", "/data", "/dev/sdb", "btrfs", 500.0, 373.94, 25.1, None),
    "ubuntu2204": ("/opt/mes", "/", "/dev/mapper/ubuntu--vg-ubuntu--lv", "ext4", 97.87, 34.47, 62.9, 93.7),
    "centos7": ("/data", "/data", "/dev/sdb1", "xfs", 1023.5, 248.79, 75.7, 100.0),
    "rhel9": ("/var/lib/pgsql", "/var", "/dev/mapper/rhel-var", "xfs", 199.9, 176.91, 11.5, 99.9),
    "kylin-v10-arm64": ("/data", "/data", "/dev/mapper/datavg-lv01", "xfs", 2047.74, 166.29, 91.9, 99.7),
    "uos20": ("/mnt/backup disk/mes", "/mnt/backup disk", "/dev/sdc1", "ext4", 916.77, 857.93, 1.4, 100.0),
    "openeuler2203": ("/srv/app", "/", "/dev/mapper/openeuler-root", "ext4", 48.91, 17.3, 62.7, 4.0),
    "anolis8": ("/data", "/data", "10.0.0.20:/export/mes", "nfs4", 4096.0, 3276.8, 20.0, 99.5),
}


def disk_data(case: str, path: str) -> dict[Source, CommandResult]:
    space, inodes = df_sources(path)
    d = FIX / "disk" / case
    return {space: ok((d / "df-PTk").read_text()), inodes: ok((d / "df-Pi").read_text())}


@pytest.mark.parametrize("case", sorted(DISK_CASES))
def test_disk_parse_recorded(case):
    path, mount, device, fstype, total, free, used, inodes = DISK_CASES[case]
    params = DiskParams(path=path)
    assert set(DiskProbe().sources(params)) == set(disk_data(case, path))
    f = DiskProbe().parse(params, disk_data(case, path))
    assert (f.path, f.mount, f.device, f.fstype) == (path, mount, device, fstype)
    assert (f.total_gb, f.free_gb, f.used_percent, f.inodes_free_percent) == (total, free, used, inodes)


@pytest.mark.parametrize("case", sorted(DISK_CASES))
def test_disk_used_percent_is_dfs_capacity(case):
    """df rounds Capacity up; our one-decimal figure must round up to the same whole percent."""
    path = DISK_CASES[case][0]
    f = DiskProbe().parse(DiskParams(path=path), disk_data(case, path))
    line = (FIX / "disk" / case / "df-PTk").read_text().splitlines()[1]
    capacity = int(next(w for w in line.split() if w.endswith("%"))[:-1])
    assert capacity - 1 < f.used_percent <= capacity


def test_disk_nearly_full_is_seen():
    f = DiskProbe().parse(DiskParams(path="/data"), disk_data("kylin-v10-arm64", "/data"))
    assert f.used_percent > 90 and not f.used_percent < 80


def test_disk_missing_path_says_so_in_both_languages():
    params = DiskParams(path="/nope")
    space, inodes = df_sources("/nope")
    data = {
        space: CommandResult(1, "", "df: /nope: No such file or directory\n", 1.0),
        inodes: CommandResult(1, "", "df: /nope: No such file or directory\n", 1.0),
    }
    with pytest.raises(ProbeError) as err:
        DiskProbe().parse(params, data)
    assert "/nope" in err.value.message["en"] and "does not exist" in err.value.message["en"]
    assert "/nope" in err.value.message["zh-CN"] and "不存在" in err.value.message["zh-CN"]


def test_disk_permission_denied_is_a_probe_error():
    space, inodes = df_sources("/root/x")
    data = {space: CommandResult(1, "", "df: /root/x: Permission denied\n", 1.0), inodes: ok("")}
    with pytest.raises(ProbeError, match="permission denied"):
        DiskProbe().parse(DiskParams(path="/root/x"), data)


@pytest.mark.parametrize(
    "text", ["", "Filesystem Type 1024-blocks Used Available Capacity Mounted on\n", "nonsense\n"]
)
def test_disk_unexpected_df_output_is_a_probe_error(text):
    space, inodes = df_sources("/data")
    with pytest.raises(ProbeError):
        DiskProbe().parse(DiskParams(path="/data"), {space: ok(text), inodes: ok("")})


def test_disk_without_inode_listing_leaves_inodes_null():
    space, inodes = df_sources("/data")
    data = disk_data("centos7", "/data")
    data[inodes] = CommandResult(1, "", "df: invalid option -- 'i'", 1.0)
    assert DiskProbe().parse(DiskParams(path="/data"), data).inodes_free_percent is None


def test_disk_path_is_quoted_for_the_shell():
    space, inodes = df_sources("/mnt/a b; rm -rf /")
    assert space.target == "df -PTk -- '/mnt/a b; rm -rf /'"
    assert inodes.target == "df -Pi -- '/mnt/a b; rm -rf /'"


@pytest.mark.parametrize("bad", ["", "   ", "/a\nb"])
def test_disk_params_refuse_bad_paths(bad):
    with pytest.raises(ValueError):
        DiskParams(path=bad)
    with pytest.raises(ValueError):
        DiskParams.model_validate({})  # path is required


@pytest.mark.parametrize(
    "case,mounts",
    [
        ("kylin-v10-arm64", ["/", "/boot", "/boot/efi", "/data"]),
        ("ubuntu2204", ["/", "/boot", "/var/lib/docker"]),
    ],
)
def test_disk_host_listing_keeps_real_filesystems(case, mounts):
    data = {DF_ALL: ok((FIX / "disk" / case / "df-all").read_text())}
    rows = DiskProbe().parse_list(data)
    assert [r["mount"] for r in rows] == mounts


def test_disk_host_listing_tolerates_one_unreadable_mount():
    text = (FIX / "disk" / "kylin-v10-arm64" / "df-all").read_text()
    data = {DF_ALL: CommandResult(1, text, "df: /run/user/1000/doc: Operation not permitted\n", 1.0)}
    assert len(DiskProbe().parse_list(data)) == 4


def test_is_real_fs():
    assert is_real_fs("xfs", "/data")
    assert is_real_fs("ext4", "/var/lib/docker")
    assert not is_real_fs("overlay", "/var/lib/docker/overlay2/abc/merged")
    assert not is_real_fs("tmpfs", "/run")
    assert not is_real_fs("ext4", "/run/netns/ns1")
    assert not is_real_fs("nsfs", "/run/netns/ns1")
    assert not is_real_fs("squashfs", "/snap/core20/2015")


# ===========================================================================================================
# disk: this machine
# ===========================================================================================================
@linux_only
@pytest.mark.parametrize("native", [True, False], ids=["native", "shell"])
def test_disk_root_matches_shutil(native):
    f = DiskProbe().collect(ctx(native), DiskParams(path="/"))
    du = shutil.disk_usage("/")
    assert f.mount == "/"
    assert f.total_gb == gib(du.total)
    assert abs(f.free_gb - du.free / 2**30) < 0.5
    assert f.free_gb != f.total_gb
    st = os.statvfs("/")
    if st.f_files:
        assert f.inodes_free_percent is not None
        assert abs(f.inodes_free_percent - 100 * st.f_ffree / st.f_files) < 0.5


@linux_only
@pytest.mark.parametrize("native", [True, False], ids=["native", "shell"])
def test_disk_missing_path_on_this_machine(native, tmp_path):
    missing = str(tmp_path / "no such dir")
    with pytest.raises(ProbeError) as err:
        DiskProbe().collect(ctx(native), DiskParams(path=missing))
    assert "does not exist" in err.value.message["en"] and "不存在" in err.value.message["zh-CN"]


@linux_only
def test_disk_both_paths_agree(tmp_path):
    spaced = tmp_path / "a dir with spaces"
    spaced.mkdir()
    link = tmp_path / "link-to-root"
    link.symlink_to("/")
    for path in ("/", str(spaced), str(link), "/dev/shm" if os.path.isdir("/dev/shm") else "/"):
        native, shell = both(DiskProbe(), DiskParams(path=path))
        for field in ("path", "mount", "device", "fstype", "total_gb"):
            assert getattr(native, field) == getattr(shell, field), (path, field)
        assert abs(native.free_gb - shell.free_gb) < 0.5
        assert abs(native.used_percent - shell.used_percent) < 1
        assert (native.inodes_free_percent is None) == (shell.inodes_free_percent is None)


@linux_only
def test_disk_tmpfs_is_its_own_mount():
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm")
    native, shell = both(DiskProbe(), DiskParams(path="/dev/shm"))
    for f in (native, shell):
        assert f.mount == "/dev/shm" and f.mount != "/"
        assert f.fstype == "tmpfs"


@linux_only
def test_disk_sees_space_this_test_takes():
    """Write 256 MiB to /dev/shm (tmpfs: no delayed allocation): free space must drop on both paths."""
    if not os.path.isdir("/dev/shm") or shutil.disk_usage("/dev/shm").free < 1 << 30:
        pytest.skip("no roomy /dev/shm")
    params = DiskParams(path="/dev/shm")
    before_n, before_s = both(DiskProbe(), params)
    path = f"/dev/shm/envprobe-test-{os.getpid()}"
    try:
        with open(path, "wb") as fh:
            chunk = b"\xa5" * (1 << 20)
            for _ in range(256):
                fh.write(chunk)
        after_n, after_s = both(DiskProbe(), params)
    finally:
        os.unlink(path)
    assert 0.2 < before_n.free_gb - after_n.free_gb < 0.3
    assert 0.2 < before_s.free_gb - after_s.free_gb < 0.3


# ===========================================================================================================
# disk: the Linux direct path (statvfs, /proc/self/mounts) against psutil
# ===========================================================================================================
def test_parse_mounts_decodes_the_kernels_escapes():
    text = (
        "/dev/vda / ext4 rw,relatime 0 0\n"
        "none /run/x tmpfs rw 0 0\n"
        "my\\040src /mnt/a\\040dir\\011with\\134odd\\012names tmpfs rw 0 0\n"
        "short line\n"
    )
    assert [tuple(p) for p in parse_mounts(text)] == [
        ("/dev/vda", "/", "ext4"),
        ("", "/run/x", "tmpfs"),
        ("my src", "/mnt/a dir\twith\\odd\nnames", "tmpfs"),
    ]


@linux_only
def test_mount_table_matches_psutil():
    import psutil

    ours = [tuple(p) for p in linux_partitions()]
    theirs = [(p.device, p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=True)]
    assert ours == theirs
    assert ("/" in {m for _, m, _ in ours}) and ours != []


@linux_only
def test_root_device_is_found_as_psutil_finds_it():
    """For a mount table saying /dev/root or rootfs: the block device holding /, by psutil's own finder."""
    from psutil import _pslinux

    finder = getattr(_pslinux, "RootFsDeviceFinder", None)
    if finder is None:
        pytest.skip("this psutil has no RootFsDeviceFinder")
    theirs = finder().find()
    assert _root_device() == theirs
    if os.path.exists("/proc/partitions") and os.major(os.stat("/").st_dev) != 0:
        assert theirs is not None and theirs.startswith("/dev/")


@linux_only
def test_disk_usage_matches_psutil(tmp_path):
    """statvfs with psutil's arithmetic: the same total; used and free up to what other writers change."""
    import psutil

    paths = ["/", str(tmp_path)] + ["/dev/shm"] * os.path.isdir("/dev/shm")
    paths += [p.mountpoint for p in linux_partitions() if is_real_fs(p.fstype, p.mountpoint)]
    for path in paths:
        ours, theirs = disk_usage(path), psutil.disk_usage(path)
        assert ours.total == theirs.total, path
        assert abs(ours.used - theirs.used) < 64 << 20, path
        assert abs(ours.free - theirs.free) < 64 << 20, path
        assert abs(100 * ours.used / (ours.used + ours.free) - theirs.percent) < 0.5, path


@linux_only
def test_disk_native_facts_match_psutil(tmp_path):
    """The native facts against the same facts made from psutil (its partitions, its disk_usage)."""
    import psutil

    def from_psutil(path: str) -> dict:
        real = os.path.realpath(path)
        best = None
        for p in psutil.disk_partitions(all=True):
            if p.mountpoint.startswith(("/run/netns", "/var/run/netns")):
                continue
            under = real == p.mountpoint or real.startswith(p.mountpoint.rstrip("/") + "/")
            if under and (best is None or len(p.mountpoint) >= len(best.mountpoint)):
                best = p
        assert best is not None
        u = psutil.disk_usage(real)
        return {"mount": best.mountpoint, "device": best.device, "fstype": best.fstype,
                "total_gb": gib(u.total), "free_gb": gib(u.free)}

    link = tmp_path / "link-to-root"
    link.symlink_to("/")
    for path in ["/", str(tmp_path), str(link)] + ["/dev/shm"] * os.path.isdir("/dev/shm"):
        f = DiskProbe().collect(ctx(True), DiskParams(path=path))
        want = from_psutil(path)
        assert (f.mount, f.device, f.fstype, f.total_gb) == (
            want["mount"], want["device"], want["fstype"], want["total_gb"]), path
        assert abs(f.free_gb - want["free_gb"]) < 0.1, path


_IN_NAMESPACE = r"""
import json, sys
import psutil
from envprobe.probes.base import ProbeContext
from envprobe.probes.disk import DiskParams, DiskProbe, linux_partitions
from envprobe.transport.local import LocalTransport
spaced = sys.argv[1]
facts = {}
for native in (True, False):
    ctx = ProbeContext(LocalTransport(), "local", 20, prefer_native=native)
    facts[str(native)] = DiskProbe().collect(ctx, DiskParams(path=spaced)).model_dump()
print(json.dumps({
    "ours": [list(p) for p in linux_partitions()],
    "psutil": [[p.device, p.mountpoint, p.fstype] for p in psutil.disk_partitions(all=True)],
    "facts": facts,
}))
"""


@linux_only
def test_odd_mounts_match_psutil_in_a_private_mount_namespace(tmp_path):
    """Mount points with a space, a tab and a backslash, a source with a space, a 'none' source and a
    '/dev/root' source (mapped to the device holding /), all tmpfs in a mount namespace of their own (they
    vanish with it): the direct path lists them as psutil does, and the disk facts agree with df's."""
    need(os.geteuid() == 0, "root, to mount in a private mount namespace")
    need(shutil.which("unshare") is not None and shutil.which("mount") is not None, "unshare and mount")
    spaced = tmp_path / "a dir with spaces"
    odd = tmp_path / "tab\there and back\\slash"
    rooted = tmp_path / "rooted"
    for d in (spaced, odd, rooted):
        d.mkdir()
    script = (
        'mount -t tmpfs -o size=8m "my src" "$1" && mount -t tmpfs -o size=4m none "$2" && '
        'mount -t tmpfs -o size=4m /dev/root "$3" && exec "$4" -c "$5" "$1"'
    )
    out = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(spaced), str(odd),
         str(rooted), sys.executable, _IN_NAMESPACE],
        capture_output=True, text=True, timeout=60,
    )
    need(out.returncode == 0 or "unshare failed" not in out.stderr, f"a mount namespace: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["ours"] == got["psutil"]
    mounts = {m: (dev, fs) for dev, m, fs in got["ours"]}
    assert mounts[str(spaced)] == ("my src", "tmpfs")
    assert mounts[str(odd)] == ("", "tmpfs")
    assert mounts[str(rooted)][0] not in ("/dev/root", ""), mounts[str(rooted)]
    native, shell = got["facts"]["True"], got["facts"]["False"]
    assert (native["mount"], native["device"], native["fstype"]) == (str(spaced), "my src", "tmpfs")
    for key in ("mount", "device", "fstype", "total_gb", "free_gb", "used_percent", "inodes_free_percent"):
        assert native[key] == shell[key], key
    assert native["total_gb"] == 0.01  # 8 MiB


# ===========================================================================================================
# port: recorded outputs
# ===========================================================================================================
PORT_CASES = {
    # file: (params, listening, addresses, process, pid, bindable, bind_error)
    "centos7-sshd-22": ({"port": 22}, True, ["0.0.0.0:22", "[::]:22"], "sshd", 1123, False, "in-use"),
    "kylin-nginx-80-nonroot": ({"port": 80}, True, ["0.0.0.0:80"], None, None, False, "permission"),
    "kylin-nginx-80-root": ({"port": 80}, True, ["0.0.0.0:80"], "nginx", 2201, False, "in-use"),
    "openeuler-free-8080": ({"port": 8080}, False, [], None, None, True, None),
    "ubuntu-timewait-8443": ({"port": 8443}, False, [], None, None, False, "in-use"),
    "anolis-java-8080-addr": (
        {"port": 8080, "address": "10.0.0.12"},
        True,
        ["[::]:8080"],
        "java",
        40231,
        False,
        "in-use",
    ),
    "rhel9-redis-loopback-6379": (
        {"port": 6379, "address": "10.0.0.31"},
        False,
        ["127.0.0.1:6379"],
        None,
        None,
        True,
        None,
    ),
    "rhel9-redis-other-address-6379": (
        {"port": 6379, "address": "10.0.0.31"},
        False,
        ["127.0.0.1:6379"],
        None,
        None,
        False,
        "address-not-available",
    ),
    "uos-chronyd-udp-323": (
        {"port": 323, "protocol": "udp"},
        True,
        ["127.0.0.1:323", "[::1]:323"],
        "chronyd",
        812,
        False,
        "in-use",
    ),
}


def port_data(name: str, params: PortParams) -> dict[Source, CommandResult]:
    (src,) = PortProbe().sources(params)
    return {src: ok((FIX / "port" / f"{name}.txt").read_text())}


@pytest.mark.parametrize("name", sorted(PORT_CASES))
def test_port_parse_recorded(name):
    raw, listening, addresses, process, pid, bindable, error = PORT_CASES[name]
    params = PortParams(**raw)
    f = PortProbe().parse(params, port_data(name, params))
    assert (f.listening, f.addresses, f.process, f.pid) == (listening, addresses, process, pid)
    assert (f.bindable, f.bind_error, f.bindable_checked) == (bindable, error, "inferred")
    note = PortProbe().note(params, f)
    assert note is not None and "inferred" in note["en"] and "推断" in note["zh-CN"]


def test_port_notes_explain_why():
    params = PortParams(port=80)
    f = PortProbe().parse(params, port_data("kylin-nginx-80-nonroot", params))
    assert "privileged" in PortProbe().note(params, f)["en"]
    params = PortParams(port=6379, address="10.0.0.31")
    f = PortProbe().parse(params, port_data("rhel9-redis-loopback-6379", params))
    assert "listening on 127.0.0.1:6379, but not for 10.0.0.31" in PortProbe().note(params, f)["en"]
    f = PortProbe().parse(params, port_data("rhel9-redis-other-address-6379", params))
    assert "not an address of this host" in PortProbe().note(params, f)["en"]


def test_port_the_same_listing_for_another_port_finds_nothing():
    params = PortParams(port=22)
    data = port_data("centos7-sshd-22", params)
    (src,) = PortProbe().sources(PortParams(port=2222))
    f = PortProbe().parse(PortParams(port=2222), {src: next(iter(data.values()))})
    assert not f.listening and f.addresses == [] and f.bindable


def test_port_truncated_output_is_a_probe_error():
    params = PortParams(port=22)
    (src,) = PortProbe().sources(params)
    with pytest.raises(ProbeError) as err:
        PortProbe().parse(params, {src: ok((FIX / "port" / "truncated.txt").read_text())})
    assert err.value.message["zh-CN"]


def test_port_garbage_is_a_probe_error():
    params = PortParams(port=22)
    (src,) = PortProbe().sources(params)
    with pytest.raises(ProbeError):
        PortProbe().parse(params, {src: ok("## file /proc/net/tcp\nnot a socket line\n## end\n")})


def test_port_params():
    assert PortParams(port=1).protocol == "tcp"
    assert PortParams(port=443, address="[::1]").address == "::1"
    assert PortParams(port=443, address="::ffff:10.0.0.5").address == "10.0.0.5"
    assert PortParams(port=443, address="*").address is None
    for bad in (
        {"port": 0},
        {"port": 65536},
        {"port": 80, "protocol": "sctp"},
        {"port": 80, "address": "db01"},
        {"port": 80, "extra": 1},
        {},
    ):
        with pytest.raises(ValueError):
            PortParams.model_validate(bad)


# ===========================================================================================================
# port: this machine
# ===========================================================================================================
def _comm() -> str:
    return Path("/proc/self/comm").read_text().strip() if LINUX else ""


def _free_port(family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(family, kind) as s:
        s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        return s.getsockname()[1]


@pytest.fixture
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize(
    "native", [True, False] if LINUX else [True], ids=lambda n: "native" if n else "shell"
)
def test_port_sees_our_listener(native, listener):
    f = PortProbe().collect(ctx(native), PortParams(port=listener))
    assert f.listening
    assert f.addresses == [f"127.0.0.1:{listener}"]
    assert f.pid == os.getpid()
    if LINUX:
        assert f.process == _comm()
    assert not f.bindable and f.bind_error == "in-use"
    assert f.bindable_checked == ("bind" if native else "inferred")


@pytest.mark.parametrize(
    "native", [True, False] if LINUX else [True], ids=lambda n: "native" if n else "shell"
)
def test_port_unused_port_is_free(native):
    port = _free_port()
    f = PortProbe().collect(ctx(native), PortParams(port=port))
    assert not f.listening and f.addresses == [] and f.pid is None and f.process is None
    assert f.bindable and f.bind_error is None


@pytest.mark.parametrize(
    "native", [True, False] if LINUX else [True], ids=lambda n: "native" if n else "shell"
)
def test_port_listener_on_loopback_does_not_serve_another_address(native, listener):
    f = PortProbe().collect(ctx(native), PortParams(port=listener, address="127.0.0.2"))
    assert not f.listening
    assert f.addresses == [f"127.0.0.1:{listener}"]
    assert f.bindable  # 127.0.0.2:port is a different socket address
    g = PortProbe().collect(ctx(native), PortParams(port=listener, address="127.0.0.1"))
    assert g.listening and not g.bindable


@linux_only
@pytest.mark.parametrize("native", [True, False], ids=["native", "shell"])
def test_port_address_not_on_this_host(native):
    f = PortProbe().collect(ctx(native), PortParams(port=_free_port(), address="198.51.100.77"))
    assert not f.bindable and f.bind_error == "address-not-available"


@pytest.mark.parametrize(
    "native", [True, False] if LINUX else [True], ids=lambda n: "native" if n else "shell"
)
def test_port_udp(native):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        f = PortProbe().collect(ctx(native), PortParams(port=port, protocol="udp"))
        assert f.listening and f.pid == os.getpid() and not f.bindable
        tcp = PortProbe().collect(ctx(native), PortParams(port=port, protocol="tcp"))
        assert not tcp.listening  # a UDP socket does not listen on TCP


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
@pytest.mark.parametrize(
    "native", [True, False] if LINUX else [True], ids=lambda n: "native" if n else "shell"
)
def test_port_dual_stack_listener(native):
    with socket.socket(socket.AF_INET6) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", 0))
        s.listen()
        port = s.getsockname()[1]
        f = PortProbe().collect(ctx(native), PortParams(port=port, address="127.0.0.1"))
        assert f.listening and f.addresses == [f"[::]:{port}"] and f.pid == os.getpid()
        assert not f.bindable and f.bind_error == "in-use"


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
def test_port_ipv6_loopback_both_paths_agree():
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        s.listen()
        port = s.getsockname()[1]
        native, shell = both(PortProbe(), PortParams(port=port))
    assert native.addresses == shell.addresses == [f"[::1]:{port}"]


@linux_only
def test_port_both_paths_agree(listener):
    for params in (
        PortParams(port=listener),
        PortParams(port=_free_port()),
        PortParams(port=listener, address="127.0.0.1"),
    ):
        native, shell = both(PortProbe(), params)
        a, b = native.model_dump(), shell.model_dump()
        assert a.pop("bindable_checked") == "bind" and b.pop("bindable_checked") == "inferred"
        assert a == b


def test_port_bound_but_not_listening_is_not_bindable_natively():
    """Only a real bind sees a socket that is bound but does not listen (the shell path documents this)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        f = PortProbe().collect(ctx(True), PortParams(port=port))
        assert not f.listening and not f.bindable and f.bind_error == "in-use"
    assert try_bind(port, "tcp", None) is None  # closed again: free


@linux_only
def test_port_privileged_port_for_an_unprivileged_user():
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip() or 1024)
    if start <= 1:
        pytest.skip("this kernel lets every user bind every port")
    # import first: the interpreter's own files may not be readable by the unprivileged user
    code = (
        "import os; from envprobe.probes.port import try_bind; os.setgid(65534); os.setuid(65534);"
        "print(try_bind(1, 'tcp', '127.0.0.1'), try_bind(1, 'tcp', None))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["permission", "permission"]
    assert try_bind(1, "tcp", "127.0.0.1") is None  # root may: the same call, another answer


_AS_NOBODY = """
import json, os, sys
from envprobe.probes.base import ProbeContext
from envprobe.probes.port import PortParams, PortProbe
from envprobe.transport.local import LocalTransport
os.setgid(65534); os.setuid(65534)
out = {}
for native in (True, False):
    ctx = ProbeContext(LocalTransport(), "local", 20, prefer_native=native)
    for port in (1, int(sys.argv[1])):
        f = PortProbe().collect(ctx, PortParams(port=port, address="127.0.0.1"))
        out[f"{native}-{port}"] = f.model_dump()
print(json.dumps(out))
"""


@linux_only
def test_port_as_an_unprivileged_user(listener):
    """As nobody: port 1 is privileged on both paths, and root's listener is seen without its pid."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    import json

    out = subprocess.run(
        [sys.executable, "-c", _AS_NOBODY, str(listener)], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    for native in ("True", "False"):
        low = got[f"{native}-1"]
        assert low["bind_error"] == "permission" and not low["bindable"], low
        theirs = got[f"{native}-{listener}"]
        assert theirs["listening"] and theirs["addresses"] == [f"127.0.0.1:{listener}"], theirs
        assert theirs["pid"] is None and theirs["process"] is None, theirs
        assert theirs["pid"] != os.getpid()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net")
@pytest.mark.parametrize("netlink", [True, False], ids=["netlink", "proc-net"])
def test_linux_socket_table_agrees_with_psutil(netlink, monkeypatch):
    """Listeners (all the port facts use) as psutil sees them, by both Linux sources."""
    import psutil

    from envprobe.probes import port as portmod

    if not netlink:
        monkeypatch.setattr(portmod, "_netlink_listeners", lambda port, kind: None)
    else:
        assert portmod._netlink_listeners(1, "tcp") is not None, "sock_diag netlink should answer here"
    tcp = socket.socket(socket.AF_INET6)
    tcp.bind(("::1", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        compared = 0
        for kind in ("tcp", "udp"):
            conns = portmod._all_connections(kind)
            for port in {c.laddr.port for c, _ in conns if c.laddr}:
                ours = sorted((str(s.ip), s.pid) for s in portmod._linux_sockets(port, kind) if s.listening)
                theirs = sorted(
                    (c.laddr.ip, pid) for c, pid in conns if c.laddr and c.laddr.port == port
                    and (c.status == psutil.CONN_LISTEN if kind == "tcp" else not c.raddr)
                )
                assert ours == theirs, (kind, port)
                compared += 1
        assert compared >= 2
        mine = [s for s in portmod._linux_sockets(tcp.getsockname()[1], "tcp") if s.listening]
        assert [(str(s.ip), s.pid) for s in mine] == [("::1", os.getpid())]
        assert portmod._linux_sockets(udp.getsockname()[1], "udp")[0].pid == os.getpid()
    finally:
        tcp.close()
        udp.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_linux_process_names_agree_with_psutil(tmp_path):
    """The port probe names a socket's owner from /proc/PID/stat as psutil.Process(pid).name() does, for every
    process here, including names the kernel cut at 15 characters (completed from argv[0], or not when argv[0]
    says something else)."""
    import psutil

    sleep = shutil.which("sleep")
    assert sleep
    long_name = tmp_path / "a-rather-long-program-name"
    long_name.symlink_to(sleep)
    kids = [
        subprocess.Popen([str(long_name), "600"], stdin=subprocess.DEVNULL),  # comm "a-rather-long-p"
        subprocess.Popen(["renamed-argv0", "600"], executable=str(long_name), stdin=subprocess.DEVNULL),
        subprocess.Popen([sleep, "600"], stdin=subprocess.DEVNULL),
    ]
    try:
        compared = 0
        for pid in [k.pid for k in kids] + psutil.pids():
            try:
                theirs = psutil.Process(pid).name()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            ours = _linux_name(pid)
            if ours is None and not psutil.pid_exists(pid):
                continue  # gone in between
            assert ours == theirs, pid
            compared += 1
        assert compared > len(kids)
        assert _linux_name(kids[0].pid) == "a-rather-long-program-name"
        assert _linux_name(kids[1].pid) == "a-rather-long-p"
        assert _linux_name(kids[2].pid) == "sleep"
        assert _linux_name(2**22 + 1) is None  # above pid_max's ceiling: no such process
    finally:
        for k in kids:
            k.kill()
            k.wait()
