"""``os``, ``cpu``, ``memory``: what the host is and what it has.

Each probe has two paths that must agree:

* the **shell path** for any POSIX Linux host: the files and commands in :meth:`sources` (``/etc/os-release``,
  ``/proc/cpuinfo``, ``/proc/meminfo``, ``uname``, sysfs, all read with ``LC_ALL=C`` through ``sh`` and
  coreutils, no Python on the target) turned into facts by a pure :meth:`parse`;
* the **native path** for the machine envprobe runs on (Linux, Windows or macOS). On Linux it reads the same
  files directly (``/proc/cpuinfo``, ``/proc/stat``, ``/proc/meminfo``, sysfs) through the shell path's
  parsers, with ``os.cpu_count`` and ``os.getloadavg``: psutil is not even imported, which saves its import
  time on every scan. On Windows and macOS it uses psutil (imported when needed) and the standard library;
  the CPU model comes from ``sysctl`` on macOS, from the registry on Windows.

Units: ``_gb`` is GiB (2^30 bytes, as ``free -g`` counts), ``_percent`` is 0-100.
"""

from __future__ import annotations

import glob
import os
import platform
import re
import shlex
import sys
import time
from typing import Any, Literal

from envprobe.model import t
from envprobe.probes.base import Facts, NoParams, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model
from envprobe.transport.base import CommandResult, Source

GIB = 1 << 30


# -- helpers shared by the system probes (disk.py and port.py import them too) ------------------------------
def gib(n_bytes: float) -> float:
    """Bytes → GiB, two decimals."""
    return round(n_bytes / GIB, 2)


def percent(part: float, whole: float) -> float:
    """``part`` of ``whole`` in percent, one decimal; 0 when ``whole`` is 0."""
    return round(100.0 * part / whole, 1) if whole > 0 else 0.0


def _detail(res: CommandResult) -> str:
    lines = [ln.strip() for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
    return lines[0][:200] if lines else f"exit code {res.rc}"


def need_text(data: dict[Source, CommandResult], src: Source, label: str | None = None) -> str:
    """The output of a source, or a :class:`ProbeError` saying why it is missing."""
    what = label or src.target
    res = data.get(src)
    if res is None:
        raise ProbeError(t(f"no data was fetched for {what}", f"未取得 {what} 的数据"))
    if res.timed_out:
        raise ProbeError(t(f"reading {what} on the host did not finish in time",
                           f"在主机上读取 {what} 超时"))
    if res.rc != 0:
        d = _detail(res)
        if src.kind == "file":
            raise ProbeError(t(f"cannot read {what} on the host ({d})", f"无法读取主机上的 {what}（{d}）"))
        raise ProbeError(t(f"{what} failed on the host: {d}", f"主机上执行 {what} 失败：{d}"))
    return res.stdout


def maybe_text(data: dict[Source, CommandResult], src: Source) -> str | None:
    """The output of an optional source, or None when it is missing or failed."""
    res = data.get(src)
    if res is None or res.timed_out or res.rc != 0:
        return None
    return res.stdout


def bad_input(what: str, exc: Exception | str) -> ProbeError:
    """Unexpected content in a source: a clean, bilingual error instead of a traceback."""
    return ProbeError(t(f"unexpected content in {what}: {exc}", f"{what} 的内容无法识别：{exc}"))


_ARCH = {
    "amd64": "x86_64", "x64": "x86_64", "x86-64": "x86_64", "em64t": "x86_64",
    "arm64": "aarch64", "armv8": "aarch64",
    "mips64el": "mips64", "loong64": "loongarch64", "sw64": "sw_64",
}


def norm_arch(machine: str) -> str:
    """One spelling per architecture: ``AMD64``/``amd64`` → ``x86_64``, ``arm64`` → ``aarch64``."""
    m = machine.strip().lower()
    return _ARCH.get(m, m)


UNAME = Source.command("uname -snrm")


def parse_uname(text: str) -> tuple[str, str, str, str]:
    """``uname -snrm`` → (kernel name, node name, kernel release, machine)."""
    parts = text.split()
    if len(parts) != 4:
        raise bad_input("the output of uname -snrm", f"expected 4 words, got {text.strip()[:120]!r}")
    return parts[0], parts[1], parts[2], parts[3]


# ===========================================================================================================
# os
# ===========================================================================================================
#: Chinese display names, by lower-cased os-release ID, as people at sites say them.
NAMES_ZH = {
    "kylin": "银河麒麟",
    "neokylin": "中标麒麟",
    "kylinsecos": "麒麟信安",
    "uos": "统信 UOS",
    "deepin": "深度 Deepin",
    "openeuler": "欧拉 openEuler",
    "euleros": "华为 EulerOS",
    "hce": "华为云 HCE",
    "anolis": "龙蜥 Anolis",
    "alinux": "阿里云 Alibaba Cloud Linux",
    "tencentos": "腾讯 TencentOS",
    "tlinux": "腾讯 TencentOS",
    "opencloudos": "OpenCloudOS",
    "ctyunos": "天翼云 CTyunOS",
    "bclinux": "移动云 BC-Linux",
}


def name_zh_for(os_id: str, name: str) -> str:
    return NAMES_ZH.get(os_id.lower(), name)


def parse_os_release(text: str) -> dict[str, str]:
    """``/etc/os-release`` (shell-style ``KEY=value`` lines, quoted or not) → dict."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        value = value.strip()
        if value[:1] in ("'", '"'):
            try:
                words = shlex.split(value, posix=True)
                value = words[0] if len(words) == 1 else " ".join(words)
            except ValueError:
                value = value.strip("'\"")
        out[key] = value
    return out


class OsFacts(Facts):
    family: str = Field(description="operating-system family: linux, windows or darwin")
    id: str = Field(description="os-release ID, e.g. debian, ubuntu, centos, rhel, kylin, uos, openEuler, "
                                "anolis, tencentos (windows / macos on those systems)")
    id_like: str = Field(description="os-release ID_LIKE, space-separated (e.g. 'rhel fedora'); empty when "
                                     "the distribution declares none (Kylin server)")
    name: str = Field(description="os-release NAME, e.g. 'Kylin Linux Advanced Server'")
    version: str = Field(description="os-release VERSION_ID, e.g. 22.03, 9.2, V10")
    version_full: str = Field(description="os-release VERSION with its codename or service pack, "
                                          "e.g. '22.03 (LTS-SP1)', 'V10 (Sword)'")
    pretty_name: str = Field(description="os-release PRETTY_NAME, e.g. 'openEuler 22.03 (LTS-SP1)'")
    name_zh: str = Field(description="the name as people in China say it when known (银河麒麟, 统信 UOS, "
                                     "欧拉 openEuler, 龙蜥 Anolis …), else the same as name")
    kernel: str = Field(description="kernel release (uname -r), e.g. 4.19.90-24.4.v2101.ky10.aarch64")
    arch: str = Field(description="machine architecture: x86_64, aarch64, loongarch64, mips64, sw_64 …")
    hostname: str = Field(description="host name (uname -n)")


def os_facts(release: dict[str, str], system: str, node: str, kernel: str, machine: str) -> OsFacts:
    os_id = release.get("ID") or system.lower()
    name = release.get("NAME") or system
    version = release.get("VERSION_ID", "")
    return OsFacts(
        family=system.lower(),
        id=os_id,
        id_like=" ".join(release.get("ID_LIKE", "").split()),
        name=name,
        version=version,
        version_full=release.get("VERSION") or version,
        pretty_name=release.get("PRETTY_NAME") or f"{name} {version}".strip(),
        name_zh=name_zh_for(os_id, name),
        kernel=kernel,
        arch=norm_arch(machine),
        hostname=node,
    )


OS_RELEASE = Source.file("/etc/os-release")
OS_RELEASE_USR = Source.file("/usr/lib/os-release")
REDHAT_RELEASE = Source.file("/etc/redhat-release")  # CentOS/RHEL 6 have no os-release
_RH_ID = {"centos": "centos", "red": "rhel", "neokylin": "neokylin", "oracle": "ol", "rocky": "rocky"}


def parse_redhat_release(text: str) -> dict[str, str]:
    """``CentOS release 6.10 (Final)`` → os-release style keys."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    m = re.match(r"^(?P<name>.+?)\s+release\s+(?P<ver>[\w.]+)(?:\s*\((?P<code>[^)]*)\))?", line)
    if not m:
        return {}
    name, ver = m["name"], m["ver"]
    os_id = _RH_ID.get(name.split()[0].lower(), name.split()[0].lower())
    return {"ID": os_id, "ID_LIKE": "rhel" if os_id != "rhel" else "", "NAME": name, "VERSION_ID": ver,
            "VERSION": f"{ver} ({m['code']})" if m["code"] else ver, "PRETTY_NAME": line}


class OsProbe(Probe):
    name = "os"
    summary = t("Operating system: distribution, version, kernel, architecture, host name",
                "操作系统：发行版、版本、内核、架构、主机名")
    Params = NoParams
    Facts = OsFacts
    requires = t("no privileges; reads /etc/os-release and runs uname",
                 "无需特权；读取 /etc/os-release 并运行 uname")
    example = """\
- id: os-supported
  title: {zh-CN: 操作系统版本, en: Operating system}
  probe: os
  expect: {id: "in [kylin, uos, openEuler, anolis, centos, rhel]", arch: "in [x86_64, aarch64]"}
"""
    advice = {
        "id": t("install the software on a supported distribution, or ask the vendor to certify this one",
                "请在支持的发行版上部署，或请厂商确认是否支持当前发行版"),
        "version": t("upgrade the operating system to a supported release (see the product's support matrix)",
                     "请将操作系统升级到支持的版本（参见产品的兼容性列表）"),
        "arch": t("use the build of the software for this architecture, or a host of a supported one",
                  "请使用对应该架构的安装包，或改用受支持架构的主机"),
        "kernel": t("upgrade the kernel to the required release and reboot",
                    "请将内核升级到要求的版本并重启"),
        "hostname": t("set the host name with hostnamectl set-hostname NAME (and update /etc/hosts)",
                      "用 hostnamectl set-hostname 名称 设置主机名（并同步 /etc/hosts）"),
        "*": t("compare with the product's supported platforms", "请对照产品支持的平台列表"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [OS_RELEASE, OS_RELEASE_USR, REDHAT_RELEASE, UNAME]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> OsFacts:
        system, node, kernel, machine = parse_uname(need_text(data, UNAME, "uname -snrm"))
        text = maybe_text(data, OS_RELEASE)
        if text is None:
            text = maybe_text(data, OS_RELEASE_USR)
        if text is not None:
            release = parse_os_release(text)
        else:
            release = parse_redhat_release(maybe_text(data, REDHAT_RELEASE) or "")
        return os_facts(release, system, node, kernel, machine)

    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> OsFacts:
        u = platform.uname()
        system = u.system or sys.platform
        release: dict[str, str] = {}
        kernel = u.release
        if sys.platform.startswith("linux"):
            readers = (("/etc/os-release", parse_os_release), ("/usr/lib/os-release", parse_os_release),
                       ("/etc/redhat-release", parse_redhat_release))
            for path, parser in readers:
                try:
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        release = parser(fh.read())
                    break
                except OSError:
                    continue
        elif sys.platform == "win32":
            build = u.version.split(".")
            rel = u.release
            if rel == "10" and len(build) >= 3 and build[2].isdigit() and int(build[2]) >= 22000:
                rel = "11"  # Python < 3.12 reports Windows 11 as "10"
            edition = platform.win32_edition() or ""
            release = {"ID": "windows", "NAME": "Windows", "VERSION_ID": u.version,
                       "VERSION": f"{rel} ({u.version})", "PRETTY_NAME": f"Windows {rel} {edition}".strip()}
            kernel = u.version
        elif sys.platform == "darwin":
            ver = platform.mac_ver()[0]
            release = {"ID": "macos", "NAME": "macOS", "VERSION_ID": ver,
                       "PRETTY_NAME": f"macOS {ver}".strip()}
        return os_facts(release, system, u.node, kernel, u.machine)


# ===========================================================================================================
# cpu
# ===========================================================================================================
_X86_VENDORS = {
    "genuineintel": "Intel",
    "authenticamd": "AMD",
    "hygongenuine": "Hygon",
    "centaurhauls": "VIA",  # Zhaoxin parts also say CentaurHauls: the model name decides (below)
    "shanghai": "Zhaoxin",
}
_ARM_IMPLEMENTERS = {
    0x41: "ARM", 0x42: "Broadcom", 0x43: "Cavium", 0x46: "Fujitsu", 0x48: "HiSilicon", 0x4E: "NVIDIA",
    0x50: "Ampere", 0x51: "Qualcomm", 0x61: "Apple", 0x70: "Phytium", 0xC0: "Ampere",
}
#: (implementer, part) → model, named as lscpu names them.
_ARM_PARTS = {
    (0x48, 0xD01): "Kunpeng-920",
    (0x48, 0xD02): "TaiShan-v120",
    (0x70, 0x660): "FTC660",
    (0x70, 0x661): "FTC661",
    (0x70, 0x662): "FTC662",
    (0x70, 0x663): "FTC663",
    (0x70, 0x664): "FTC664",
    (0x41, 0xD03): "Cortex-A53",
    (0x41, 0xD05): "Cortex-A55",
    (0x41, 0xD07): "Cortex-A57",
    (0x41, 0xD08): "Cortex-A72",
    (0x41, 0xD0B): "Cortex-A76",
    (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD40): "Neoverse-V1",
    (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4F): "Neoverse-V2",
    (0xC0, 0xAC3): "Ampere-1",
}
#: Chinese display names of vendors, as people say them.
VENDORS_ZH = {
    "HiSilicon": "鲲鹏", "Phytium": "飞腾", "Hygon": "海光",
    "Zhaoxin": "兆芯", "Loongson": "龙芯", "Sunway": "申威",
}


def _int0(v: str | None) -> int | None:
    if not v:
        return None
    try:
        return int(v, 0)
    except ValueError:
        return None


def parse_cpuinfo(text: str) -> tuple[int, dict[str, str], list[dict[str, str]]]:
    """``/proc/cpuinfo`` → (logical CPU count, first value of every key, one dict per processor block).

    Keys are lower-cased (``Model Name`` on LoongArch, ``model name`` on x86). Old arm64 kernels list every
    ``processor : N`` line in one block; the count still comes out right.
    """
    count = 0
    first: dict[str, str] = {}
    blocks: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                blocks.append(cur)
                cur = {}
            continue
        if ":" not in line:
            continue
        k, _, v = line.partition(":")
        key, value = k.strip().lower(), v.strip()
        if key == "processor" and value.isdigit():
            count += 1
        first.setdefault(key, value)
        cur.setdefault(key, value)
    if cur:
        blocks.append(cur)
    return count, first, [b for b in blocks if b.get("processor", "").isdigit()]


def cpu_identity(first: dict[str, str], arch: str) -> tuple[str, str]:
    """(vendor, model) from cpuinfo keys, vendors normalised (Intel, AMD, Hygon, Zhaoxin, HiSilicon …)."""
    model = first.get("model name") or first.get("cpu model") or ""
    model = " ".join(model.split())
    low = model.lower()
    vendor = ""
    vid = first.get("vendor_id", "").strip()
    if vid:
        vendor = _X86_VENDORS.get(vid.lower(), vid)
        if vendor == "VIA" and "zhaoxin" in low:
            vendor = "Zhaoxin"
    impl = _int0(first.get("cpu implementer"))
    if impl is not None:
        vendor = _ARM_IMPLEMENTERS.get(impl, f"0x{impl:02x}")
        part = _int0(first.get("cpu part"))
        if not model and part is not None:
            model = _ARM_PARTS.get((impl, part), f"{vendor} part 0x{part:03x}")
    if "loongson" in low or "loongson" in first.get("system type", "").lower() or arch == "loongarch64":
        vendor = "Loongson"
    elif arch == "sw_64" and not vendor:
        vendor = "Sunway"
    if not vendor:
        for needle, v in (("intel", "Intel"), ("amd", "AMD"), ("hygon", "Hygon"), ("zhaoxin", "Zhaoxin"),
                          ("kunpeng", "HiSilicon"), ("phytium", "Phytium")):
            if needle in low:
                vendor = v
                break
    return vendor, model


_TOPO_HEADER = re.compile(r"^==> cpu(\d+)/topology/(\w+) <==$")


def parse_topology(text: str) -> dict[str, dict[str, str]]:
    """``head -n 1 cpu*/topology/{physical_package_id,thread_siblings_list}`` → {file kind: {cpu: value}}."""
    out: dict[str, dict[str, str]] = {}
    cpu = kind = None
    for raw in text.splitlines():
        line = raw.strip()
        m = _TOPO_HEADER.match(line)
        if m:
            cpu, kind = m.group(1), m.group(2)
            continue
        if line and cpu is not None and kind is not None:
            out.setdefault(kind, {})[cpu] = line
            cpu = kind = None
    return out


def count_topology(
    topo: dict[str, dict[str, str]], blocks: list[dict[str, str]]
) -> tuple[int | None, int | None]:
    """(sockets, physical cores) from sysfs topology, else from cpuinfo's physical id / core id."""
    sockets = physical = None
    if topo.get("physical_package_id"):
        sockets = len(set(topo["physical_package_id"].values()))
    if topo.get("thread_siblings_list"):
        physical = len(set(topo["thread_siblings_list"].values()))
    pkg_key = "physical id" if any("physical id" in b for b in blocks) else "package"
    if sockets is None and any(pkg_key in b for b in blocks):
        sockets = len({b.get(pkg_key) for b in blocks})
    core_key = "core id" if any("core id" in b for b in blocks) else "core"
    if physical is None and any(core_key in b for b in blocks):
        physical = len({(b.get(pkg_key), b.get(core_key)) for b in blocks})
    return sockets, physical


def parse_loadavg(text: str) -> tuple[float, float, float]:
    parts = text.split()
    try:
        return float(parts[0]), float(parts[1]), float(parts[2])
    except (IndexError, ValueError) as exc:
        raise bad_input("/proc/loadavg", f"{text.strip()[:80]!r}") from exc


def parse_stat_sample(text: str) -> float:
    """Two ``cpu`` lines of ``/proc/stat`` taken a moment apart → busy percent over that moment."""
    rows: list[list[int]] = []
    for line in text.splitlines():
        if line.startswith("cpu "):
            try:
                rows.append([int(x) for x in line.split()[1:]])
            except ValueError as exc:
                raise bad_input("/proc/stat", line[:80]) from exc
    if len(rows) != 2 or len(rows[0]) < 4 or len(rows[0]) != len(rows[1]):
        raise bad_input("/proc/stat", f"expected two 'cpu' lines, got {len(rows)}")
    # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already in user.
    a, b = rows[0][:8], rows[1][:8]
    total = sum(b) - sum(a)
    idle = (b[3] - a[3]) + ((b[4] - a[4]) if len(b) > 4 else 0)
    if total <= 0:
        return 0.0
    return min(100.0, max(0.0, percent(total - idle, total)))


class CpuParams(Model):
    sample_ms: int = Field(default=200, ge=0, le=10000,
                           description="how long usage_percent is sampled, in milliseconds "
                                       "(0: do not sample; usage_percent is then null)")


class CpuFacts(Facts):
    logical: int = Field(description="logical CPUs online (hardware threads), as nproc counts them")
    physical: int | None = Field(description="physical cores (null when the host does not say)")
    sockets: int | None = Field(description="CPU packages (sockets); null when unknown (Windows)")
    model: str = Field(description="model name, e.g. 'Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz', "
                                   "'Kunpeng-920', 'FTC663', 'Hygon C86 7285 32-core Processor'")
    vendor: str = Field(description="vendor: Intel, AMD, Hygon, Zhaoxin, HiSilicon (Kunpeng), Phytium, "
                                    "Loongson, ARM, Apple …")
    vendor_zh: str = Field(description="vendor as people in China say it (鲲鹏, 飞腾, 海光, 兆芯, 龙芯), "
                                       "else the same as vendor")
    arch: str = Field(description="machine architecture: x86_64, aarch64, loongarch64, mips64, sw_64 …")
    load_1m: float | None = Field(description="load average over 1 minute (null on Windows)")
    load_5m: float | None = Field(description="load average over 5 minutes (null on Windows)")
    load_15m: float | None = Field(description="load average over 15 minutes (null on Windows)")
    usage_percent: float | None = Field(description="CPU busy time over sample_ms, 0-100 across all CPUs "
                                                    "(null when not sampled)")


def stat_source(sample_ms: int) -> Source:
    """Both /proc/stat samples in one command, so one round trip measures the interval on the host."""
    secs = f"{sample_ms / 1000:.3f}".rstrip("0").rstrip(".")
    return Source.command(f"head -n 1 /proc/stat; sleep {secs} 2>/dev/null || sleep 1; head -n 1 /proc/stat")


CPUINFO = Source.file("/proc/cpuinfo")
LOADAVG = Source.file("/proc/loadavg")
TOPOLOGY = Source.command(
    "cd /sys/devices/system/cpu && "
    "head -n 1 cpu[0-9]*/topology/physical_package_id cpu[0-9]*/topology/thread_siblings_list"
)


def _linux_topology() -> dict[str, dict[str, str]]:
    """The sysfs topology of this machine, in the shape :func:`parse_topology` returns."""
    out: dict[str, dict[str, str]] = {}
    for kind in ("physical_package_id", "thread_siblings_list"):
        for path in glob.glob(f"/sys/devices/system/cpu/cpu[0-9]*/topology/{kind}"):
            cpu = path.split("/")[5][3:]
            try:
                with open(path, encoding="ascii", errors="replace") as fh:
                    out.setdefault(kind, {})[cpu] = fh.readline().strip()
            except OSError:
                continue
    return out


class CpuProbe(Probe):
    name = "cpu"
    summary = t("CPU: cores, sockets, model, vendor (Kunpeng, Phytium, Hygon …), load and usage",
                "CPU：核数、路数、型号、厂商（鲲鹏、飞腾、海光等）、负载与使用率")
    Params = CpuParams
    Facts = CpuFacts
    requires = t("no privileges; reads /proc/cpuinfo, /proc/loadavg, /proc/stat and sysfs (head, sleep)",
                 "无需特权；读取 /proc/cpuinfo、/proc/loadavg、/proc/stat 与 sysfs（head、sleep）")
    example = """\
- id: cpu
  title: {zh-CN: CPU 核数与负载, en: CPU cores and load}
  probe: cpu
  with: {sample_ms: 500}
  expect: {logical: ">= 8", usage_percent: "< 80"}
"""
    advice = {
        "logical": t("give the host more vCPUs (or move to a larger host) before installing",
                     "请在安装前为主机增加 vCPU（或换用更大规格的主机）"),
        "physical": t("the product counts physical cores: use a host with more cores",
                      "产品按物理核计算：请使用核数更多的主机"),
        "usage_percent": t("the host is busy: find the top processes "
                           "(top, ps -eo pid,pcpu,comm --sort=-pcpu) and stop or move them",
                           "主机 CPU 繁忙：用 top 或 ps -eo pid,pcpu,comm --sort=-pcpu "
                           "找出占用高的进程并处理"),
        "load_1m": t("the load is high: check for busy or blocked processes (top, vmstat 1)",
                     "负载偏高：用 top、vmstat 1 检查繁忙或阻塞的进程"),
        "load_5m": t("the load is high: check for busy or blocked processes (top, vmstat 1)",
                     "负载偏高：用 top、vmstat 1 检查繁忙或阻塞的进程"),
        "load_15m": t("the load is high: check for busy or blocked processes (top, vmstat 1)",
                      "负载偏高：用 top、vmstat 1 检查繁忙或阻塞的进程"),
        "vendor": t("use the build of the software certified for this CPU, or a host with a supported CPU",
                    "请使用针对该 CPU 认证的安装包，或换用受支持 CPU 的主机"),
        "arch": t("use the build of the software for this architecture", "请使用对应该架构的安装包"),
        "*": t("compare with the product's hardware requirements", "请对照产品的硬件要求"),
    }

    def sources(self, params: Any) -> list[Source]:
        srcs = [CPUINFO, LOADAVG, TOPOLOGY, UNAME]
        if params.sample_ms > 0:
            srcs.append(stat_source(params.sample_ms))
        return srcs

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> CpuFacts:
        arch = norm_arch(parse_uname(need_text(data, UNAME, "uname -snrm"))[3])
        logical, first, blocks = parse_cpuinfo(need_text(data, CPUINFO))
        if logical == 0:
            raise bad_input("/proc/cpuinfo", "no 'processor' lines")
        vendor, model = cpu_identity(first, arch)
        sockets, physical = count_topology(parse_topology(maybe_text(data, TOPOLOGY) or ""), blocks)
        l1, l5, l15 = parse_loadavg(need_text(data, LOADAVG))
        usage = None
        if params.sample_ms > 0:
            sample = need_text(data, stat_source(params.sample_ms), "/proc/stat (sampled twice)")
            usage = parse_stat_sample(sample)
        return CpuFacts(
            logical=logical, physical=physical, sockets=sockets, model=model, vendor=vendor,
            vendor_zh=VENDORS_ZH.get(vendor, vendor), arch=arch,
            load_1m=l1, load_5m=l5, load_15m=l15, usage_percent=usage,
        )

    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> CpuFacts:
        arch = norm_arch(platform.machine())
        linux = sys.platform.startswith("linux")
        vendor = model = ""
        sockets: int | None = None
        physical: int | None = None
        if linux:
            # What psutil.cpu_count() gives on Linux: the CPUs online (sysconf _SC_NPROCESSORS_ONLN, not this
            # process's affinity mask), as the shell path counts them in /proc/cpuinfo. Cores and sockets as
            # the shell path counts them: sysfs topology, else cpuinfo's physical id / core id pairs.
            logical = os.cpu_count() or 0
            try:
                with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                    n_cpuinfo, first, blocks = parse_cpuinfo(fh.read())
            except OSError:
                n_cpuinfo, first, blocks = 0, {}, []
            logical = logical or n_cpuinfo
            vendor, model = cpu_identity(first, arch)
            sockets, physical = count_topology(_linux_topology(), blocks)
        else:
            import psutil

            logical = psutil.cpu_count(logical=True) or os.cpu_count() or 0
            physical = psutil.cpu_count(logical=False)
            if sys.platform == "darwin":
                vendor, model, sockets = _darwin_cpu(ctx, arch)
            elif sys.platform == "win32":
                vendor, model = _windows_cpu()
        load: tuple[float | None, float | None, float | None] = (None, None, None)
        if sys.platform != "win32" and hasattr(os, "getloadavg"):
            # what psutil.getloadavg() returns on POSIX; psutil emulates it on Windows, starting from zero:
            # not a load average, so Windows reports none
            try:
                l1, l5, l15 = os.getloadavg()
                load = (round(l1, 2), round(l5, 2), round(l15, 2))
            except OSError:
                pass
        usage = None
        if params.sample_ms > 0:
            interval = min(params.sample_ms / 1000, ctx.remaining())
            if linux:
                usage = _linux_cpu_percent(interval)
            else:
                import psutil

                usage = round(psutil.cpu_percent(interval=interval), 1)
        return CpuFacts(
            logical=logical, physical=physical, sockets=sockets, model=model, vendor=vendor,
            vendor_zh=VENDORS_ZH.get(vendor, vendor), arch=arch,
            load_1m=load[0], load_5m=load[1], load_15m=load[2], usage_percent=usage,
        )


def _proc_stat_cpu_line() -> str:
    """The first line of /proc/stat (``cpu  user nice system idle iowait irq softirq steal guest guest_nice``)."""
    try:
        with open("/proc/stat", encoding="ascii", errors="replace") as fh:
            return fh.readline()
    except OSError as exc:
        raise ProbeError(t(f"cannot read /proc/stat on this host: {exc}",
                           f"无法读取本机的 /proc/stat：{exc}")) from exc


def _linux_cpu_percent(interval: float) -> float:
    """CPU busy percent over ``interval`` seconds, all CPUs: the first /proc/stat line read before and after,
    as psutil.cpu_percent(interval) does (busy = everything but idle and iowait; guest time is inside user),
    computed by the shell path's parser."""
    before = _proc_stat_cpu_line()
    time.sleep(max(0.0, interval))
    return parse_stat_sample(before + _proc_stat_cpu_line())


def _darwin_cpu(ctx: ProbeContext, arch: str) -> tuple[str, str, int | None]:
    def sysctl(key: str) -> str:
        res = ctx.run(["sysctl", "-n", key], timeout=3)
        return res.stdout.strip() if res.ok else ""

    model = " ".join(sysctl("machdep.cpu.brand_string").split())
    vid = sysctl("machdep.cpu.vendor")
    vendor = _X86_VENDORS.get(vid.lower(), vid) if vid else ("Apple" if arch == "aarch64" else "")
    packages = sysctl("hw.packages")
    return vendor, model, int(packages) if packages.isdigit() else None


def _windows_cpu() -> tuple[str, str]:
    model = ""
    if sys.platform == "win32":
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE,
                                r"HARDWARE\DESCRIPTION\System\CentralProcessor\0") as key:
                model = " ".join(str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).split())
        except OSError:
            model = ""
    ident = platform.processor()  # "Intel64 Family 6 Model 158 Stepping 10, GenuineIntel"
    vid = ident.rsplit(",", 1)[-1].strip() if "," in ident else ""
    vendor = _X86_VENDORS.get(vid.lower(), vid)
    return vendor, model or ident


# ===========================================================================================================
# memory
# ===========================================================================================================
class MemoryFacts(Facts):
    total_gb: float = Field(description="installed memory the kernel can use, GiB (MemTotal)")
    available_gb: float = Field(description="memory available for new programs without swapping, GiB "
                                            "(MemAvailable; free + buffers + cache on kernels before 3.14)")
    used_percent: float = Field(description="(total - available) / total, percent")
    swap_total_gb: float = Field(description="swap space, GiB (0 when there is none)")
    swap_free_gb: float = Field(description="unused swap space, GiB")
    installed_gb: float = Field(description="memory as sold, GiB: the sum of the memory modules the firmware "
                                            "lists (DMI/SMBIOS type 17) when readable, else total_gb rounded "
                                            "up to the nearest common module size (a 16 GB server reporting "
                                            "15.6 reads 16)")
    installed_source: Literal["dmi", "memory-blocks", "rounded"] = Field(
        description="where installed_gb comes from: dmi (the firmware's memory device table: "
                    "/sys/firmware/dmi/tables/DMI or dmidecode -t 17, root only; on Windows "
                    "GetPhysicallyInstalledSystemMemory), memory-blocks (Linux: the kernel's online memory "
                    "blocks, /sys/devices/system/memory, no root needed; snapped to a common size within 2 %) "
                    "or rounded (total_gb rounded up, see installed_gb)")


#: Common memory sizes in GiB, as servers and VMs are sold: powers of two and 1.5 × a power of two
#: (0.5, 1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536 … 4 PiB).
COMMON_MEMORY_SIZES_GB: tuple[float, ...] = tuple(sorted(
    {0.25, 0.5} | {float(2 ** k) for k in range(0, 23)} | {float(3 * 2 ** k) for k in range(1, 22)}))


def round_installed_gb(total_gb: float) -> float:
    """The reported total rounded up to the nearest common module size (:data:`COMMON_MEMORY_SIZES_GB`).

    The kernel reports less than is installed (firmware, kernel image and crashkernel reservations take 1-4 %),
    never more; 0.01 GiB of slack absorbs the two-decimal rounding of ``total_gb``."""
    for size in COMMON_MEMORY_SIZES_GB:
        if size >= total_gb - 0.01:
            return size
    return float(total_gb)


def parse_dmi_table(blob: bytes) -> list[int]:
    """A raw SMBIOS structure table (``/sys/firmware/dmi/tables/DMI``) → the size in MiB of every populated
    memory device (type 17). Empty slots (size 0) and unknown sizes (0xFFFF) are left out.

    Type 17's Size word (offset 0x0C) counts MiB, or KiB when bit 15 is set; 0x7FFF means the size is in the
    Extended Size dword (offset 0x1C, MiB, bits 0-30; SMBIOS 2.7+, modules of 32 GiB and more)."""
    sizes: list[int] = []
    off = 0
    while off + 4 <= len(blob):
        kind, length = blob[off], blob[off + 1]
        if length < 4:  # a broken table: stop rather than loop
            break
        body = blob[off:off + length]
        if kind == 17 and len(body) >= 0x0E:
            word = int.from_bytes(body[0x0C:0x0E], "little")
            mib = 0
            if word == 0x7FFF and len(body) >= 0x20:
                mib = int.from_bytes(body[0x1C:0x20], "little") & 0x7FFFFFFF
            elif word not in (0, 0xFFFF, 0x7FFF):
                mib = (word & 0x7FFF) // 1024 if word & 0x8000 else word
            if mib > 0:
                sizes.append(mib)
        end = blob.find(b"\x00\x00", off + length)  # the string set ends with two NULs
        if end < 0 or kind == 127:  # end-of-table structure
            break
        off = end + 2
    return sizes


_DMIDECODE_SIZE = re.compile(r"^\s*Size:\s*([0-9]+)\s*(kB|KB|MB|GB|TB)\s*$", re.I)


def parse_dmidecode_memory(text: str) -> list[int]:
    """``dmidecode -t 17`` → the size in MiB of every populated memory device. ``Size: No Module Installed``
    and ``Size: Unknown`` are left out; ``Volatile Size``/``Cache Size`` lines are not module sizes."""
    sizes: list[int] = []
    in_device = False
    for line in text.splitlines():
        if line.startswith("Handle "):
            in_device = "DMI type 17," in line
            continue
        if not in_device:
            continue
        m = _DMIDECODE_SIZE.match(line)
        if m:
            n, unit = int(m.group(1)), m.group(2).upper()
            mib = {"KB": n // 1024, "MB": n, "GB": n * 1024, "TB": n * 1024 * 1024}[unit]
            if mib > 0:
                sizes.append(mib)
    return sizes


#: The firmware's memory device list, in one command: the raw SMBIOS table when readable (root), else
#: ``dmidecode -t 17`` (root; reads /dev/mem on kernels without the sysfs table). Non-root: no output.
DMI_MEMORY = Source.command(
    "f=/sys/firmware/dmi/tables/DMI; "
    "if [ -r $f ] && command -v base64 >/dev/null 2>&1 && base64 $f >/dev/null 2>&1; "
    "then echo @@dmi-base64; base64 $f; "
    "elif [ -r $f ] && command -v od >/dev/null 2>&1; then echo @@dmi-hex; od -An -v -tx1 $f; "
    "elif command -v dmidecode >/dev/null 2>&1; then echo @@dmidecode; dmidecode -t 17 2>&1; fi; true"
)


def parse_dmi_output(text: str) -> list[int] | None:
    """The output of :data:`DMI_MEMORY` → module sizes in MiB; None when the table could not be read."""
    import base64
    import binascii

    head, _, body = text.partition("\n")
    head = head.strip()
    try:
        if head == "@@dmi-base64":
            sizes = parse_dmi_table(base64.b64decode("".join(body.split()), validate=True))
        elif head == "@@dmi-hex":
            sizes = parse_dmi_table(bytes.fromhex("".join(body.split())))
        elif head == "@@dmidecode":
            sizes = parse_dmidecode_memory(body)
        else:
            return None
    except (ValueError, binascii.Error):
        return None
    return sizes or None


#: The kernel's memory blocks (Linux, no root): block size (hex bytes) and how many blocks are online. Builtins
#: only in the loop (``read``), so hundreds of blocks cost no processes.
MEMORY_BLOCKS = Source.command(
    "d=/sys/devices/system/memory; if [ -r $d/block_size_bytes ]; then read -r bs < $d/block_size_bytes; "
    "n=0; for f in $d/memory*/online; do [ -r \"$f\" ] && read -r v < \"$f\" && [ \"$v\" = 1 ] && n=$((n+1)); "
    "done; echo \"$bs $n\"; fi; true"
)


def parse_memory_blocks(text: str) -> float | None:
    """The output of :data:`MEMORY_BLOCKS` (``"8000000 192"``: hex block size, online blocks) → GiB."""
    parts = text.split()
    if len(parts) != 2:
        return None
    try:
        size, count = int(parts[0], 16), int(parts[1])
    except ValueError:
        return None
    return size * count / 2**30 if size > 0 and count > 0 else None


def _native_memory_blocks() -> float | None:
    base = "/sys/devices/system/memory"
    try:
        with open(f"{base}/block_size_bytes") as fh:
            size = int(fh.read().strip(), 16)
        count = 0
        # hundreds of one-byte files: os.open/os.read, without a Python file object each (~2x faster)
        for name in os.listdir(base):
            if name.startswith("memory") and name[6:].isdigit():
                try:
                    fd = os.open(f"{base}/{name}/online", os.O_RDONLY)
                except OSError:
                    continue
                try:
                    count += os.read(fd, 8).strip() == b"1"
                except OSError:
                    continue
                finally:
                    os.close(fd)
    except (OSError, ValueError):
        return None
    return size * count / 2**30 if size > 0 and count > 0 else None


def installed_memory(total_gb: float, dmi_mib: list[int] | None,
                     blocks_gb: float | None = None) -> tuple[float, str]:
    """(installed_gb, installed_source): the firmware's modules (DMI) when readable; else the kernel's online
    memory blocks, snapped to a common size within 2 % (a block or two of firmware holes); else the reported
    total rounded up. A figure below what the kernel reports cannot be the installed memory (some hypervisors
    list only part of a VM's memory in DMI) and is passed over."""
    if dmi_mib:
        dmi_gb = round(sum(dmi_mib) / 1024, 2)
        if dmi_gb >= total_gb - 0.01:
            return dmi_gb, "dmi"
    if blocks_gb is not None and blocks_gb >= total_gb - 0.01:
        nearest = min(COMMON_MEMORY_SIZES_GB, key=lambda size: abs(size - blocks_gb))
        if abs(nearest - blocks_gb) <= 0.02 * nearest and nearest >= total_gb - 0.01:
            return nearest, "memory-blocks"
        return round(blocks_gb, 2), "memory-blocks"
    return round_installed_gb(total_gb), "rounded"


def _native_installed_mib() -> list[int] | None:
    """Module sizes on this machine: the sysfs SMBIOS table (Linux, root) or, on Windows, the firmware's total
    from GetPhysicallyInstalledSystemMemory (as one entry)."""
    if sys.platform.startswith("linux"):
        try:
            with open("/sys/firmware/dmi/tables/DMI", "rb") as fh:
                return parse_dmi_table(fh.read()) or None
        except OSError:
            return None
    if sys.platform == "win32":
        import ctypes

        kib = ctypes.c_ulonglong(0)
        try:
            ok = ctypes.windll.kernel32.GetPhysicallyInstalledSystemMemory(ctypes.byref(kib))  # type: ignore[attr-defined]
        except (AttributeError, OSError):
            return None
        return [kib.value // 1024] if ok and kib.value else None
    return None


def _native_installed_sources() -> tuple[list[int] | None, float | None]:
    """What installed_gb is made of on this machine: the firmware's module sizes and (Linux) the kernel's online
    memory blocks. Read once per scan (the memory blocks are hundreds of sysfs files) and shared by every
    memory check and the host summary: installed memory does not change during a scan."""
    blocks = _native_memory_blocks() if sys.platform.startswith("linux") else None
    return _native_installed_mib(), blocks


def parse_meminfo(text: str, dmi_mib: list[int] | None = None, blocks_gb: float | None = None) -> MemoryFacts:
    """``/proc/meminfo`` → memory facts (values there are KiB); ``dmi_mib``: the firmware's module sizes, when
    known (see :func:`installed_memory`)."""
    kib: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if parts and parts[0].isdigit():
            kib[key.strip()] = int(parts[0])
    if not kib.get("MemTotal"):
        raise bad_input("/proc/meminfo", "no MemTotal line")
    total = kib["MemTotal"]
    if "MemAvailable" in kib:
        avail = kib["MemAvailable"]
    else:  # kernels before 3.14 (CentOS 6): the classic estimate
        avail = min(total, kib.get("MemFree", 0) + kib.get("Buffers", 0) + kib.get("Cached", 0))
    total_gb = gib(total * 1024)
    installed_gb, source = installed_memory(total_gb, dmi_mib, blocks_gb)
    return MemoryFacts(
        total_gb=total_gb,
        available_gb=gib(avail * 1024),
        used_percent=percent(total - avail, total),
        swap_total_gb=gib(kib.get("SwapTotal", 0) * 1024),
        swap_free_gb=gib(kib.get("SwapFree", 0) * 1024),
        installed_gb=installed_gb,
        installed_source=source,
    )


MEMINFO = Source.file("/proc/meminfo")


class MemoryProbe(Probe):
    name = "memory"
    summary = t("Memory: total, installed (as sold), available, used percent, swap",
                "内存：总量、标称容量（按内存条计）、可用量、使用率、交换分区")
    Params = NoParams
    Facts = MemoryFacts
    requires = t("no privileges; reads /proc/meminfo. installed_gb comes from the firmware's DMI table as root "
                 "(/sys/firmware/dmi/tables/DMI or dmidecode), else from the kernel's online memory blocks "
                 "(/sys/devices/system/memory), else it is total_gb rounded up",
                 "无需特权；读取 /proc/meminfo。installed_gb 在 root 下取自固件 DMI 表"
                 "（/sys/firmware/dmi/tables/DMI 或 dmidecode），否则取内核在线内存块总和"
                 "（/sys/devices/system/memory），再否则为 total_gb 向上取整到常见内存规格")
    example = """\
- id: memory
  title: {zh-CN: 内存容量, en: Memory}
  probe: memory
  expect: {installed_gb: ">= 16", available_gb: ">= 4"}
"""
    advice = {
        "total_gb": t("add memory to the host (or resize the VM) to meet the requirement",
                      "请为主机增加内存（或调整虚拟机规格）以满足要求"),
        "available_gb": t("free memory: find the largest processes (ps -eo pid,rss,comm --sort=-rss | head) "
                          "and stop what is not needed",
                          "请释放内存：用 ps -eo pid,rss,comm --sort=-rss | head "
                          "找出占用最多的进程，停止不需要的服务"),
        "used_percent": t("free memory: find the largest processes (ps -eo pid,rss,comm --sort=-rss | head)",
                          "请释放内存：用 ps -eo pid,rss,comm --sort=-rss | head 找出占用最多的进程"),
        "swap_total_gb": t("add swap (a swap file: fallocate, mkswap, swapon, and an /etc/fstab line) "
                           "or follow the product's advice on swap",
                           "请添加交换空间（交换文件：fallocate、mkswap、swapon，并写入 /etc/fstab），"
                           "或按产品建议配置"),
        "swap_free_gb": t("swap is nearly full: the host is short of memory; find the largest processes",
                          "交换空间将满：主机内存不足，请找出占用内存最多的进程"),
        "installed_gb": t("add memory modules to the host (or resize the VM); installed_source tells whether "
                          "the figure came from the firmware (dmi) or from rounding the reported total",
                          "请为主机增加内存条（或调整虚拟机规格）；installed_source 说明该值来自固件（dmi）"
                          "还是由系统报告的总量取整（rounded）"),
        "*": t("compare with the product's memory requirements", "请对照产品的内存要求"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [MEMINFO, DMI_MEMORY, MEMORY_BLOCKS]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> MemoryFacts:
        dmi = maybe_text(data, DMI_MEMORY)
        blocks = maybe_text(data, MEMORY_BLOCKS)
        return parse_meminfo(need_text(data, MEMINFO), parse_dmi_output(dmi) if dmi else None,
                             parse_memory_blocks(blocks) if blocks else None)

    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> MemoryFacts:
        if sys.platform.startswith("linux"):
            # psutil reads the same file on Linux (MemTotal, MemAvailable, SwapTotal, SwapFree)
            try:
                with open("/proc/meminfo", encoding="ascii", errors="replace") as fh:
                    text = fh.read()
            except OSError as exc:
                raise ProbeError(t(f"cannot read /proc/meminfo on this host: {exc}",
                                   f"无法读取本机的 /proc/meminfo：{exc}")) from exc
            dmi, blocks = ctx.transport.memo("memory.installed", _native_installed_sources)
            return parse_meminfo(text, dmi, blocks)
        import psutil

        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
        total_gb = gib(vm.total)
        dmi, blocks = ctx.transport.memo("memory.installed", _native_installed_sources)
        installed_gb, source = installed_memory(total_gb, dmi, blocks)
        return MemoryFacts(
            total_gb=total_gb,
            available_gb=gib(vm.available),
            used_percent=percent(vm.total - vm.available, vm.total),
            swap_total_gb=gib(sw.total),
            swap_free_gb=gib(sw.free),
            installed_gb=installed_gb,
            installed_source=source,
        )
