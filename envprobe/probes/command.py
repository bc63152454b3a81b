"""``command``: run a command on the host and observe its exit code and output."""

from __future__ import annotations

import shlex
from typing import Any

from envprobe.model import t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator
from envprobe.transport.base import Source

MAX_OUTPUT = 64 * 1024


class CommandParams(Model):
    run: str | list[str] = Field(description="a shell command line (POSIX sh) or an argv list (no shell)")
    stdin: str | None = Field(default=None, description="text fed to the command's standard input")

    @field_validator("run")
    @classmethod
    def _nonempty(cls, v: str | list[str]) -> str | list[str]:
        if not v or (isinstance(v, list) and not all(isinstance(x, str) and x for x in v)):
            raise ValueError("give a command line, or a non-empty list of arguments")
        return v


class CommandFacts(Facts):
    exit_code: int = Field(description="the command's exit status (127: not found, -1: timed out)")
    stdout: str = Field(description="standard output, first 64 KiB, trailing newline removed")
    stderr: str = Field(description="standard error, first 64 KiB, trailing newline removed")
    duration_ms: float = Field(description="wall time of the command")


class CommandProbe(Probe):
    name = "command"
    summary = t("Run a command and observe its exit code, output and duration",
                "运行一条命令，采集退出码、输出与耗时")
    Params = CommandParams
    Facts = CommandFacts
    example = """\
- id: java-version
  title: {zh-CN: Java 运行时, en: Java runtime}
  probe: command
  with: {run: "java -version 2>&1"}
  expect: {exit_code: 0, stdout: "~ version \\"(11|17|21)"}
"""
    advice = {
        "exit_code": t("run the command by hand on the host to see why it fails",
                       "在主机上手动执行该命令，查看失败原因"),
    }

    def sources(self, params: Any) -> list[Source]:
        """On a remote host the command joins the host's single batch (unless it needs stdin)."""
        if params.stdin is not None:
            return []
        return [Source.command(params.run if isinstance(params.run, str) else shlex.join(params.run), user=True)]

    def collect(self, ctx: ProbeContext, params: Any) -> CommandFacts:
        srcs = self.sources(params)
        if not ctx.transport.is_local and srcs:
            res = ctx.fetch(srcs)[srcs[0]]
        else:
            res = ctx.transport.run(params.run, timeout=ctx.remaining(), stdin=params.stdin)
        if res.timed_out:
            raise ProbeError(t(f"the command did not finish within {ctx.timeout:g} s and was stopped",
                               f"命令在 {ctx.timeout:g} 秒内未结束，已被终止"))
        return CommandFacts(
            exit_code=res.rc,
            stdout=_clip(res.stdout),
            stderr=_clip(res.stderr),
            duration_ms=round(res.duration_ms, 1),
        )


def _clip(s: str) -> str:
    s = s[:MAX_OUTPUT]
    return s[:-1] if s.endswith("\n") else s
