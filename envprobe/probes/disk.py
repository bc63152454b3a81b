"""``disk``: space and inodes on the filesystem holding a path, as ``df`` reports them.

Shell path: ``df -PTk PATH`` and ``df -Pi PATH`` (POSIX output format, ``LC_ALL=C``). Native path: on Linux
one ``os.statvfs`` for space and inodes (the arithmetic psutil.disk_usage does: used = total - free,
available = what non-root users may take) and ``/proc/self/mounts`` for the mount (longest matching mount
point); elsewhere ``psutil.disk_usage`` and ``psutil.disk_partitions`` (psutil is imported only there),
with ``os.statvfs`` for inodes where the platform has it. Both paths compute ``used_percent`` as df does:
used / (used + available to non-root users).

The module also lists a host's real filesystems for the report's host summary (:meth:`DiskProbe.list_disks`).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import threading
from typing import Any, NamedTuple

from envprobe.model import t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.probes.system import bad_input, gib, need_text, percent
from envprobe.schema import Field, Model, field_validator
from envprobe.transport.base import CommandResult, Source

#: Filesystems that hold no user data: never shown in the host summary.
PSEUDO_FS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devfs", "devpts", "devtmpfs",
    "efivarfs", "fuse.gvfsd-fuse", "fuse.lxcfs", "fuse.portal", "fusectl", "hugetlbfs", "mqueue", "nsfs",
    "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs",
    "tracefs", "none", "nfsd", "overlayfs-internal",
})
#: Mount points under these hold container layers and snaps, not the host's disks (the directory itself may be
#: a real disk, e.g. /var/lib/docker on its own volume).
CHILD_MOUNT_PREFIXES = ("/snap/", "/var/lib/docker/", "/var/lib/containers/", "/run/containerd/",
                        "/var/lib/kubelet/")
#: These and everything under them are never disks (network-namespace handles, per-user runtime dirs …).
PSEUDO_MOUNTS = ("/run/netns", "/var/run/netns", "/run/user", "/proc", "/sys", "/dev")


def is_real_fs(fstype: str, mount: str) -> bool:
    """True for filesystems shown in a host summary (no tmpfs, proc, netns handles, container layers)."""
    if not fstype or fstype in PSEUDO_FS:
        return False
    if mount.startswith(CHILD_MOUNT_PREFIXES):
        return False
    m = mount.rstrip("/") + "/"
    return not any(m.startswith(p + "/") for p in PSEUDO_MOUNTS)


_DF_ROW = re.compile(
    r"^(?P<device>.*?\S)\s+(?P<fstype>\S+)\s+(?P<total>\d+)\s+(?P<used>\d+)\s+(?P<avail>\d+)\s+"
    r"(?P<cap>\d+%|-)\s+(?P<mount>/.*)$"
)
_DFI_ROW = re.compile(
    r"^(?P<device>.*?\S)\s+(?P<inodes>\d+|-)\s+(?P<iused>\d+|-)\s+(?P<ifree>\d+|-)\s+(?P<ipct>\d+%|-)\s+"
    r"(?P<mount>/.*)$"
)


def parse_df(text: str) -> list[dict[str, Any]]:
    """``df -PTk`` rows → [{device, fstype, mount, total_gb, free_gb, used_percent}]; other lines skipped."""
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        m = _DF_ROW.match(line.rstrip())
        if not m:
            continue
        used, avail = int(m["used"]), int(m["avail"])
        rows.append({
            "mount": m["mount"],
            "fstype": m["fstype"],
            "device": m["device"],
            "total_gb": gib(int(m["total"]) * 1024),
            "free_gb": gib(avail * 1024),
            "used_percent": percent(used, used + avail),
        })
    return rows


def parse_df_inodes(text: str) -> float | None:
    """``df -Pi`` for one path → free inodes in percent, or None where the filesystem has no inode count."""
    for line in text.splitlines():
        m = _DFI_ROW.match(line.rstrip())
        if not m:
            continue
        if not (m["inodes"].isdigit() and m["ifree"].isdigit()) or int(m["inodes"]) == 0:
            return None
        return percent(int(m["ifree"]), int(m["inodes"]))
    return None


class DiskParams(Model):
    path: str = Field(description="a directory (or file) on the filesystem to check, e.g. /data; "
                                  "symlinks are followed, as df follows them")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("give the path of a directory, e.g. /data")
        if "\n" in v or "\0" in v:
            raise ValueError("a path cannot contain a line break or a NUL character")
        return v


class DiskFacts(Facts):
    path: str = Field(description="the path that was checked, as given")
    mount: str = Field(description="mount point of the filesystem holding the path, e.g. /data")
    device: str = Field(description="device or source of that filesystem, e.g. /dev/mapper/klas-root")
    fstype: str = Field(description="filesystem type, e.g. xfs, ext4, btrfs, nfs4")
    total_gb: float = Field(description="size of the filesystem, GiB (df's 1024-blocks / 2^20)")
    free_gb: float = Field(description="space available to non-root users, GiB (df's Available)")
    used_percent: float = Field(description="used / (used + available), percent, as df's Capacity has it")
    inodes_free_percent: float | None = Field(
        description="free inodes, percent (null where the filesystem has no fixed inode count, e.g. btrfs, "
                    "or on Windows)")


def df_sources(path: str) -> tuple[Source, Source]:
    q = shlex.quote(path)
    return Source.command(f"df -PTk -- {q}"), Source.command(f"df -Pi -- {q}")


DF_ALL = Source.command("if command -v timeout >/dev/null 2>&1; then timeout 10 df -PTk; else df -PTk; fi")


def _missing(path: str) -> ProbeError:
    return ProbeError(
        t(f"the path {path} does not exist on this host", f"该主机上不存在路径 {path}"),
        hint=t("check the path in the checklist; if the disk or mount is still to be prepared by the client, "
               "ask for it before the visit",
               "核对检查清单中的路径；如该磁盘或挂载点尚需客户准备，请在驻场前确认到位"),
    )


def _denied(path: str, detail: str) -> ProbeError:
    return ProbeError(t(f"cannot look at {path} on this host: permission denied ({detail}); "
                        "run as a user who can reach it, or with sudo",
                        f"无权访问该主机上的 {path}（{detail}）；请换用有权限的用户或使用 sudo"))


class DiskProbe(Probe):
    name = "disk"
    summary = t("Disk: size, free space, used percent and free inodes of the filesystem holding a path",
                "磁盘：路径所在文件系统的容量、可用空间、使用率与剩余 inode")
    Params = DiskParams
    Facts = DiskFacts
    requires = t("df; the user must be able to reach the path", "df；执行用户需能访问该路径")
    example = """\
- id: data-disk
  title: {zh-CN: 数据盘空间, en: Data disk space}
  probe: disk
  with: {path: /data}
  expect: {free_gb: ">= 100", used_percent: "< 80"}
"""
    advice = {
        "free_gb": t("free space on that filesystem (old logs, packages, core dumps: "
                     "du -xh --max-depth=1 MOUNT | sort -h) or extend it (lvextend -r / add a disk)",
                     "请清理该文件系统（旧日志、安装包、core 文件：du -xh --max-depth=1 挂载点 | sort -h）"
                     "或扩容（lvextend -r 或加盘）"),
        "total_gb": t("the filesystem is too small: extend the volume or mount a larger disk at this path",
                      "该文件系统容量不足：请扩容卷，或在该路径挂载更大的磁盘"),
        "used_percent": t("free space on that filesystem or extend it; find what grew with "
                          "du -xh --max-depth=1 MOUNT | sort -h",
                          "请清理或扩容该文件系统；用 du -xh --max-depth=1 挂载点 | sort -h "
                          "找出占用大的目录"),
        "inodes_free_percent": t("the filesystem is running out of inodes: remove many small files "
                                 "(find MOUNT -xdev -type f | cut -d/ -f2-3 | sort | uniq -c | sort -n)",
                                 "该文件系统 inode 将耗尽：请清理大量小文件"
                                 "（find 挂载点 -xdev -type f | cut -d/ -f2-3 | sort | uniq -c | sort -n）"),
        "mount": t("mount the intended disk at this path (check /etc/fstab and mount -a)",
                   "请将规划的磁盘挂载到该路径（检查 /etc/fstab 并执行 mount -a）"),
        "fstype": t("format or mount the data disk with the filesystem the product requires",
                    "请按产品要求的文件系统类型格式化或挂载数据盘"),
        "*": t("check the disk plan with the customer's system administrator",
               "请与客户系统管理员核对磁盘规划"),
    }

    # -- shell path ------------------------------------------------------------------------------------
    def sources(self, params: Any) -> list[Source]:
        return list(df_sources(params.path))

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> DiskFacts:
        space, inodes = df_sources(params.path)
        res = data.get(space)
        if res is not None and res.rc != 0 and not res.timed_out:
            err = res.stderr.strip()
            if "No such file or directory" in err:
                raise _missing(params.path)
            if "Permission denied" in err:
                raise _denied(params.path, err.splitlines()[0][:160])
        rows = parse_df(need_text(data, space, f"df -PTk {params.path}"))
        if not rows:
            raise bad_input(f"the output of df -PTk {params.path}", "no filesystem row")
        row = rows[-1]
        ires = data.get(inodes)
        inodes_free = parse_df_inodes(ires.stdout) if ires is not None and ires.ok else None
        return DiskFacts(path=params.path, inodes_free_percent=inodes_free, **row)

    # -- native path -----------------------------------------------------------------------------------
    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> DiskFacts:
        path = os.path.realpath(os.path.expanduser(params.path))
        inodes_free: float | None = None
        try:
            os.stat(path)
            if _LINUX:  # one statvfs for space and inodes
                st = os.statvfs(path)
                usage = _statvfs_usage(st)
                inodes_free = percent(st.f_ffree, st.f_files) if st.f_files > 0 else None
            else:
                usage = disk_usage(path)
        except FileNotFoundError as exc:
            raise _missing(params.path) from exc
        except PermissionError as exc:
            raise _denied(params.path, str(exc)) from exc
        except OSError as exc:
            raise ProbeError(t(f"cannot look at {params.path} on this host: {exc}",
                               f"无法查看该主机上的 {params.path}：{exc}")) from exc
        part = mount_of(path)
        if not _LINUX and hasattr(os, "statvfs"):
            try:
                st = os.statvfs(path)
                inodes_free = percent(st.f_ffree, st.f_files) if st.f_files > 0 else None
            except OSError:
                inodes_free = None
        return DiskFacts(
            path=params.path,
            mount=part.mountpoint if part else "",
            device=part.device if part else "",
            fstype=part.fstype if part else "",
            total_gb=gib(usage.total),
            free_gb=gib(usage.free),
            used_percent=percent(usage.used, usage.used + usage.free),
            inodes_free_percent=inodes_free,
        )

    # -- all filesystems of a host, for the host summary ------------------------------------------------
    def list_sources(self) -> list[Source]:
        return [DF_ALL]

    def parse_list(self, data: dict[Source, CommandResult]) -> list[dict[str, Any]]:
        res = data.get(DF_ALL)
        # df exits 1 when one mount cannot be read (a FUSE portal, a dead NFS share) but lists the others.
        rows = parse_df(res.stdout) if res is not None and not res.timed_out else []
        if not rows:
            need_text(data, DF_ALL, "df -PTk")
        return real_disks(rows)

    def list_disks(self, ctx: ProbeContext, budget: float = 3.0) -> list[dict[str, Any]]:
        """Real filesystems of the host: mount, fstype, device, total_gb, free_gb, used_percent."""
        if not ctx.prefer_native:
            return self.parse_list(ctx.fetch(self.list_sources()))
        return native_disks(budget)


_LINUX = sys.platform.startswith("linux")


class Usage(NamedTuple):
    """Space on a filesystem in bytes, as psutil.disk_usage counts it."""
    total: int
    used: int  # total - free blocks (root's reserve counts as free here, as in df's Used)
    free: int  # available to non-root users (df's Available)


class Partition(NamedTuple):
    """A mounted filesystem, with the attribute names psutil.disk_partitions uses."""
    device: str
    mountpoint: str
    fstype: str


def _statvfs_usage(st: os.statvfs_result) -> Usage:
    total = st.f_blocks * st.f_frsize
    return Usage(total, total - st.f_bfree * st.f_frsize, st.f_bavail * st.f_frsize)


def disk_usage(path: str) -> Usage:
    """Space on the filesystem holding ``path``: statvfs on Linux, psutil elsewhere (macOS counts used space
    its own way, Windows has no statvfs). Raises OSError."""
    if _LINUX:
        return _statvfs_usage(os.statvfs(path))
    import psutil

    u = psutil.disk_usage(path)
    return Usage(u.total, u.used, u.free)


_MOUNT_ESCAPE = re.compile(r"\\([0-7]{3})")


def parse_mounts(text: str) -> list[Partition]:
    """``/proc/self/mounts`` → partitions, in the kernel's order. The kernel writes a space, tab, newline or
    backslash in a field as an octal escape (``\\040``); it is decoded, as getmntent(3) does. A device of
    ``none`` becomes empty, as psutil has it."""
    out: list[Partition] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, mount, fstype = (_MOUNT_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), f) for f in fields[:3])
        out.append(Partition("" if device == "none" else device, mount, fstype))
    return out


def _root_device() -> str | None:
    """The block device holding /, for a mount table that says ``/dev/root`` or ``rootfs`` (as psutil finds
    it: /proc/partitions, then /sys/dev/block/MAJ:MIN/uevent, then /sys/class/block/*/dev)."""
    try:
        dev = os.stat("/").st_dev
    except OSError:
        return None
    major, minor = os.major(dev), os.minor(dev)
    name = None
    try:
        with open("/proc/partitions", encoding="utf-8", errors="replace") as fh:
            for line in fh.read().splitlines()[2:]:
                f = line.split()
                if len(f) >= 4 and f[0] == str(major) and f[1] == str(minor):
                    name = f[3]
                    break
    except OSError:
        pass
    if name is None:
        try:
            with open(f"/sys/dev/block/{major}:{minor}/uevent", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if line.startswith("DEVNAME="):
                        name = line.strip()[len("DEVNAME="):] or None
                        break
        except OSError:
            pass
    if name is None:
        try:
            entries = os.listdir("/sys/class/block")
        except OSError:
            entries = []
        for entry in entries:
            try:
                with open(f"/sys/class/block/{entry}/dev", encoding="ascii", errors="replace") as fh:
                    if fh.read().strip() == f"{major}:{minor}":
                        name = entry
                        break
            except OSError:
                continue
    path = f"/dev/{name}" if name else None
    return path if path and os.path.exists(path) else None


def linux_partitions() -> list[Partition]:
    """This machine's mount table (Linux), as ``psutil.disk_partitions(all=True)`` lists it."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="surrogateescape") as fh:
            parts = parse_mounts(fh.read())
    except OSError:
        return []
    if any(p.device in ("/dev/root", "rootfs") for p in parts):
        root = _root_device()
        if root:
            parts = [p._replace(device=root) if p.device in ("/dev/root", "rootfs") else p for p in parts]
    return parts


def _partitions() -> list[Any]:
    if _LINUX:
        return linux_partitions()
    import psutil

    return list(psutil.disk_partitions(all=True))


def _norm(p: str) -> str:
    return os.path.normcase(p)


def mount_of(path: str) -> Any:
    """The partition whose mount point is the longest prefix of ``path`` (the last such mount wins, as the
    kernel's does when something is mounted over it); /run/netns handles are ignored."""
    target = _norm(path)
    best = None
    best_len = -1
    for part in _partitions():
        mp = part.mountpoint
        if not mp or mp.startswith(("/run/netns", "/var/run/netns")):
            continue
        m = _norm(mp)
        base = m if m.endswith(("/", "\\")) else m + os.sep
        if (target == m or target.startswith(base) or m in ("/", "\\")) and len(m) >= best_len:
            best, best_len = part, len(m)
    return best


def real_disks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep real filesystems, one row per device (its shortest mount point), sorted by mount point."""
    keep: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (len(r["mount"]), r["mount"])):
        if not is_real_fs(row["fstype"], row["mount"]):
            continue
        keep.setdefault(row["device"], row)
    return sorted(keep.values(), key=lambda r: r["mount"])


def native_disks(budget: float = 3.0) -> list[dict[str, Any]]:
    """This machine's real filesystems (Linux: the mount table and statvfs; elsewhere psutil). A hung network
    mount cannot stall the caller: the work runs in a helper thread and whatever it gathered within
    ``budget`` seconds is returned."""
    rows: list[dict[str, Any]] = []

    def work() -> None:
        for part in _partitions():
            if not is_real_fs(part.fstype, part.mountpoint):
                continue
            try:
                u = disk_usage(part.mountpoint)
            except OSError:  # a CD drive without a disc, a mount that went away
                continue
            rows.append({
                "mount": part.mountpoint, "fstype": part.fstype, "device": part.device,
                "total_gb": gib(u.total), "free_gb": gib(u.free),
                "used_percent": percent(u.used, u.used + u.free),
            })

    th = threading.Thread(target=work, name="envprobe-disks", daemon=True)
    th.start()
    th.join(budget)
    return real_disks(list(rows))
