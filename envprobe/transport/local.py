"""The local transport: this machine, through subprocess and the standard library."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence

from envprobe.transport.base import CommandResult, Transport, TransportError, resolve_without_asking


class LocalTransport(Transport):
    is_local = True
    name = "local"

    @property
    def os_family(self) -> str:
        return "windows" if os.name == "nt" else "posix"

    def run(
        self,
        cmd: Sequence[str] | str,
        timeout: float = 10.0,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        shell = isinstance(cmd, str)
        if shell and os.name != "nt":
            argv: Sequence[str] | str = ["/bin/sh", "-c", str(cmd)]
            shell = False
        else:
            argv = cmd
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                argv,
                shell=shell,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                start_new_session=os.name != "nt",
            )
        except FileNotFoundError as exc:
            return CommandResult(127, "", f"command not found: {exc.filename}", _ms(start))
        except PermissionError as exc:
            return CommandResult(126, "", f"permission denied: {exc.filename}", _ms(start))
        except OSError as exc:
            raise TransportError(f"cannot start {argv!r}: {exc}") from exc
        try:
            out, err = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            out, err = proc.communicate()
            return CommandResult(-1, _dec(out), _dec(err), _ms(start), timed_out=True)
        return CommandResult(proc.returncode, _dec(out), _dec(err), _ms(start))

    def read_file(self, path: str, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        # in chunks: one read(16 MiB) of a /proc/sys file makes the kernel allocate that much (ENOMEM seen)
        chunks: list[bytes] = []
        left = max_bytes
        with open(os.path.expanduser(path), "rb", buffering=0) as fh:
            while left > 0:
                chunk = fh.read(min(left, 65536))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        return b"".join(chunks)

    def put(self, local_path: str, remote_path: str) -> None:
        shutil.copyfile(local_path, os.path.expanduser(remote_path))

    def get(self, remote_path: str, local_path: str) -> None:
        shutil.copyfile(os.path.expanduser(remote_path), local_path)

    def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((host, port), timeout=timeout)

    def resolve(self, name: str, timeout: float = 5.0) -> list[str]:
        """``getaddrinfo`` in this process (hosts file, resolver, nsswitch; on Windows and macOS their own
        resolvers). getaddrinfo has no timeout of its own, so it runs in a daemon thread that is abandoned
        after ``timeout`` seconds (it ends by itself when the resolver gives up)."""
        import threading

        name = name.strip().strip("[]")
        literal = resolve_without_asking(name)
        if literal is not None:
            return literal
        box: list[object] = []

        def lookup() -> None:
            try:
                box.append(socket.getaddrinfo(name, None, type=socket.SOCK_STREAM))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box.append(exc)

        worker = threading.Thread(target=lookup, daemon=True, name=f"resolve-{name}")
        worker.start()
        worker.join(timeout)
        if not box:
            raise TimeoutError(f"no answer from the resolver within {timeout:g} s")
        if isinstance(box[0], BaseException):
            raise box[0]
        infos = box[0]
        assert isinstance(infos, list)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _dec(b: bytes | None) -> str:
    return (b or b"").decode("utf-8", "replace")


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Kill a timed-out command and everything it started (its own session), by PID."""
    try:
        if os.name != "nt":
            os.killpg(proc.pid, 9)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
