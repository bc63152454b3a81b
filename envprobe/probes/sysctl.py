"""``sysctl``: a kernel parameter's value, read from ``/proc/sys`` (no root needed, no ``sysctl`` binary).

Keys are written as ``sysctl(8)`` writes them: ``kernel.sem``, ``net.ipv4.ip_local_port_range``. A key whose
first separator is a dot is converted the way sysctl does it — every ``.`` becomes ``/`` and every ``/`` becomes
``.`` — so an interface name with a dot is written with a slash: ``net.ipv4.conf.eth0/100.rp_filter`` reads
``/proc/sys/net/ipv4/conf/eth0.100/rp_filter``. A key already in path form (``net/ipv4/conf/eth0.100/rp_filter``,
or the full ``/proc/sys/…`` path) is taken as it is.

``value`` is the file's content with whitespace normalised (``kernel.sem`` reads ``250\\t32000\\t100\\t128``, the
value is ``250 32000 100 128``) and it compares the way vendor tables mean it:

* a plain number compares numerically (``value: ">= 1048576"`` for ``fs.file-max``);
* several numbers compare **field by field**, and every field must satisfy the comparison:
  ``value: ">= 250 32000 100 128"`` holds for ``250 32000 100 256`` and fails for ``250 32000 100 100``;
  ``==`` means every field equal, ``!=`` that some field differs; a different number of fields never satisfies
  an ordering;
* text values (``net.ipv4.tcp_congestion_control = cubic``) compare as text; ``~ REGEX`` always works on the
  text.

Network keys are per network namespace: over SSH they are the values the host's sshd (and so its services)
sees.

Shell path: the file as a batch source (``cat`` over SSH). Native path (this machine): the same file read in
small chunks — the kernel allocates a buffer as large as each read() asks for, so one big read of a /proc/sys
file can fail with ENOMEM.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator
from envprobe.transport.base import CommandResult, Source

_INT = re.compile(r"^[-+]?\d+$")
_NUM = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$")
_OPS = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def key_to_path(key: str) -> str:
    """A sysctl key (dotted, or slashed, or a /proc/sys path) → the file under /proc/sys, as sysctl(8) maps it."""
    k = key.strip()
    if k.startswith("/proc/sys/"):
        k = k[len("/proc/sys/"):]
    m = re.search(r"[./]", k)
    if m and m.group() == ".":
        k = k.translate(str.maketrans("./", "/."))
    return "/proc/sys/" + k


def path_to_key(path: str) -> str:
    """The inverse: ``/proc/sys/net/ipv4/conf/eth0.100/rp_filter`` → ``net.ipv4.conf.eth0/100.rp_filter``."""
    rel = path[len("/proc/sys/"):] if path.startswith("/proc/sys/") else path
    return rel.translate(str.maketrans("./", "/."))


def _number(tok: str) -> float | int | None:
    if _INT.match(tok):
        return int(tok)
    if _NUM.match(tok):
        return float(tok)
    return None


class SysctlValue(str):
    """A sysctl's value (whitespace normalised) that compares numerically, field by field."""

    def compare_with(self, op: str, raw: str) -> bool | None:
        if op not in _OPS:
            return None
        have = str(self).split()
        want = str(raw).split()
        hn = [_number(x) for x in have]
        wn = [_number(x) for x in want]
        if have and want and None not in hn and None not in wn:
            if len(hn) != len(wn):
                if op in ("==", "!="):
                    return op == "!="
                return False  # "250 32000" is neither >= nor < "250 32000 100 128": not comparable
            if op == "!=":
                return any(a != b for a, b in zip(hn, wn, strict=True))
            return all(_OPS[op](a, b) for a, b in zip(hn, wn, strict=True))
        if op in ("==", "!="):
            return (have == want) == (op == "==")
        return None  # text ordered against text: the expectation language's generic rules decide


class SysctlParams(Model):
    key: str = Field(description="the parameter as sysctl names it: kernel.sem, vm.swappiness, fs.file-max, "
                     "net.ipv4.ip_local_port_range, net.ipv4.conf.eth0/100.rp_filter (a slash for a dot inside "
                     "a name), or its path under /proc/sys")

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("key is empty; give a kernel parameter such as kernel.sem")
        if re.search(r"[\s\x00=]", v):
            raise ValueError(f"key {v!r} contains whitespace or '='; give only the name (e.g. vm.swappiness), "
                             "and the wanted value under expect: {value: ...}")
        rel = key_to_path(v)[len("/proc/sys/"):]
        parts = rel.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"key {v!r} has an empty or relative component")
        return v


class SysctlFacts(Facts):
    exists: bool = Field(description="the parameter exists on this kernel (a missing module or an older "
                         "kernel lacks some, e.g. net.ipv4.tcp_tw_recycle is gone since Linux 4.12)")
    value: str | None = Field(description="the value, whitespace normalised ('250 32000 100 128'); numbers "
                              "compare numerically and several numbers field by field (every field must "
                              "satisfy: '>= 250 32000 100 128'); null when the parameter does not exist")
    values: list[int | str] = Field(default_factory=list, description="the value split into fields, numbers "
                                    "as integers: [250, 32000, 100, 128]")
    path: str = Field(description="the file read: /proc/sys/kernel/sem")


def parse_sysctl(path: str, res: CommandResult) -> SysctlFacts:
    """A /proc/sys file's read result → facts. Pure."""
    key = path_to_key(path)
    if res.timed_out:
        raise ProbeError(t(f"reading {path} did not finish in time", f"读取 {path} 超时"))
    if res.rc != 0:
        err = (res.stderr or res.stdout).strip()
        low = err.lower()
        if "no such file" in low or "filenotfound" in low or "not a directory" in low:
            return SysctlFacts(exists=False, value=None, values=[], path=path)
        if "is a directory" in low:
            raise ProbeError(t(f"{key} is a group of parameters, not one parameter ({path} is a directory)",
                               f"{key} 是一组参数而不是单个参数（{path} 是目录）"),
                             hint=t(f"name one parameter inside it: ls {path}", f"请指定其中的某个参数：ls {path}"))
        if "permission" in low:
            raise ProbeError(t(f"{key} exists but cannot be read by the login user ({path}: permission denied)",
                               f"{key} 存在，但登录用户无权读取（{path}：权限不足）"),
                             hint=t("a few parameters are readable by root only: scan this host as root",
                                    "少数参数仅 root 可读：请以 root 身份扫描该主机"))
        detail = err.splitlines()[0][:200] if err else f"exit status {res.rc}"
        raise ProbeError(t(f"cannot read {key} ({path}): {detail}", f"无法读取 {key}（{path}）：{detail}"))
    fields = res.stdout.split()
    values: list[int | str] = [int(x) if _INT.match(x) else x for x in fields]
    return SysctlFacts(exists=True, value=SysctlValue(" ".join(fields)), values=values, path=path)


def read_proc(path: str, limit: int = 1 << 20) -> CommandResult:
    """Read a /proc file in 4 KiB reads, as ``cat`` does; failures as a file source reports them."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            chunks: list[bytes] = []
            size = 0
            while size < limit:
                b = os.read(fd, 4096)
                if not b:
                    break
                chunks.append(b)
                size += len(b)
        finally:
            os.close(fd)
    except OSError as exc:
        return CommandResult(1, "", f"{type(exc).__name__}: {exc}", 0.0)
    return CommandResult(0, b"".join(chunks).decode("utf-8", "replace"), "", 0.0)


class SysctlProbe(Probe):
    name = "sysctl"
    summary = t("A kernel parameter (sysctl) read from /proc/sys; multi-value keys compare field by field",
                "内核参数（sysctl），从 /proc/sys 读取；多值参数逐字段比较")
    Params = SysctlParams
    Facts = SysctlFacts
    requires = t("no privileges (reads /proc/sys; a few parameters are readable by root only)",
                 "无需特权（读取 /proc/sys；少数参数仅 root 可读）")
    example = """\
- id: kernel-sem
  title: {zh-CN: 信号量参数 kernel.sem, en: Semaphores (kernel.sem)}
  probe: sysctl
  with: {key: kernel.sem}
  expect: {value: ">= 250 32000 100 128"}
"""
    advice = {
        "value": t("set it now with sysctl -w KEY=VALUE and persist it in /etc/sysctl.d/99-<product>.conf "
                   "(then sysctl --system); on some kernels the value is also capped elsewhere",
                   "用 sysctl -w 参数=值 立即生效，并写入 /etc/sysctl.d/99-<产品>.conf 持久化"
                   "（再执行 sysctl --system）"),
        "exists": t("the kernel does not have this parameter: load the module that provides it (e.g. "
                    "modprobe br_netfilter for net.bridge.*) or check whether the kernel version supports it",
                    "内核没有该参数：加载提供它的模块（如 net.bridge.* 需 modprobe br_netfilter），"
                    "或确认内核版本是否支持"),
        "*": t("compare with sysctl -a on the host", "请在主机上用 sysctl -a 对照查看"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [Source.file(key_to_path(params.key))]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> SysctlFacts:
        src = self.sources(params)[0]
        res = data.get(src)
        if res is None:
            raise ProbeError(t(f"no data was fetched for {src.target}", f"未取得 {src.target} 的数据"))
        return parse_sysctl(src.target, res)

    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> SysctlFacts:
        path = key_to_path(params.key)
        if not sys.platform.startswith("linux"):
            raise ProbeError(t("kernel parameters (sysctl) are read from /proc/sys, which only Linux has",
                               "内核参数（sysctl）从 /proc/sys 读取，仅 Linux 具备"))
        return parse_sysctl(path, read_proc(path))

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, SysctlFacts)
        if not facts.exists:
            return t(f"{params.key} does not exist on this kernel ({facts.path} is missing)",
                     f"该内核没有参数 {params.key}（{facts.path} 不存在）")
        return None
