"""The probe interface.

A probe *observes*: ``collect()`` returns facts (an ``envprobe.schema.Model``) and never decides pass or fail; the
checklist's expectations and severities do. A probe talks to its host only through the transport in its
context, so the same probe runs locally and, later, over SSH.

Shell-path probes declare the raw data they need (:meth:`Probe.sources`) and turn it into facts with a pure
:meth:`Probe.parse`; the runner may prefetch every host's sources in one batch. Probes that also have a
native path for this machine (psutil) implement :meth:`Probe.collect_native`, used when the transport is local.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from envprobe.model import Text, t
from envprobe.schema import Model
from envprobe.transport.base import CommandResult, Source, Transport


class NoParams(Model):
    """A probe that takes no parameters."""


class Facts(Model):
    """Base for observed facts. Field descriptions become the probe's documentation."""


class ProbeError(Exception):
    """A clean, explained failure to observe (becomes an ``error`` result with this bilingual message)."""

    def __init__(self, message: Text, hint: Text | None = None):
        super().__init__(message.get("en", ""))
        self.message = message
        #: What to check next, shown as the result's advice.
        self.hint = hint


class ProbeContext:
    """What a probe gets to work with: the host's transport and the time it may use."""

    def __init__(self, transport: Transport, host: str, timeout: float, prefer_native: bool = True,
                 host_transport: Transport | None = None):
        #: where the probe observes from: the check's host, or its ``from:`` vantage host
        self.transport = transport
        #: the check's own host (differs from ``transport`` only when ``from:`` names a vantage host)
        self.host_transport = host_transport or transport
        self.host = host
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        #: Use psutil when the host is this machine. Tests turn it off to exercise the shell path locally.
        self.prefer_native = prefer_native and transport.is_local

    def remaining(self, floor: float = 0.5) -> float:
        return max(floor, self.deadline - time.monotonic())

    def fetch(self, sources: list[Source]) -> dict[Source, CommandResult]:
        return self.transport.fetch(sources, timeout=self.remaining())

    def run(self, cmd: list[str] | str, timeout: float | None = None) -> CommandResult:
        limit = self.remaining() if timeout is None else min(timeout, self.remaining())
        return self.transport.run(cmd, timeout=limit, env={"LC_ALL": "C", "LANG": "C"})


class Probe:
    #: The name used in checklists (``probe: memory``).
    name: ClassVar[str] = ""
    #: One line saying what it observes.
    summary: ClassVar[Text] = t("", "")
    Params: ClassVar[type[Model]] = NoParams
    Facts: ClassVar[type[Model]] = Facts
    #: A YAML checklist entry showing typical use; validated by the test suite.
    example: ClassVar[str] = ""
    #: Advice per observed field (and "*" for any), shown with a failure: what to do next.
    advice: ClassVar[dict[str, Text]] = {}
    #: Privileges or tools the probe needs on the host, for the docs.
    requires: ClassVar[Text | None] = None
    #: A network probe: ``from: HOST`` may run it from another inventory host (its transport is the vantage).
    vantage: ClassVar[bool] = False

    # -- the shell path (any POSIX host) ------------------------------------------------------------
    def sources(self, params: Any) -> list[Source]:
        """Raw data this probe needs from a POSIX host (files, commands). Empty: not a source-based probe."""
        return []

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> Model:
        """Turn fetched sources into facts. Pure: no I/O."""
        raise ProbeError(t(f"probe {self.name} has no shell path", f"探针 {self.name} 不支持命令方式采集"))

    # -- the native path (this machine) -----------------------------------------------------------------
    has_native: ClassVar[bool] = False

    def collect_native(self, ctx: ProbeContext, params: Any) -> Model:
        raise ProbeError(t(f"probe {self.name} has no native path", f"探针 {self.name} 不支持本机方式采集"))

    # -- entry point ------------------------------------------------------------------------------------
    def collect(self, ctx: ProbeContext, params: Any) -> Model:
        if self.has_native and ctx.prefer_native:
            return self.collect_native(ctx, params)
        return self.parse(params, ctx.fetch(self.sources(params)))

    def note(self, params: Any, facts: Model) -> Text | None:
        """Optional context for the result message (e.g. "no service manager on this host")."""
        return None

    @classmethod
    def fields(cls) -> dict[str, Any]:
        return dict(cls.Facts.model_fields)
