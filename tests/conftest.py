"""Shared test helpers.

Tests that need root or a system binary skip with a reason on a laptop, but fail when ``CI`` is set: in CI a
skip would hide a provisioning bug in scripts/test.
"""

from __future__ import annotations

import io
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from envprobe.cli import Environment, run_cli

ROOT = Path(__file__).resolve().parent.parent


def need(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"required in CI but missing: {reason}")
    pytest.skip(reason)


_real_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Network rule: tests never resolve names through the system resolver (it points off-machine)."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name != "localhost":
        try:
            ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            raise AssertionError(
                f"a test tried to resolve {name!r} through the system resolver; use an IP address, an explicit "
                "nameserver, or a namespace with its own resolv.conf"
            ) from None
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_system_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def cli(*args: str, environ: dict[str, str] | None = None, tty: bool = False) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    env_vars = dict(os.environ)
    env_vars.update(environ or {})
    env = Environment(stdout=out, stderr=err, stdout_isatty=tty, environ=env_vars, color=False)
    code = run_cli(list(args), env)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def write(tmp_path: Path):
    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        return p

    return _write
