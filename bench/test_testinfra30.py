"""The peer side of the local-scan benchmark: bench/checklist30.yaml as a pytest-testinfra suite.

One test per check, same facts, same thresholds, written the way a testinfra user would write them: each test
asks the host for what it needs (no cache shared between tests). Run by bench/local_scan.py as

    .venv/bin/python -m pytest bench/test_testinfra30.py --hosts=local:// -p no:cacheprovider -q -c /dev/null

with the machine-specific values in BENCH_* environment variables (see local_scan.py); collection fails if one
is missing. Not collected by the project's own pytest run (testpaths is tests/).
"""

from __future__ import annotations

import os
import re

GIB_KB = 2**20  # KiB per GiB

HOSTNAME = os.environ["BENCH_HOSTNAME"]
KERNEL = os.environ["BENCH_KERNEL"]
ARCH = os.environ["BENCH_ARCH"]
LISTEN_PORT = os.environ["BENCH_LISTEN_PORT"]
FREE_PORT = os.environ["BENCH_FREE_PORT"]
MARKER = os.environ["BENCH_MARKER"]
HASH_FILE = os.environ["BENCH_HASH_FILE"]
HASH_SHA256 = os.environ["BENCH_HASH_SHA256"]
WORK_DIR = os.environ["BENCH_WORK_DIR"]


def meminfo_kb(host) -> dict[str, int]:
    out = host.check_output("cat /proc/meminfo")
    info = {}
    for line in out.splitlines():
        key, _, rest = line.partition(":")
        info[key.strip()] = int(rest.split()[0])
    return info


def df(host, path: str, inodes: bool = False) -> list[str]:
    """The data line of `df -P -k PATH` (or `df -P -i PATH`), split."""
    out = host.check_output("df -P %s %s", "-i" if inodes else "-k", path)
    return out.splitlines()[-1].split()


def free_gb(host, path: str) -> float:
    return int(df(host, path)[3]) / GIB_KB


def used_percent(host, path: str) -> float:
    fields = df(host, path)
    used, avail = int(fields[2]), int(fields[3])
    return used * 100.0 / (used + avail)


# --- os (4)
def test_os_family(host):
    assert host.system_info.type == "linux"


def test_os_kernel(host):
    assert host.check_output("uname -r") == KERNEL


def test_os_arch(host):
    assert host.system_info.arch == ARCH


def test_os_hostname(host):
    assert host.check_output("uname -n") == HOSTNAME


# --- cpu (1)
def test_cpu_logical(host):
    assert int(host.check_output("nproc")) >= 1


# --- memory (3)
def test_mem_total(host):
    assert meminfo_kb(host)["MemTotal"] / GIB_KB >= 1


def test_mem_available(host):
    info = meminfo_kb(host)
    assert info["MemAvailable"] / GIB_KB >= 0.5
    assert (info["MemTotal"] - info["MemAvailable"]) * 100.0 / info["MemTotal"] < 95


def test_mem_swap(host):
    info = meminfo_kb(host)
    assert info["SwapTotal"] / GIB_KB >= 0
    assert info["SwapFree"] / GIB_KB >= 0


# --- disk (5)
def test_disk_root_free(host):
    assert free_gb(host, "/") >= 1


def test_disk_root_used(host):
    assert used_percent(host, "/") < 95


def test_disk_tmp_free(host):
    assert free_gb(host, "/tmp") >= 0.5


def test_disk_tmp_used(host):
    assert used_percent(host, "/tmp") < 95


def test_disk_root_inodes(host):
    fields = df(host, "/", inodes=True)
    inodes, ifree = int(fields[1]), int(fields[3])
    assert ifree * 100.0 / inodes >= 5


# --- port (2)
def test_port_listening(host):
    assert host.socket(f"tcp://127.0.0.1:{LISTEN_PORT}").is_listening


def test_port_free(host):
    # testinfra sees sockets through ss/netstat; it has no bind test, so "bindable" is "nobody listens".
    assert not host.socket(f"tcp://127.0.0.1:{FREE_PORT}").is_listening


# --- process (2)
def test_proc_marker(host):
    pattern = re.compile("^" + re.escape(MARKER) + " ")
    matches = [p for p in host.process.filter() if pattern.search(p.args)]
    assert len(matches) == 1


def test_proc_sleep(host):
    assert len(host.process.filter(comm="sleep")) >= 1


# --- file (5)
def test_file_os_release(host):
    assert host.file("/etc/os-release").exists


def test_file_passwd(host):
    passwd = host.file("/etc/passwd")
    assert passwd.is_file
    assert passwd.mode == 0o644
    assert passwd.user == "root"


def test_file_hostname(host):
    f = host.file("/etc/hostname")
    assert f.exists
    assert f.contains(HOSTNAME)


def test_file_tmp(host):
    tmp = host.file("/tmp")
    assert tmp.is_directory
    assert tmp.mode == 0o1777


def test_file_sha256(host):
    assert host.file(HASH_FILE).sha256sum == HASH_SHA256


# --- command (8)
def test_cmd_uname(host):
    cmd = host.run("uname -r")
    assert cmd.rc == 0
    assert cmd.stdout.rstrip("\n") == KERNEL


def test_cmd_id(host):
    cmd = host.run("id -u")
    assert cmd.rc == 0
    assert re.search(r"^[0-9]+$", cmd.stdout.rstrip("\n"))


def test_cmd_test_tmp(host):
    assert host.run("test -d /tmp").rc == 0


def test_cmd_getent_root(host):
    cmd = host.run("getent passwd root")
    assert cmd.rc == 0
    assert re.search(r"^root:[^:]*:0:0:", cmd.stdout)


def test_cmd_loadavg(host):
    cmd = host.run("cat /proc/loadavg")
    assert cmd.rc == 0
    assert re.search(r"^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+/[0-9]+ [0-9]+$", cmd.stdout.rstrip("\n"))


def test_cmd_nproc(host):
    cmd = host.run("nproc")
    assert cmd.rc == 0
    assert re.search(r"^[1-9][0-9]*$", cmd.stdout.rstrip("\n"))


def test_cmd_date(host):
    cmd = host.run("date +%s")
    assert cmd.rc == 0
    assert re.search(r"^[0-9]{10,}$", cmd.stdout.rstrip("\n"))


def test_cmd_work_dir_writable(host):
    assert host.run("test -w %s", WORK_DIR).rc == 0
