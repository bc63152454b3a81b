"""The host summary shown at the top of a report: what each host is (OS, CPU, memory, disks).

It is collected by the probes themselves, so the summary and the checks can never disagree: the native path
on this machine (/proc, sysfs and statvfs read directly on Linux; psutil on Windows and macOS), the shell
path elsewhere, where every source is fetched in one batch first. CPU usage is not sampled (``usage_percent``
is null): the summary must cost next to nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envprobe.probes.base import NoParams, ProbeContext, ProbeError
from envprobe.probes.disk import DiskProbe
from envprobe.probes.system import CpuParams, CpuProbe, MemoryProbe, OsProbe
from envprobe.transport.base import Source, Transport, TransportError

#: Keys of each disk entry in the summary.
DISK_KEYS = ("mount", "fstype", "device", "total_gb", "free_gb", "used_percent")


def summary_sources() -> list[Source]:
    """What the shell path of the summary reads, for a remote host's single batch."""
    none, cpu_params = NoParams(), CpuParams(sample_ms=0)
    return [*OsProbe().sources(none), *CpuProbe().sources(cpu_params), *MemoryProbe().sources(none),
            *DiskProbe().list_sources()]


def host_summary(transport: Transport, prefer_native: bool = True, timeout: float = 10.0,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """{"os": {...}, "cpu": {...}, "memory": {...}, "disks": [{mount, fstype, device, total_gb, free_gb,
    used_percent}, ...]} for one host. A part that cannot be observed is left empty ({} or []) and told to
    ``log``."""
    say = log or (lambda _text: None)
    ctx = ProbeContext(transport, transport.name, timeout, prefer_native=prefer_native)
    os_probe, cpu_probe, mem_probe, disk_probe = OsProbe(), CpuProbe(), MemoryProbe(), DiskProbe()
    none, cpu_params = NoParams(), CpuParams(sample_ms=0)
    if not ctx.prefer_native:
        batch: list[Source] = [
            *os_probe.sources(none), *cpu_probe.sources(cpu_params), *mem_probe.sources(none),
            *disk_probe.list_sources(),
        ]
        try:
            transport.prefetch(batch, timeout=ctx.remaining())
        except TransportError as exc:
            say(f"host summary for {transport.name}: prefetch failed: {exc}")

    out: dict[str, Any] = {"os": {}, "cpu": {}, "memory": {}, "disks": []}
    parts: list[tuple[str, Any]] = [
        ("os", lambda: os_probe.collect(ctx, none).model_dump(mode="json")),
        ("cpu", lambda: cpu_probe.collect(ctx, cpu_params).model_dump(mode="json")),
        ("memory", lambda: mem_probe.collect(ctx, none).model_dump(mode="json")),
        ("disks", lambda: [{k: d[k] for k in DISK_KEYS} for d in disk_probe.list_disks(ctx)]),
    ]
    for key, get in parts:
        try:
            out[key] = get()
        except (ProbeError, TransportError, OSError) as exc:
            say(f"host summary for {transport.name}: {key} not observed: {exc}")
    return out
