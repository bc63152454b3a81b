"""Throwaway database servers for the db probe's tests: a PostgreSQL 15 cluster and a MariaDB server.

Each server runs as its own non-root account (``postgres``, ``mysql``: initdb refuses root, and a database server
should not run as root anyway) with its data directory under ``/tmp`` (a fresh ``mkdtemp`` folder handed to that
account; pytest's ``tmp_path`` lives under a root-only folder the account could not enter). It listens on a free
TCP port at one address — 127.0.0.1, or a netlab host's address when started inside that host's network
namespace — and on a Unix socket in its folder, through which the fixtures administer it with the stock clients
(``psql``, ``mariadb``) as the superuser. The probe under test never uses those clients: it goes through ODBC.

The server process is started directly (no ``pg_ctl``, no ``mysqld_safe``) through ``setpriv`` (and ``ip netns
exec``, which both exec in place), so the PID we hold is the server's own; :meth:`stop` signals that PID and
waits for it. :meth:`close` also removes the folder. Nothing is ever killed by name.

Facts these fixtures rely on are in /work/shared/LAB-NOTES.md ("Databases through ODBC").
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MARIADBD = "/usr/sbin/mariadbd"


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port free on this machine's loopback (namespaces have their own ports; any high port is free there)."""
    with socket.socket() as s:
        s.bind((address if address.startswith("127.") else "127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` that has a server (Debian keeps it off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def have_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def have_postgres() -> bool:
    return pg_bindir() is not None and have_user("postgres") and shutil.which("psql") is not None


def have_mariadb() -> bool:
    return os.path.exists(MARIADBD) and have_user("mysql") and shutil.which("mariadb-install-db") is not None \
        and shutil.which("mariadb") is not None


def _as_user(user: str, argv: list[str], netns: str | None = None) -> list[str]:
    """argv run as ``user`` (exec'd in place: the PID stays the server's), optionally inside a namespace."""
    cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env", *argv]
    return ["ip", "netns", "exec", netns, *cmd] if netns else cmd


def _wait_pid(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


class _Server:
    user = ""
    log: Path

    def __init__(self, port: int | None = None, address: str = "127.0.0.1", netns: str | None = None):
        self.address = address
        self.port = port or free_port(address)
        self.netns = netns
        self.root = Path(tempfile.mkdtemp(prefix=f"envprobe-{self.user}-"))
        os.chmod(self.root, 0o755)
        pw = pwd.getpwnam(self.user)
        os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.proc: subprocess.Popen[bytes] | None = None

    def _chown(self, path: Path) -> None:
        pw = pwd.getpwnam(self.user)
        os.chown(path, pw.pw_uid, pw.pw_gid)

    def _run_as(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(_as_user(self.user, argv), capture_output=True, text=True, timeout=timeout,
                             cwd=self.root)
        if res.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
        return res

    def _spawn(self, argv: list[str], ready: str, timeout: float = 30, output_to_log: bool = False) -> None:
        """Start the server (as its account, in its namespace) and wait for ``ready`` in its log."""
        self.log.unlink(missing_ok=True)
        out = open(self.log if output_to_log else os.devnull, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(_as_user(self.user, argv, self.netns), stdout=out, stderr=out,
                                         cwd=self.root)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = self.log.read_text(errors="replace") if self.log.exists() else ""
                self.proc = None
                raise RuntimeError(f"{argv[0]} exited at start: {text[-2000:]}")
            if self.log.exists() and ready in self.log.read_text(errors="replace"):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{argv[0]} did not become ready in {timeout} s")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server by its PID and wait for it (SIGKILL after 15 s)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        if not _wait_pid(proc, 15):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> _Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PgCluster(_Server):
    """A PostgreSQL cluster: ``initdb`` as ``postgres`` (superuser ``postgres`` with a password; local socket
    connections trusted, TCP connections with scram-sha-256 from loopback and the netlab networks 10.77.0.0/16)."""

    user = "postgres"

    def __init__(self, port: int | None = None, address: str = "127.0.0.1", netns: str | None = None,
                 superuser_password: str = "pg-super-secret"):
        super().__init__(port, address, netns)
        bindir = pg_bindir()
        assert bindir is not None, "no PostgreSQL server installed"
        self.bindir = bindir
        self.data = self.root / "data"
        self.sockdir = self.root
        self.log = self.root / "postgres.log"
        pwfile = self.root / "pw"
        pwfile.write_text(superuser_password + "\n")
        self._chown(pwfile)
        self._run_as([str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}",
                      "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
        pwfile.unlink()
        with open(self.data / "pg_hba.conf", "a") as fh:
            fh.write("host all all 10.77.0.0/16 scram-sha-256\n")

    def start(self) -> PgCluster:
        self._spawn([str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                     "-k", str(self.sockdir), "-c", f"listen_addresses={self.address}", "-c", "fsync=off",
                     "-c", "logging_collector=off", "-c", "log_destination=stderr",
                     "-c", "max_connections=50", "-c", "shared_buffers=16MB"],
                    ready="database system is ready to accept connections", output_to_log=True)
        return self

    def stop(self, sig: int = signal.SIGINT) -> None:  # SIGINT: PostgreSQL's "fast" shutdown
        super().stop(sig)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the Unix socket; returns unaligned, tuples-only output."""
        res = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", str(self.sockdir), "-p", str(self.port),
                              "-U", "postgres", "-d", database, "-Atc", statement],
                             capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise RuntimeError(f"psql: {res.stderr.strip()}")
        return res.stdout.strip()

    def binary_version(self) -> str:
        """The version the server binary reports (``postgres --version``): e.g. ``15.18``."""
        out = subprocess.run([str(self.bindir / "postgres"), "--version"], capture_output=True, text=True,
                             check=True).stdout
        m = re.search(r"\)\s+(\d+(?:\.\d+)+)", out)
        assert m, out
        return m.group(1)


class MariaServer(_Server):
    """A MariaDB server: ``mariadb-install-db`` and ``mariadbd`` as ``mysql`` (``root@localhost`` authenticates
    by Unix socket, as Debian sets it up)."""

    user = "mysql"

    def __init__(self, port: int | None = None, address: str = "127.0.0.1", netns: str | None = None):
        super().__init__(port, address, netns)
        self.data = self.root / "data"
        self.socket = self.root / "mysqld.sock"
        self.log = self.root / "error.log"
        self._run_as(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--skip-test-db",
                      "--skip-name-resolve"], timeout=120)

    def start(self) -> MariaServer:
        self._spawn([MARIADBD, "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
                     f"--bind-address={self.address}", f"--socket={self.socket}",
                     f"--pid-file={self.root / 'mysqld.pid'}", f"--log-error={self.log}",
                     "--innodb-buffer-pool-size=32M", "--skip-log-bin", "--skip-name-resolve",
                     "--performance-schema=OFF"],
                    ready="ready for connections")
        return self

    def sql(self, statement: str, database: str | None = None) -> str:
        """Run SQL as root over the Unix socket; returns tab-separated output without headers."""
        argv = ["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", "root", "-N", "-B", "-e", statement]
        if database:
            argv.append(database)
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise RuntimeError(f"mariadb: {res.stderr.strip()}")
        return res.stdout.strip()

    def binary_version(self) -> str:
        """The version the server binary reports (``mariadbd --version``): e.g. ``10.11.19``."""
        out = subprocess.run([MARIADBD, "--version"], capture_output=True, text=True, check=True).stdout
        m = re.search(r"Ver\s+(\d+(?:\.\d+)+)", out)
        assert m, out
        return m.group(1)


class Tarpit:
    """A TCP listener that accepts connections and never says a word (a hung server, or a TLS-intercepting box
    that stalls): a database driver waits for the server's greeting until its own timeout, or forever."""

    def __init__(self, address: str = "127.0.0.1"):
        self.sock = socket.socket()
        self.sock.bind((address, 0))
        self.sock.listen(16)
        self.address, self.port = self.sock.getsockname()[:2]
        self.accepted: list[socket.socket] = []
        import threading

        self._thread = threading.Thread(target=self._loop, daemon=True, name="tarpit")
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        for c in self.accepted:
            with contextlib.suppress(OSError):
                c.close()
