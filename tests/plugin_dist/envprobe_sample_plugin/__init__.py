"""A third-party probe: observes this host's clock. Registered through the envprobe.probes entry point."""

from __future__ import annotations

import time
from typing import Any

from envprobe.model import t
from envprobe.probes.base import Facts, Probe, ProbeContext
from envprobe.schema import Field


class ClockFacts(Facts):
    epoch_s: float = Field(description="seconds since 1970-01-01 UTC on the scanning host")
    plugin: str = Field(description="always the name of this plugin distribution")


class ClockProbe(Probe):
    name = "sample_clock"
    summary = t("Sample plugin: the host clock", "示例插件：主机时钟")
    Facts = ClockFacts
    example = """\
- id: clock
  probe: sample_clock
  expect: {epoch_s: "> 0"}
"""

    def collect(self, ctx: ProbeContext, params: Any) -> ClockFacts:
        return ClockFacts(epoch_s=time.time(), plugin="envprobe-sample-plugin")
