"""The transport interface shared by the local and (later) SSH implementations.

A probe written against :class:`Transport` runs unchanged on every host. A non-zero exit status is data
(:class:`CommandResult`), never an exception; :class:`TransportError` means the host itself could not be
reached or the operation could not be attempted.
"""

from __future__ import annotations

import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from envprobe.record import record

T = TypeVar("T")


class TransportError(Exception):
    """The transport could not perform an operation (host unreachable, file unreadable, ...)."""


class PrivilegeError(TransportError):
    """A command that needs root could not get it.

    ``reason`` is one of ``not-root`` (no sudo configured for the host), ``sudo-missing`` (sudo is not installed),
    ``sudo-password`` (sudo wants a password and none was given, or the one given was wrong) and
    ``sudo-denied`` (the account may not use sudo for this).
    """

    def __init__(self, reason: str, user_detail: str = ""):
        super().__init__(f"{reason}: {user_detail}" if user_detail else reason)
        self.reason = reason
        self.detail = user_detail


_SUDO_OK = "ENVPROBE-PRIVILEGED-OK"


def pump(src: Any, dst: Any, finish: Callable[[], None]) -> None:
    """Copy one direction of a stream bridge (sockets or SSH channels) until the source ends or either side
    fails, then call ``finish`` (e.g. shut the other side's writing half, or close both)."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except Exception:  # noqa: BLE001 - either side went away: the stream ends
        pass
    finally:
        finish()


@record(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str
    duration_ms: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


@record(frozen=True)
class Source:
    """A piece of raw data a shell-path probe needs: a file's contents or a command's output.

    Probes declare their sources instead of running them one by one, so a transport can fetch every source a
    host needs in one batch (one round trip over SSH) and serve the probes from a cache.
    """

    kind: str  # "file" | "command"
    target: str  # a path, or a POSIX shell command line (run with LC_ALL=C)
    #: a user's command (the ``command`` probe): run apart, under its own timeout, in case it hangs or does not
    #: parse; envprobe's own probe commands run inline in a batch (no extra process per source)
    user: bool = False

    @classmethod
    def file(cls, path: str) -> Source:
        return cls("file", path)

    @classmethod
    def command(cls, line: str, user: bool = False) -> Source:
        return cls("command", line, user)


def resolve_without_asking(name: str) -> list[str] | None:
    """What every resolver would answer without being asked: an IP address is itself (scope kept); a
    ``.invalid`` name never resolves (RFC 6761 §6.4). None when a resolver must be asked."""
    import ipaddress

    addr, _, scope = name.partition("%")
    try:
        return [str(ipaddress.ip_address(addr)) + (f"%{scope}" if scope else "")]
    except ValueError:
        pass
    if name.rstrip(".").lower().split(".")[-1] == "invalid":
        raise socket.gaierror(socket.EAI_NONAME, f"{name}: a .invalid name never resolves (RFC 6761)")
    return None


class Started:
    """A command that keeps running while the caller does something else (e.g. a temporary listener)."""

    def __init__(self) -> None:
        self._out: list[str] = []
        self._cond = threading.Condition()
        self._result: CommandResult | None = None

    def _feed(self, text: str) -> None:
        with self._cond:
            self._out.append(text)
            self._cond.notify_all()

    def _finish(self, result: CommandResult) -> None:
        with self._cond:
            self._result = result
            self._cond.notify_all()

    def wait_for(self, marker: str, timeout: float) -> bool:
        """Wait until ``marker`` appears in the output (True) or the command ends / time runs out (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while marker not in "".join(self._out):
                left = deadline - time.monotonic()
                if self._result is not None or left <= 0:
                    return marker in "".join(self._out)
                self._cond.wait(left)
            return True

    def wait(self, timeout: float) -> CommandResult | None:
        """The finished command's result, or None if it is still running after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._result is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._result


class Transport(ABC):
    """How a probe reaches one host."""

    #: True when the host is the machine envprobe runs on (probes may then use psutil).
    is_local: bool = False
    #: A name for messages: "local", "app01", ...
    name: str = "local"

    @property
    def os_family(self) -> str:
        """``posix`` or ``windows``: which command set a probe should use on this host. The seam for Windows
        targets: the local transport knows its platform, the SSH transport reads the server's banner (Windows'
        OpenSSH announces itself as ``OpenSSH_for_Windows``), so asking costs no round trip."""
        return "posix"

    #: Run privileged commands through sudo when the login user is not root (inventory ``sudo: true``).
    sudo: bool = False
    #: The password sudo asks for, if it asks (a secret: sent on stdin only, never on a command line).
    sudo_password: str | None = None

    def __init__(self) -> None:
        self._cache: dict[Source, CommandResult] = {}
        self._cache_lock = threading.Lock()
        self._memo: dict[str, Any] = {}
        self._expected: list[Source] = []
        self._fetch_lock = threading.Lock()
        self._memo_locks: dict[str, threading.Lock] = {}

    @abstractmethod
    def run(
        self,
        cmd: Sequence[str] | str,
        timeout: float = 10.0,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        """Run an argv list (no shell) or a POSIX shell string; returns rc, stdout, stderr and duration."""

    @abstractmethod
    def read_file(self, path: str, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        """Read a file; raises FileNotFoundError / PermissionError / TransportError."""

    @abstractmethod
    def put(self, local_path: str, remote_path: str) -> None:
        """Copy a local file to the host."""

    @abstractmethod
    def get(self, remote_path: str, local_path: str) -> None:
        """Copy a file from the host to a local path."""

    @abstractmethod
    def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        """Open a TCP stream to host:port *from this transport's host* (the vantage point)."""

    def resolve(self, name: str, timeout: float = 5.0) -> list[str]:
        """Resolve a host name to IP addresses *at this transport's host*, as its programs would (its
        ``/etc/hosts``, resolver configuration and nsswitch), in the order its resolver prefers them.

        An IP address comes back unchanged, without asking anybody; a name under ``.invalid`` fails at once
        (RFC 6761 §6.4: such names never resolve). Raises ``socket.gaierror`` when the name does not resolve and
        ``TimeoutError`` when the resolver gives no answer within ``timeout`` seconds.

        This default asks the host's C library through ``getent ahosts`` (any POSIX host: one command); the
        local transport overrides it with ``getaddrinfo`` in this process.
        """
        name = name.strip().strip("[]")
        literal = resolve_without_asking(name)
        if literal is not None:
            return literal
        res = self.run(["getent", "ahosts", name], timeout=timeout, env={"LC_ALL": "C", "LANG": "C"})
        if res.timed_out:
            raise TimeoutError(f"no answer from the resolver of {self.name} within {timeout:g} s")
        if res.rc == 2:  # getent: key not found
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: name not known on {self.name}")
        if res.rc != 0:
            raise TransportError(f"getent ahosts {name} failed on {self.name} (exit {res.rc}): "
                                 f"{res.stderr.strip() or res.stdout.strip()}")
        found = [line.split()[0] for line in res.stdout.splitlines() if line.strip()]
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: no address on {self.name}")
        return list(dict.fromkeys(found))

    def timed_run(self, cmd: str, timeout: float = 10.0) -> tuple[CommandResult, float, float]:
        """Run a POSIX shell command and bracket *when it ran* with this machine's wall clock: (result, t0, t1)
        with the command's execution inside [t0, t1] (``time.time()`` seconds). Transports make the bracket as
        tight as they can (SSH opens the channel before t0), for clock-offset measurements."""
        t0 = time.time()
        res = self.run(cmd, timeout=timeout, env={"LC_ALL": "C", "LANG": "C"})
        return res, t0, time.time()

    def run_privileged(self, cmd: str, timeout: float = 10.0,
                       env: dict[str, str] | None = None) -> CommandResult:
        """Run a POSIX shell command as root, in one exec: directly when the login user is root, through
        ``sudo`` when the host is configured for it, else :class:`PrivilegeError` (``not-root``).

        sudo's password, when configured, goes on stdin (``sudo -S``), never on a command line; the command itself
        then reads /dev/null, so a password sudo did not need can never reach it. Without a password ``sudo -n``
        is used, which fails at once instead of waiting for a prompt nobody will answer.
        """
        import shlex

        inner = f"echo {_SUDO_OK} >&2; exec </dev/null; {cmd}"
        if self.sudo and self.sudo_password is not None:
            via = f"sudo -S -p '' -- sh -c {shlex.quote(inner)}"
            stdin: str | None = self.sudo_password + "\n"
        elif self.sudo:
            via = f"sudo -n -- sh -c {shlex.quote(inner)}"
            stdin = None
        else:
            via = "echo ENVPROBE-NOT-ROOT >&2; exit 126"
            stdin = None
        script = (f'if [ "$(id -u)" = 0 ]; then sh -c {shlex.quote(inner)}; '
                  f"elif command -v sudo >/dev/null 2>&1 || [ {int(not self.sudo)} = 1 ]; then {via}; "
                  f"else echo ENVPROBE-NO-SUDO >&2; exit 127; fi")
        res = self.run(script, timeout=timeout, env=env, stdin=stdin)
        if res.timed_out:
            return res
        lines = res.stderr.splitlines(keepends=True)
        ok_line = next((i for i, line in enumerate(lines) if line.rstrip("\n") == _SUDO_OK), None)
        if ok_line is not None:  # a line of its own: sudo's refusals quote the command, sentinel included
            del lines[ok_line]
            return CommandResult(res.rc, res.stdout, "".join(lines), res.duration_ms)
        err = res.stderr
        if "ENVPROBE-NOT-ROOT" in err:
            raise PrivilegeError("not-root")
        if "ENVPROBE-NO-SUDO" in err:
            raise PrivilegeError("sudo-missing")
        low = err.lower()
        detail = " ".join(line.strip() for line in err.splitlines() if line.strip())
        detail = detail.replace(f"echo {_SUDO_OK} >&2; exec </dev/null; ", "")[:300]
        if "password" in low or "try again" in low:
            raise PrivilegeError("sudo-password", detail)
        raise PrivilegeError("sudo-denied", detail)

    def start(self, cmd: str, timeout: float) -> Started:
        """Start a POSIX shell command and return at once; its output is readable while it runs.

        The default runs it in a thread through :meth:`run` (output arrives when it ends); transports that can
        stream (local, SSH) override this.
        """
        started = Started()

        def go() -> None:
            res = self.run(cmd, timeout=timeout, env={"LC_ALL": "C", "LANG": "C"})
            started._feed(res.stdout)
            started._finish(res)

        threading.Thread(target=go, daemon=True, name=f"start@{self.name}").start()
        return started

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # -- batched sources ------------------------------------------------------------------------------
    def fetch(self, sources: Sequence[Source], timeout: float = 10.0) -> dict[Source, CommandResult]:
        """Return the data for each source, from the prefetch cache when present.

        File sources come back as a CommandResult too: rc 0 and the contents, or rc 1 and the error in stderr.
        """
        with self._fetch_lock:  # one batch at a time per host: a second caller finds the first one's data
            with self._cache_lock:
                missing = [s for s in sources if s not in self._cache]
                if missing:  # bring along everything the host's checks announced, in the same batch
                    missing += [s for s in self._expected if s not in self._cache and s not in missing]
            fetched = self._fetch_uncached(missing, timeout) if missing else {}
            with self._cache_lock:
                self._cache.update(fetched)
                return {s: self._cache[s] for s in sources}

    def expect_sources(self, sources: Sequence[Source]) -> None:
        """Announce the sources this host's checks will ask for (no I/O). The first fetch then brings them
        all in one batch — one round trip over SSH — from whichever check thread asks first."""
        with self._cache_lock:
            self._expected = list(dict.fromkeys([*self._expected, *sources]))

    def prefetch(self, sources: Sequence[Source], timeout: float = 30.0) -> None:
        """Fetch many sources at once, now."""
        self.fetch(list(dict.fromkeys(sources)), timeout)

    def forget(self) -> None:
        """Drop cached sources and memos (before a retry: a retry must observe afresh)."""
        with self._cache_lock:
            self._cache.clear()
            self._memo.clear()
            self._expected.clear()

    def memo(self, key: str, factory: Callable[[], T]) -> T:
        """Compute a per-scan snapshot once (e.g. the process table) and share it between checks.

        Two checks asking at the same time wait for one computation instead of doing it twice.
        """
        with self._cache_lock:
            if key in self._memo:
                return cast(T, self._memo[key])
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            with self._cache_lock:
                if key in self._memo:
                    return cast(T, self._memo[key])
            value = factory()
            with self._cache_lock:
                self._memo[key] = value
            return value

    def _fetch_uncached(self, sources: Sequence[Source], timeout: float) -> dict[Source, CommandResult]:
        """Default: one operation per source. Remote transports override this with a single batched script."""
        out: dict[Source, CommandResult] = {}
        for s in sources:
            if s.kind == "file":
                try:
                    data = self.read_file(s.target)
                    out[s] = CommandResult(0, data.decode("utf-8", "replace"), "", 0.0)
                except (OSError, TransportError) as exc:
                    out[s] = CommandResult(1, "", f"{type(exc).__name__}: {exc}", 0.0)
            else:
                out[s] = self.run(s.target, timeout=timeout, env={"LC_ALL": "C", "LANG": "C"})
        return out
