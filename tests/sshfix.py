"""Real OpenSSH servers for the tests, started and stopped by the fixtures themselves.

``SshServer`` runs ``/usr/sbin/sshd -D`` with its own host key, authorized key, PID file and a DEBUG1 log
(every ``request exec`` and ``Accepted publickey`` is logged, so tests count round trips), listening on
127.0.0.1 or inside a network namespace. The server runs in its own mount namespace with an empty ``/root``,
so the machine's root dotfiles (a .bashrc that starts pyenv costs ~0.2 s per command) do not slow sessions.
It is killed by PID, never by name.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import need

SSHD = "/usr/sbin/sshd"


def need_sshd() -> None:
    need(os.geteuid() == 0, "needs root to run sshd for other users' logins")
    need(os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None,
         "needs openssh-server (sshd) and ssh-keygen")
    need(shutil.which("unshare") is not None, "needs unshare (util-linux)")


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "envprobe-test", "-f", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SshServer:
    def __init__(self, workdir: Path, client_key: Path, address: str = "127.0.0.1", port: int | None = None,
                 netns: str | None = None, password_only: bool = False, host_key: Path | None = None,
                 extra_binds: dict[str, str] | None = None):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.address = address
        self.port = port or free_port()
        self.netns = netns
        self.client_key = client_key
        self.host_key = host_key or keygen(self.dir / "host_key")
        self.log = self.dir / "sshd.log"
        self.pidfile = self.dir / "sshd.pid"
        self.password_only = password_only
        #: {source: target} bind mounts inside the server's own mount namespace (e.g. a fake /usr/bin/date)
        self.extra_binds = dict(extra_binds or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        auth = ("PubkeyAuthentication no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
                if self.password_only else "PubkeyAuthentication yes\nPasswordAuthentication no\n")
        return (
            f"Port {self.port}\nListenAddress {self.address}\nHostKey {self.host_key}\nPidFile {self.pidfile}\n"
            f"AuthorizedKeysFile {self.client_key}.pub\nUsePAM no\nStrictModes no\n"
            f"PermitRootLogin {'yes' if self.password_only else 'prohibit-password'}\n{auth}"
            "Subsystem sftp internal-sftp\nLogLevel DEBUG1\nMaxStartups 100:30:200\nUseDNS no\n"
            "PrintMotd no\nPrintLastLog no\nAllowTcpForwarding yes\n"
        )

    def start(self) -> SshServer:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        cfg = self.dir / "sshd_config"
        cfg.write_text(self.config())
        empty_root = self.dir / "root"
        empty_root.mkdir(exist_ok=True)
        check = subprocess.run([SSHD, "-t", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        binds = "".join(f"mount --bind {shlex.quote(src)} {shlex.quote(dst)} && "
                        for src, dst in self.extra_binds.items())
        inner = f"mount --bind {empty_root} /root && {binds}exec {SSHD} -D -f {cfg} -E {self.log}"
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"sshd exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                                     f"{self.log.read_text() if self.log.exists() else ''}")
            if self.log.exists() and "Server listening" in self.log.read_text():
                return self
            time.sleep(0.02)
        raise AssertionError(f"sshd did not start: {self.log.read_text() if self.log.exists() else ''}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart_with_host_key(self, key: Path) -> None:
        self.stop()
        self.host_key = key
        self.log.unlink(missing_ok=True)
        self.start()

    def count(self, needle: str) -> int:
        return self.log.read_text(errors="replace").count(needle) if self.log.exists() else 0

    @property
    def exec_requests(self) -> int:
        return self.count("request exec")

    @property
    def logins(self) -> int:
        return self.count("Accepted publickey") + self.count("Accepted password")
