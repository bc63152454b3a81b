"""Built-in probes. Each module registers its probes through the ``envprobe.probes`` entry-point group."""

from envprobe.probes.base import NoParams, Probe, ProbeContext, ProbeError

__all__ = ["NoParams", "Probe", "ProbeContext", "ProbeError"]
