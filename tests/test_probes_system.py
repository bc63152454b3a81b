"""The os, cpu and memory probes and the host summary.

Three kinds of test:
* the pure parsers on outputs recorded from Debian 12, Ubuntu 22.04, CentOS 7, RHEL 9, Kylin V10
  (Kunpeng 920), UOS 20 (Phytium), openEuler 22.03 (Zhaoxin), Anolis 8 (Hygon) and a Loongson host
  (tests/fixtures/os, cpu, memory);
* both collection paths on this machine against independent sources (os.cpu_count, /proc/meminfo read here,
  platform.node …), including changes the test itself causes (busy CPUs, allocated memory);
* both paths side by side: they must agree.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from envprobe.facts import host_summary
from envprobe.probes.base import NoParams, ProbeContext, ProbeError
from envprobe.probes.disk import DiskProbe
from envprobe.probes.port import PortProbe
from envprobe.probes.system import (
    CPUINFO,
    LOADAVG,
    MEMINFO,
    OS_RELEASE,
    OS_RELEASE_USR,
    REDHAT_RELEASE,
    TOPOLOGY,
    UNAME,
    CpuParams,
    CpuProbe,
    MemoryProbe,
    OsProbe,
    stat_source,
)
from envprobe.transport.base import CommandResult, Source
from envprobe.transport.local import LocalTransport

FIX = Path(__file__).resolve().parent / "fixtures"
LINUX = sys.platform.startswith("linux")
linux_only = pytest.mark.skipif(not LINUX, reason="the shell path reads /proc: Linux only")

MISSING = CommandResult(1, "", "cat: No such file or directory", 0.0)


def replay(probe, params, files: dict[Source, Path | None]) -> dict[Source, CommandResult]:
    """What a host would return for the probe's sources, from recorded files (absent file: a failed read)."""
    wanted = probe.sources(params)
    unknown = set(files) - set(wanted)
    assert not unknown, f"fixture maps sources the probe no longer asks for: {unknown}"
    out = {}
    for src in wanted:
        path = files.get(src)
        if path is not None and path.exists():
            out[src] = CommandResult(0, path.read_text(encoding="utf-8"), "", 1.0)
        else:
            out[src] = MISSING
    return out


def ctx(native: bool) -> ProbeContext:
    return ProbeContext(LocalTransport(), "local", 20, prefer_native=native)


def both(probe, params) -> tuple:
    """Collect with the native path, then the shell path (fresh transports: nothing cached)."""
    return probe.collect(ctx(True), params), probe.collect(ctx(False), params)


# ===========================================================================================================
# registration and documentation
# ===========================================================================================================
PROBES = [OsProbe, CpuProbe, MemoryProbe, DiskProbe, PortProbe]


def test_entry_points_name_these_classes():
    eps = {ep.name: ep.value for ep in entry_points(group="envprobe.probes")}
    for cls in PROBES:
        assert eps[cls.name] == f"{cls.__module__}:{cls.__name__}"


@pytest.mark.parametrize("cls", PROBES, ids=lambda c: c.name)
def test_probe_has_a_native_path(cls):
    assert cls.has_native


def test_params_refuse_unknown_keys():
    with pytest.raises(ValueError):
        CpuParams.model_validate({"sample": 100})
    with pytest.raises(ValueError):
        CpuParams.model_validate({"sample_ms": -1})
    with pytest.raises(ValueError):
        NoParams.model_validate({"path": "/"})


# ===========================================================================================================
# os
# ===========================================================================================================
OS_CASES = {
    # case: (id, id_like, version, version_full, name_zh, arch, hostname, kernel)
    "debian12": (
        "debian",
        "",
        "12",
        "12 (bookworm)",
        "Debian GNU/Linux",
        "x86_64",
        "app01",
        "6.1.0-18-amd64",
    ),
    "ubuntu2204": (
        "ubuntu",
        "debian",
        "22.04",
        "22.04.3 LTS (Jammy Jellyfish)",
        "Ubuntu",
        "x86_64",
        "mes-app02",
        "5.15.0-91-generic",
    ),
    "centos7": (
        "centos",
        "rhel fedora",
        "7",
        "7 (Core)",
        "CentOS Linux",
        "x86_64",
        "db01",
        "3.10.0-1160.el7.x86_64",
    ),
    "rhel9": (
        "rhel",
        "fedora",
        "9.2",
        "9.2 (Plow)",
        "Red Hat Enterprise Linux",
        "x86_64",
        "rhel9-app",
        "5.14.0-284.11.1.el9_2.x86_64",
    ),
    "kylin-v10-arm64": (
        "kylin",
        "",
        "V10",
        "V10 (Sword)",
        "银河麒麟",
        "aarch64",
        "kylin-app01",
        "4.19.90-24.4.v2101.ky10.aarch64",
    ),
    "uos20": (
        "uos",
        "",
        "20",
        "20",
        "统信 UOS",
        "aarch64",
        "uos-srv01",
        "4.19.90-2106.3.0.0095.up2.uel20.aarch64",
    ),
    "openeuler2203": (
        "openEuler",
        "",
        "22.03",
        "22.03 (LTS-SP1)",
        "欧拉 openEuler",
        "x86_64",
        "euler-db",
        "5.10.0-136.12.0.86.oe2203sp1.x86_64",
    ),
    "anolis8": (
        "anolis",
        "rhel fedora centos",
        "8.8",
        "8.8",
        "龙蜥 Anolis",
        "x86_64",
        "anolis-web",
        "5.10.134-13.an8.x86_64",
    ),
    "kylin-v10-desktop": (
        "kylin",
        "debian",
        "v10",
        "银河麒麟桌面操作系统V10 (SP1)",
        "银河麒麟",
        "x86_64",
        "kylin-pc",
        "5.4.18-85-generic",
    ),
    "tencentos3": (
        "tencentos",
        "rhel fedora centos",
        "3.1",
        "3.1 (Final)",
        "腾讯 TencentOS",
        "x86_64",
        "ts-app03",
        "5.4.119-19.0009.28",
    ),
    "centos6": (
        "centos",
        "rhel",
        "6.10",
        "6.10 (Final)",
        "CentOS",
        "x86_64",
        "old-db",
        "2.6.32-754.35.1.el6.x86_64",
    ),
}


def os_data(case: str) -> dict[Source, CommandResult]:
    d = FIX / "os" / case
    return replay(
        OsProbe(),
        NoParams(),
        {
            OS_RELEASE: d / "os-release",
            OS_RELEASE_USR: None,
            REDHAT_RELEASE: d / "redhat-release",
            UNAME: d / "uname",
        },
    )


@pytest.mark.parametrize("case", sorted(OS_CASES))
def test_os_parse_recorded(case):
    f = OsProbe().parse(NoParams(), os_data(case))
    os_id, like, version, full, zh, arch, host, kernel = OS_CASES[case]
    assert (f.family, f.id, f.id_like, f.version, f.version_full) == ("linux", os_id, like, version, full)
    assert (f.name_zh, f.arch, f.hostname, f.kernel) == (zh, arch, host, kernel)
    assert f.pretty_name and f.name


def test_os_parse_details():
    kylin = OsProbe().parse(NoParams(), os_data("kylin-v10-arm64"))
    assert kylin.pretty_name == "Kylin Linux Advanced Server V10 (Sword)"
    assert kylin.name == "Kylin Linux Advanced Server"
    assert kylin.name_zh != kylin.name  # the Chinese name is not a copy
    debian = OsProbe().parse(NoParams(), os_data("debian12"))
    assert debian.name_zh == debian.name == "Debian GNU/Linux"  # no Chinese name: the same as name
    assert debian.id != "ubuntu"


def test_os_falls_back_to_usr_lib_os_release():
    d = FIX / "os" / "openeuler2203"
    data = replay(OsProbe(), NoParams(), {OS_RELEASE_USR: d / "os-release", UNAME: d / "uname"})
    assert OsProbe().parse(NoParams(), data).id == "openEuler"


def test_os_without_any_release_file_still_reports_the_kernel():
    data = replay(OsProbe(), NoParams(), {UNAME: FIX / "os" / "debian12" / "uname"})
    f = OsProbe().parse(NoParams(), data)
    assert (f.id, f.family, f.arch, f.version) == ("linux", "linux", "x86_64", "")


@pytest.mark.parametrize("uname", ["", "Linux\n", "Linux a b c d e\n"])
def test_os_bad_uname_is_a_probe_error(uname):
    data = os_data("debian12")
    data[UNAME] = CommandResult(0, uname, "", 1.0)
    with pytest.raises(ProbeError) as err:
        OsProbe().parse(NoParams(), data)
    assert err.value.message["en"] and err.value.message["zh-CN"]


def test_os_failed_uname_is_a_probe_error():
    data = os_data("debian12")
    data[UNAME] = CommandResult(127, "", "sh: uname: not found", 1.0)
    with pytest.raises(ProbeError, match="uname"):
        OsProbe().parse(NoParams(), data)


def _read_os_release() -> dict[str, str]:
    """An independent reading of /etc/os-release (no shlex, no envprobe code)."""
    out = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        if os.path.exists(path):
            for line in Path(path).read_text().splitlines():
                if "=" in line and not line.startswith("#"):
                    k, v = line.split("=", 1)
                    out[k] = v.strip().strip('"').strip("'")
            break
    return out


def test_os_native_matches_independent_sources():
    f = OsProbe().collect(ctx(True), NoParams())
    assert f.hostname == platform.node()
    assert f.hostname != platform.node() + "x"
    assert f.family == platform.system().lower()
    if LINUX:
        rel = _read_os_release()
        assert f.id == rel.get("ID")
        assert f.version == rel.get("VERSION_ID", "")
        assert f.kernel == os.uname().release
        assert f.arch == os.uname().machine


@linux_only
def test_os_both_paths_agree():
    native, shell = both(OsProbe(), NoParams())
    assert native.model_dump() == shell.model_dump()


# ===========================================================================================================
# cpu
# ===========================================================================================================
CPU_CASES = {
    # case: (logical, physical, sockets, vendor, vendor_zh, model, arch, load_1m, usage_percent)
    "debian12": (
        4,
        2,
        1,
        "Intel",
        "Intel",
        "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz",
        "x86_64",
        0.52,
        20.0,
    ),
    "ubuntu2204": (8, 4, 1, "AMD", "AMD", "AMD EPYC 7763 64-Core Processor", "x86_64", 3.12, 62.2),
    "centos7": (4, 4, 2, "Intel", "Intel", "Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz", "x86_64", 0.0, 1.2),
    "rhel9": (
        16,
        8,
        1,
        "Intel",
        "Intel",
        "Intel(R) Xeon(R) Platinum 8358 CPU @ 2.60GHz",
        "x86_64",
        12.4,
        91.7,
    ),
    "kylin-v10-arm64": (96, 96, 2, "HiSilicon", "鲲鹏", "Kunpeng-920", "aarch64", 1.05, 6.4),
    "uos20": (64, 64, 1, "Phytium", "飞腾", "FTC662", "aarch64", 0.31, 3.1),
    "openeuler2203": (8, 8, 1, "Zhaoxin", "兆芯", "ZHAOXIN KaiSheng KH-37800D@2.7GHz", "x86_64", 7.98, 97.5),
    "anolis8": (8, 4, 1, "Hygon", "海光", "Hygon C86 7285 32-core Processor", "x86_64", 0.88, 27.8),
    "kylin-v10-loongarch64": (4, 4, 1, "Loongson", "龙芯", "Loongson-3A5000", "loongarch64", 0.15, 7.5),
}


def cpu_data(case: str, params: CpuParams, topology: bool = True) -> dict[Source, CommandResult]:
    d = FIX / "cpu" / case
    files = {
        CPUINFO: d / "cpuinfo",
        LOADAVG: d / "loadavg",
        UNAME: d / "uname",
        TOPOLOGY: d / "topology" if topology else None,
    }
    if params.sample_ms:
        files[stat_source(params.sample_ms)] = d / "stat"
    return replay(CpuProbe(), params, files)


@pytest.mark.parametrize("case", sorted(CPU_CASES))
def test_cpu_parse_recorded(case):
    params = CpuParams()
    f = CpuProbe().parse(params, cpu_data(case, params))
    logical, physical, sockets, vendor, vendor_zh, model, arch, load1, usage = CPU_CASES[case]
    assert (f.logical, f.physical, f.sockets) == (logical, physical, sockets)
    assert (f.vendor, f.vendor_zh, f.model, f.arch) == (vendor, vendor_zh, model, arch)
    assert f.load_1m == load1 and f.load_5m is not None and f.load_15m is not None
    assert f.usage_percent == usage


@pytest.mark.parametrize("case", ["debian12", "ubuntu2204", "centos7", "rhel9", "anolis8", "openeuler2203"])
def test_cpu_counts_without_sysfs_topology_come_from_cpuinfo(case):
    params = CpuParams(sample_ms=0)
    f = CpuProbe().parse(params, cpu_data(case, params, topology=False))
    assert (f.logical, f.physical, f.sockets) == CPU_CASES[case][:3]
    assert f.usage_percent is None


def test_cpu_kunpeng_without_topology_knows_no_cores():
    params = CpuParams(sample_ms=0)
    f = CpuProbe().parse(params, cpu_data("kylin-v10-arm64", params, topology=False))
    assert f.logical == 96 and f.physical is None and f.sockets is None


def test_cpu_zhaoxin_is_not_via():
    params = CpuParams(sample_ms=0)
    f = CpuProbe().parse(params, cpu_data("openeuler2203", params))
    assert f.vendor == "Zhaoxin" and f.vendor != "VIA"


@pytest.mark.parametrize(
    "bad",
    [
        "cpu  1 2 3 4 5 6 7 8 0 0\n",  # one sample
        "cpu  1 2 3 x\ncpu  1 2 3 4\n",  # not numbers
        "garbage\n",
    ],
)
def test_cpu_bad_stat_is_a_probe_error(bad):
    params = CpuParams()
    data = cpu_data("debian12", params)
    data[stat_source(params.sample_ms)] = CommandResult(0, bad, "", 1.0)
    with pytest.raises(ProbeError):
        CpuProbe().parse(params, data)


def test_cpu_empty_cpuinfo_is_a_probe_error():
    params = CpuParams(sample_ms=0)
    data = cpu_data("debian12", params)
    data[CPUINFO] = CommandResult(0, "", "", 1.0)
    with pytest.raises(ProbeError, match="cpuinfo"):
        CpuProbe().parse(params, data)


def test_cpu_stat_source_samples_twice_in_one_command():
    src = stat_source(250)
    assert src.kind == "command" and "sleep 0.25" in src.target and src.target.count("/proc/stat") == 2
    assert stat_source(1000).target != src.target  # another interval is another source
    assert not any("stat" in s.target for s in CpuProbe().sources(CpuParams(sample_ms=0)))


def _cpuinfo_vendor_id() -> str | None:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("vendor_id"):
            return line.split(":", 1)[1].strip()
    return None


def test_cpu_native_matches_independent_sources():
    f = CpuProbe().collect(ctx(True), CpuParams(sample_ms=100))
    assert f.logical == os.cpu_count()
    assert f.logical != (os.cpu_count() or 0) + 1
    assert f.physical is None or 1 <= f.physical <= f.logical
    assert f.usage_percent is not None and 0.0 <= f.usage_percent <= 100.0
    if hasattr(os, "getloadavg"):
        assert f.load_1m is not None and abs(f.load_1m - os.getloadavg()[0]) < 1.0
    if LINUX:
        vid = _cpuinfo_vendor_id()
        known = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}
        if vid in known:
            assert f.vendor == known[vid]


@linux_only
def test_cpu_shell_path_matches_independent_sources():
    f = CpuProbe().collect(ctx(False), CpuParams(sample_ms=100))
    assert f.logical == os.cpu_count()
    assert f.arch == os.uname().machine
    assert f.usage_percent is not None and 0.0 <= f.usage_percent <= 100.0


@linux_only
def test_cpu_both_paths_agree():
    params = CpuParams(sample_ms=200)
    native, shell = both(CpuProbe(), params)
    for field in ("logical", "physical", "sockets", "model", "vendor", "vendor_zh", "arch"):
        assert getattr(native, field) == getattr(shell, field), field
    assert abs(native.load_1m - shell.load_1m) < 1.0
    assert native.usage_percent is not None and shell.usage_percent is not None
    assert abs(native.usage_percent - shell.usage_percent) < 40


def test_cpu_without_sampling_has_no_usage():
    for native in (True, False) if LINUX else (True,):
        assert CpuProbe().collect(ctx(native), CpuParams(sample_ms=0)).usage_percent is None


@linux_only
def test_cpu_usage_sees_busy_cpus():
    """Keep every CPU busy with child processes: both paths must see usage above half."""
    n = os.cpu_count() or 1
    kids = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.3)
        native, shell = both(CpuProbe(), CpuParams(sample_ms=400))
    finally:
        for k in kids:
            k.kill()
            k.wait()
    assert native.usage_percent is not None and native.usage_percent > 50, native.usage_percent
    assert shell.usage_percent is not None and shell.usage_percent > 50, shell.usage_percent


@linux_only
def test_cpu_native_linux_matches_psutil():
    """The Linux native path reads /proc and sysfs itself; psutil (not used by it) must see the same CPU."""
    import psutil

    before = psutil.getloadavg()
    f = CpuProbe().collect(ctx(True), CpuParams(sample_ms=0))
    after = psutil.getloadavg()
    assert f.logical == psutil.cpu_count(logical=True)
    assert f.physical == psutil.cpu_count(logical=False)
    # the kernel updates the load averages every 5 s: one of the two readings around the probe is its own
    assert (f.load_1m, f.load_5m, f.load_15m) in {tuple(round(x, 2) for x in before),
                                                  tuple(round(x, 2) for x in after)}


@linux_only
def test_cpu_usage_linux_matches_psutil_over_the_same_interval():
    """Usage from two /proc/stat readings, against psutil.cpu_percent over (nearly) the same interval: psutil's
    baseline is taken right before the probe's first reading and its answer right after the second, so the
    two can differ only by the clock ticks of those few microseconds. Busy CPUs make the figure non-trivial."""
    import psutil

    from envprobe.probes.system import _linux_cpu_percent

    kids = [subprocess.Popen([sys.executable, "-c", "while True: pass"])]
    try:
        time.sleep(0.2)
        psutil.cpu_percent(interval=None)  # baseline
        ours = _linux_cpu_percent(0.5)
        theirs = psutil.cpu_percent(interval=None)
    finally:
        for k in kids:
            k.kill()
            k.wait()
    assert 0.0 <= ours <= 100.0 and ours > 100 / (2 * (os.cpu_count() or 1)) - 10, ours
    assert abs(ours - theirs) < 5, (ours, theirs)
    assert ours == round(ours, 1)


# ===========================================================================================================
# memory
# ===========================================================================================================
MEM_CASES = {
    # case: (total_gb, available_gb, used_percent, swap_total_gb, swap_free_gb)
    "debian12": (15.61, 13.33, 14.6, 0.95, 0.95),
    "ubuntu2204": (31.34, 6.61, 78.9, 2.0, 0.98),
    "centos7": (7.64, 0.39, 94.8, 8.0, 0.49),
    "rhel9": (251.43, 221.25, 12.0, 4.0, 4.0),
    "kylin-v10-arm64": (254.84, 231.85, 9.0, 0.0, 0.0),
    "uos20": (125.33, 113.78, 9.2, 8.0, 8.0),
    "openeuler2203": (15.15, 0.89, 94.1, 0.0, 0.0),
    "anolis8": (62.5, 55.5, 11.2, 0.0, 0.0),
    # kernel 2.6.32: no MemAvailable, so free + buffers + cached
    "centos6-legacy": (3.74, 2.43, 35.1, 3.94, 3.94),
}


def mem_data(case: str) -> dict[Source, CommandResult]:
    return replay(MemoryProbe(), NoParams(), {MEMINFO: FIX / "memory" / case / "meminfo"})


@pytest.mark.parametrize("case", sorted(MEM_CASES))
def test_memory_parse_recorded(case):
    f = MemoryProbe().parse(NoParams(), mem_data(case))
    assert (f.total_gb, f.available_gb, f.used_percent, f.swap_total_gb, f.swap_free_gb) == MEM_CASES[case]


def test_memory_legacy_estimate_is_not_memfree():
    f = MemoryProbe().parse(NoParams(), mem_data("centos6-legacy"))
    assert f.available_gb != round(812004 / 2**20, 2)  # MemFree alone would be 0.77


@pytest.mark.parametrize("text", ["", "MemFree: 100 kB\n", "garbage"])
def test_memory_bad_meminfo_is_a_probe_error(text):
    with pytest.raises(ProbeError, match="MemTotal"):
        MemoryProbe().parse(NoParams(), {MEMINFO: CommandResult(0, text, "", 1.0)})


def test_memory_unreadable_meminfo_is_a_probe_error():
    with pytest.raises(ProbeError) as err:
        MemoryProbe().parse(NoParams(), {MEMINFO: MISSING})
    assert "/proc/meminfo" in err.value.message["en"] and "/proc/meminfo" in err.value.message["zh-CN"]


def _meminfo_kib() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, rest = line.split(":", 1)
        out[key] = int(rest.split()[0])
    return out


@linux_only
@pytest.mark.parametrize("native", [True, False], ids=["native", "shell"])
def test_memory_matches_proc_meminfo(native):
    f = MemoryProbe().collect(ctx(native), NoParams())
    kib = _meminfo_kib()
    assert f.total_gb == round(kib["MemTotal"] / 2**20, 2)
    assert f.total_gb != round(kib["MemTotal"] / 1e6, 2)  # GiB, not GB
    assert abs(f.available_gb - kib["MemAvailable"] / 2**20) < 0.5
    assert f.swap_total_gb == round(kib["SwapTotal"] / 2**20, 2)
    assert 0 <= f.used_percent <= 100


@linux_only
def test_memory_both_paths_agree():
    native, shell = both(MemoryProbe(), NoParams())
    assert native.total_gb == shell.total_gb
    assert native.swap_total_gb == shell.swap_total_gb
    assert abs(native.available_gb - shell.available_gb) < 0.5
    assert abs(native.used_percent - shell.used_percent) < 3


@linux_only
def test_memory_native_linux_matches_psutil():
    """The Linux native path parses /proc/meminfo itself; psutil (not used by it) must give the same figures."""
    import psutil

    f = MemoryProbe().collect(ctx(True), NoParams())
    vm, sw = psutil.virtual_memory(), psutil.swap_memory()
    assert f.total_gb == round(vm.total / 2**30, 2)
    assert f.swap_total_gb == round(sw.total / 2**30, 2)
    assert abs(f.swap_free_gb - sw.free / 2**30) < 0.05
    assert abs(f.available_gb - vm.available / 2**30) < 0.1  # memory moves between the two readings
    assert abs(f.used_percent - round(100 * (vm.total - vm.available) / vm.total, 1)) < 1


@linux_only
def test_memory_installed_sources_are_read_once_per_scan(monkeypatch):
    """The memory blocks are hundreds of sysfs files: read once per transport (scan), shared by every memory
    check and the host summary, and the same answer as a fresh read."""
    from envprobe.probes import system

    calls = []
    real = system._native_memory_blocks

    def counting() -> float | None:
        calls.append(1)
        return real()

    monkeypatch.setattr(system, "_native_memory_blocks", counting)
    tr = LocalTransport()
    shared = [MemoryProbe().collect(ProbeContext(tr, "local", 20, prefer_native=True), NoParams())
              for _ in range(3)]
    summary = host_summary(tr)
    assert len(calls) == 1
    fresh = MemoryProbe().collect(ctx(True), NoParams())
    assert len(calls) == 2
    for f in shared:
        assert (f.installed_gb, f.installed_source) == (fresh.installed_gb, fresh.installed_source)
    assert summary["memory"]["installed_gb"] == fresh.installed_gb


@linux_only
def test_memory_sees_memory_this_test_takes():
    """Take 1 GiB (every page touched): available must drop on both paths."""
    need_gib = 1
    before_n, before_s = both(MemoryProbe(), NoParams())
    if before_n.available_gb < need_gib + 1:
        pytest.skip("not enough free memory for this test")
    block = bytearray(need_gib << 30)
    block[::4096] = b"\x01" * len(range(0, len(block), 4096))
    try:
        after_n, after_s = both(MemoryProbe(), NoParams())
    finally:
        del block
    assert before_n.available_gb - after_n.available_gb > 0.6, (before_n, after_n)
    assert before_s.available_gb - after_s.available_gb > 0.6, (before_s, after_s)


# ===========================================================================================================
# host summary
# ===========================================================================================================
def test_host_summary_native_is_fast_and_complete():
    host_summary(LocalTransport())  # warm imports
    best = min(_timed(lambda: host_summary(LocalTransport())) for _ in range(3))
    assert best < 0.05, f"host summary took {best * 1000:.1f} ms"
    s = host_summary(LocalTransport())
    assert set(s) == {"os", "cpu", "memory", "disks"}
    assert s["os"]["hostname"] == platform.node()
    assert s["cpu"]["logical"] == os.cpu_count() and s["cpu"]["usage_percent"] is None
    assert s["memory"]["total_gb"] > 0
    assert s["disks"], "no disk found"
    for d in s["disks"]:
        assert set(d) == {"mount", "fstype", "device", "total_gb", "free_gb", "used_percent"}
        assert d["fstype"] not in ("tmpfs", "devtmpfs", "proc", "sysfs", "nsfs", "squashfs")
        assert not d["mount"].startswith("/run/netns")
    if LINUX:
        assert "/" in {d["mount"] for d in s["disks"]}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@linux_only
def test_host_summary_both_paths_agree():
    native = host_summary(LocalTransport(), prefer_native=True)
    shell = host_summary(LocalTransport(), prefer_native=False)
    assert native["os"] == shell["os"]
    for key in ("logical", "physical", "sockets", "model", "vendor", "arch"):
        assert native["cpu"][key] == shell["cpu"][key]
    assert native["memory"]["total_gb"] == shell["memory"]["total_gb"]
    by_mount = {d["mount"]: d for d in shell["disks"]}
    assert [d["mount"] for d in native["disks"]] == [d["mount"] for d in shell["disks"]]
    for d in native["disks"]:
        other = by_mount[d["mount"]]
        assert (d["device"], d["fstype"], d["total_gb"]) == (
            other["device"],
            other["fstype"],
            other["total_gb"],
        )
        assert abs(d["free_gb"] - other["free_gb"]) < 0.5


@linux_only
def test_host_summary_shell_path_fetches_once():
    """The shell path asks the transport for every source in one batch, then serves the probes from it."""

    class Counting(LocalTransport):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[int] = []

        def _fetch_uncached(self, sources, timeout):
            self.batches.append(len(sources))
            return super()._fetch_uncached(sources, timeout)

    tr = Counting()
    s = host_summary(tr, prefer_native=False)
    assert s["os"] and s["cpu"] and s["memory"]
    assert len(tr.batches) == 1 and tr.batches[0] >= 6


# ===========================================================================================================
# memory.installed_gb (memory as sold): the rounding table, the DMI parsers, this machine
# ===========================================================================================================
from envprobe.probes.system import (  # noqa: E402 - kept with the tests that use them
    COMMON_MEMORY_SIZES_GB,
    DMI_MEMORY,
    installed_memory,
    parse_dmi_output,
    parse_dmi_table,
    parse_memory_blocks,
    round_installed_gb,
)

DMI_FIX = FIX / "hostsettings" / "memory"


@pytest.mark.parametrize("reported,sold", [
    (15.6, 16), (7.7, 8), (31.2, 32), (62.8, 64), (23.4, 24), (23.54, 24), (3.74, 4), (0.48, 0.5), (1.9, 2),
    (5.6, 6), (11.5, 12), (46.9, 48), (94.2, 96), (125.33, 128), (188.6, 192), (251.43, 256), (377.0, 384),
    (503.5, 512), (754.9, 768), (1007.6, 1024), (16.0, 16), (16.005, 16),
])
def test_installed_gb_rounds_up_to_a_common_module_size(reported, sold):
    assert round_installed_gb(reported) == sold


def test_common_sizes_table():
    assert COMMON_MEMORY_SIZES_GB[:20] == (0.25, 0.5, 1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384,
                                           512, 768)
    assert list(COMMON_MEMORY_SIZES_GB) == sorted(set(COMMON_MEMORY_SIZES_GB))


@pytest.mark.parametrize("case,mib", [
    ("dmi-qemu-16g.b64", [16384]),
    ("dmi-server-4x32g.b64", [32768] * 4),  # 32 GiB modules: Size 0x7FFF, the size in Extended Size
    ("dmi-server-4x32g.hex", [32768] * 4),  # the same table through od (no base64 on the host)
    ("dmi-kib-granular.b64", [512, 512, 16]),  # bit 15 of Size: KiB
    ("dmidecode-kylin-v10-kunpeng.txt", [32768] * 4),  # dmidecode 3.2: "32 GB", empty slots skipped
    ("dmidecode-centos7.txt", [16384, 16384]),  # "16384 MB"
    ("dmidecode-ubuntu2204-vmware.txt", [8192, 8192]),
])
def test_dmi_memory_devices_recorded(case, mib):
    assert parse_dmi_output((DMI_FIX / case).read_text()) == mib


def test_dmi_unreadable_or_broken_gives_none():
    assert parse_dmi_output((DMI_FIX / "dmidecode-nonroot.txt").read_text()) is None
    assert parse_dmi_output("") is None
    assert parse_dmi_output("@@dmi-base64\n!!!not base64!!!\n") is None
    assert parse_dmi_table(b"\x11\x02") == []  # a structure shorter than its header: stop, no loop


def test_installed_memory_prefers_dmi_unless_it_is_below_the_reported_total():
    assert installed_memory(125.33, [32768] * 4) == (128.0, "dmi")
    assert installed_memory(23.54, None) == (24.0, "rounded")
    # a hypervisor listing less than the guest sees: the firmware table cannot be right, round instead
    assert installed_memory(23.54, [8192]) == (24.0, "rounded")


@pytest.mark.parametrize("dmi,installed,source", [
    ("dmidecode-kylin-v10-kunpeng.txt", 128.0, "dmi"),
    ("dmidecode-nonroot.txt", 128.0, "rounded"),
    (None, 128.0, "rounded"),
])
def test_memory_parse_with_dmi_source(dmi, installed, source):
    data = {MEMINFO: CommandResult(0, (FIX / "memory" / "uos20" / "meminfo").read_text(), "", 1.0)}
    if dmi:
        data[DMI_MEMORY] = CommandResult(0, (DMI_FIX / dmi).read_text(), "", 1.0)
    f = MemoryProbe().parse(NoParams(), data)
    assert (f.total_gb, f.installed_gb, f.installed_source) == (125.33, installed, source)


@pytest.mark.parametrize("case", sorted(MEM_CASES))
def test_memory_recorded_hosts_have_an_installed_size(case):
    f = MemoryProbe().parse(NoParams(), mem_data(case))
    assert f.installed_source == "rounded" and f.installed_gb >= f.total_gb
    assert f.installed_gb == round_installed_gb(f.total_gb)


@linux_only
@pytest.mark.parametrize("native", [True, False], ids=["native", "shell"])
def test_memory_installed_here(native):
    f = MemoryProbe().collect(ctx(native), NoParams())
    kib = _meminfo_kib()
    readable = os.access("/sys/firmware/dmi/tables/DMI", os.R_OK)
    if readable:
        with open("/sys/firmware/dmi/tables/DMI", "rb") as fh:
            mib = parse_dmi_table(fh.read())
        assert (f.installed_gb, f.installed_source) == installed_memory(round(kib["MemTotal"] / 2**20, 2), mib)
    elif os.path.exists("/sys/devices/system/memory/block_size_bytes"):  # no firmware table (this VM): the
        # kernel's online memory blocks, counted here with ls and read independently of the probe
        base = "/sys/devices/system/memory"
        size = int(Path(f"{base}/block_size_bytes").read_text(), 16)
        online = subprocess.run(f"cat {base}/memory*/online", shell=True, capture_output=True,
                                text=True).stdout.split().count("1")
        assert f.installed_source == "memory-blocks"
        assert f.installed_gb == installed_memory(round(kib["MemTotal"] / 2**20, 2), None, size * online / 2**30)[0]
        assert abs(f.installed_gb - size * online / 2**30) <= 0.02 * f.installed_gb
    else:  # neither: the reported total, rounded up
        assert f.installed_source == "rounded"
        assert f.installed_gb == round_installed_gb(round(kib["MemTotal"] / 2**20, 2))
    assert f.installed_gb >= f.total_gb


@pytest.mark.parametrize("text, total, installed, source", [
    ("8000000 192", 23.54, 24.0, "memory-blocks"),     # this VM: 192 × 128 MiB
    ("8000000 129", 15.6, 16.0, "memory-blocks"),      # a firmware hole: 16.125 snaps to 16
    ("8000000 112", 13.7, 14.0, "memory-blocks"),      # a 14 GB VM stays 14, rounding would say 16
    ("80000000 3", 5.8, 6.0, "memory-blocks"),         # 2 GiB blocks
    ("8000000 8", 15.6, 16.0, "rounded"),              # fewer blocks than the kernel reports: not trusted
    ("garbage", 15.6, 16.0, "rounded"),
])
def test_memory_blocks(text, total, installed, source):
    assert installed_memory(total, None, parse_memory_blocks(text)) == (installed, source)


@linux_only
def test_memory_installed_both_paths_agree():
    native, shell = both(MemoryProbe(), NoParams())
    assert (native.installed_gb, native.installed_source) == (shell.installed_gb, shell.installed_source)
