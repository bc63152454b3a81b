"""The SSH transport (paramiko): one connection per host per scan, reused by every check.

Round trips are what a remote scan pays for, so:

* one TCP connection and one login per host, opened on first use and shared by the host's checks;
* ``TCP_NODELAY`` on the socket handed to paramiko (without it each command on an open connection waits for a
  delayed ACK, ~40 ms);
* every source the host's checks declare (files, commands) is fetched by **one** generated ``sh`` script in one
  exec request (:meth:`SshTransport._fetch_uncached`), and parsed back into one result per source;
* ``connect()`` opens a ``direct-tcpip`` channel *from that host* — the vantage point of network checks.

Host keys are verified against a known-hosts file. An unknown key is refused (its type and SHA256 fingerprint
are in the message) unless ``accept_new`` records it (trust on first use); a **changed** key is always refused.
Nothing is installed on the host; only POSIX sh and coreutils are used.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets as _secrets
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from envprobe.model import Text, t
from envprobe.transport.base import CommandResult, Source, Started, Transport, TransportError

#: Reasons a host could not be used, as results carry them.
REASONS = ("unreachable", "timeout", "auth-failed", "hostkey-unknown", "hostkey-changed")


class HostUnavailable(TransportError):
    """The host could not be reached or logged in to. ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: Text, hint: Text | None = None):
        super().__init__(message["en"])
        self.reason = reason
        self.message = message
        self.hint = hint


def fingerprint(key: Any) -> str:
    """``SHA256:…`` as OpenSSH prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _HostKeyPolicy:
    """paramiko's missing-host-key hook: refuse, or record the key when told to trust on first use."""

    def __init__(self, known_hosts: str, accept_new: bool, lock: threading.Lock):
        self.known_hosts = known_hosts
        self.accept_new = accept_new
        self.lock = lock

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        if not self.accept_new:
            raise _UnknownKey(hostname, key)
        import paramiko

        with self.lock:  # several hosts may record their keys at once
            hk = paramiko.HostKeys()
            if os.path.exists(self.known_hosts):
                hk.load(self.known_hosts)
            hk.add(hostname, key.get_name(), key)
            os.makedirs(os.path.dirname(os.path.abspath(self.known_hosts)), exist_ok=True)
            hk.save(self.known_hosts)
        client.get_host_keys().add(hostname, key.get_name(), key)


class _UnknownKey(Exception):
    def __init__(self, hostname: str, key: Any):
        super().__init__(hostname)
        self.hostname = hostname
        self.key = key


_known_hosts_lock = threading.Lock()
_transport_class: Any = None


def _transport_factory(sock: Any, **kwargs: Any) -> Any:
    """A paramiko Transport that keeps the server's reason when a channel cannot be opened ("Connection
    refused", "No route to host" …: paramiko keeps only the generic code) and logs nothing to stderr."""
    global _transport_class
    if _transport_class is None:
        import logging

        import paramiko
        from paramiko.common import DEBUG

        log = logging.getLogger("paramiko")
        if not log.handlers:  # paramiko's errors are ours to report; never Python's last-resort stderr print
            log.addHandler(logging.NullHandler())
            log.propagate = False

        class _Transport(paramiko.Transport):
            """paramiko keeps a failed open's reason in ONE slot per connection, so two opens failing at once
            could swap reasons. This one also files each failure under its channel number, and remembers (per
            thread) which number the calling thread's open got, so :meth:`open_failure` is exact."""

            def _next_channel(self) -> int:
                chanid: int = super()._next_channel()
                self._envprobe_local().chanid = chanid
                return chanid

            def _envprobe_local(self) -> Any:
                if not hasattr(self, "_envprobe_tl"):
                    self._envprobe_tl = threading.local()
                    self._envprobe_failures: dict[int, Any] = {}
                return self._envprobe_tl

            def open_failure(self) -> Any:
                """The reason this thread's last channel open failed (a ChannelException), or None."""
                chanid = getattr(self._envprobe_local(), "chanid", None)
                if chanid is None:
                    return None
                with self.lock:
                    return self._envprobe_failures.pop(chanid, None)

            def _parse_channel_open_failure(self, m: Any) -> None:
                chanid = m.get_int()
                reason = m.get_int()
                reason_str = m.get_text()
                m.get_text()  # language
                self._log(DEBUG, f"channel {chanid} open failed: {reason}: {reason_str}")
                self._envprobe_local()
                with self.lock:
                    exc = paramiko.ChannelException(reason, reason_str or "Connect failed")
                    self._envprobe_failures[chanid] = exc
                    self.saved_exception = exc
                    if chanid in self.channel_events:
                        self._channels.delete(chanid)
                        if chanid in self.channel_events:
                            self.channel_events[chanid].set()
                            del self.channel_events[chanid]

        _transport_class = _Transport
    return _transport_class(sock, **kwargs)


class SshTransport(Transport):
    is_local = False

    def __init__(
        self,
        name: str,
        address: str,
        port: int = 22,
        user: str | None = None,
        key_file: str | None = None,
        password: str | None = None,
        passphrase: str | None = None,
        known_hosts: str | None = None,
        accept_new_hostkeys: bool = False,
        connect_timeout: float = 10.0,
        jump: SshTransport | None = None,
        allow_agent: bool = True,
    ):
        super().__init__()
        self.name = name
        self.address = address
        self.port = port
        self.user = user or _local_user()
        self.key_file = key_file
        self.password = password
        self.passphrase = passphrase
        self.known_hosts = known_hosts or os.path.expanduser("~/.ssh/known_hosts")
        self.accept_new_hostkeys = accept_new_hostkeys
        self.connect_timeout = connect_timeout
        self.jump = jump
        self.allow_agent = allow_agent
        self._client: Any = None
        self._failure: HostUnavailable | None = None
        self._lock = threading.Lock()
        #: exec requests sent on this connection (the batching target is a handful per host)
        self.exec_count = 0

    @property
    def os_family(self) -> str:
        """From the server's SSH banner (no round trip): Windows' OpenSSH says ``OpenSSH_for_Windows``."""
        return os_family_from_banner(self.server_banner() or "")

    def server_banner(self) -> str | None:
        """The server's SSH identification string (``SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3``), after login."""
        tr = self.client().get_transport()
        return getattr(tr, "remote_version", None) if tr is not None else None

    # -- connection --------------------------------------------------------------------------------------
    def _where(self) -> str:
        via = f" via {self.jump.name}" if self.jump is not None else ""
        return f"{self.user}@{self.address}:{self.port}{via}"

    def client(self) -> Any:
        """The logged-in paramiko client, connecting on first use. A failure is remembered for the whole scan,
        so thirty checks on a dead host cost one connection attempt, not thirty."""
        with self._lock:
            if self._client is not None:
                return self._client
            if self._failure is not None:
                raise self._failure
            try:
                self._client = self._connect()
            except HostUnavailable as exc:
                self._failure = exc
                raise
            return self._client

    def _open_socket(self) -> Any:
        deadline = self.connect_timeout
        if self.jump is not None:
            try:
                return self.jump.connect(self.address, self.port, deadline)
            except HostUnavailable as exc:
                raise HostUnavailable(exc.reason, t(
                    f"{self.name}: the jump host {self.jump.name} is not usable: {exc.message['en']}",
                    f"{self.name}：跳板机 {self.jump.name} 不可用：{exc.message['zh-CN']}",
                ), exc.hint) from None
            except OSError as exc:
                raise self._socket_failure(exc, via_jump=True) from None
        try:
            sock = socket.create_connection((self.address, self.port), timeout=deadline)
        except OSError as exc:
            raise self._socket_failure(exc) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _socket_failure(self, exc: OSError, via_jump: bool = False) -> HostUnavailable:
        where = self._where()
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return HostUnavailable("timeout", t(
                f"SSH to {where}: no answer within {self.connect_timeout:g} s (a firewall dropping port "
                f"{self.port}, or the host is down)",
                f"SSH 连接 {where}：{self.connect_timeout:g} 秒内无响应"
                f"（防火墙丢弃了 {self.port} 端口的包，或主机已关机）",
            ), t(f"check that the host is up and that TCP {self.port} is allowed from here",
                 f"确认主机已开机，且本机到 TCP {self.port} 端口的访问已放行"))
        if isinstance(exc, ConnectionRefusedError):
            return HostUnavailable("unreachable", t(
                f"SSH to {where}: connection refused (no SSH server listening on port {self.port}, or a firewall "
                "rejects it)",
                f"SSH 连接 {where}：连接被拒绝（{self.port} 端口没有 SSH 服务在监听，或被防火墙拒绝）",
            ), t("check that sshd runs on the host and the port in the inventory is right",
                 "确认主机上 sshd 正在运行，且清单中的端口正确"))
        if isinstance(exc, socket.gaierror):
            return HostUnavailable("unreachable", t(
                f"SSH to {where}: the name {self.address} does not resolve ({exc.strerror or exc})",
                f"SSH 连接 {where}：无法解析主机名 {self.address}（{exc.strerror or exc}）",
            ), t("check the address in the inventory or the DNS/hosts entry",
                 "检查清单中的地址，或 DNS / hosts 配置"))
        return HostUnavailable("unreachable", t(
            f"SSH to {where}: {exc.strerror or exc} (no route to the host)",
            f"SSH 连接 {where}：{exc.strerror or exc}（到主机的网络不通）",
        ), t("check the address, the routing and firewalls between here and the host",
             "检查地址、路由以及本机与主机之间的防火墙"))

    def _check_key(self) -> Any:
        """A key file's own problems (missing, protected by a passphrase none was given for, wrong passphrase)
        are found here, before any network traffic, and named as such — paramiko would report them as a rejected
        login or an unreadable banner."""
        if not self.key_file:
            return None
        import paramiko

        where = self._where()
        hint = t("give the key's passphrase as `passphrase: ${env:NAME}` for the host in the inventory, or use "
                 "--ask-passphrase", "请在清单中为该主机设置 `passphrase: ${env:变量名}`，或使用 --ask-passphrase")
        try:  # loaded once, here, and handed to paramiko (a passphrase's KDF is slow by design)
            return paramiko.PKey.from_path(self.key_file,
                                           password=self.passphrase.encode() if self.passphrase else None)
        except FileNotFoundError:
            raise HostUnavailable("auth-failed", t(
                f"SSH to {where}: the key file {self.key_file} does not exist",
                f"SSH 连接 {where}：密钥文件 {self.key_file} 不存在",
            ), t("check `key:` in the inventory (or IdentityFile in the SSH config)",
                 "请检查清单中的 `key:`（或 SSH 配置中的 IdentityFile）")) from None
        except PermissionError:
            raise HostUnavailable("auth-failed", t(
                f"SSH to {where}: the key file {self.key_file} cannot be read (permission denied)",
                f"SSH 连接 {where}：无权读取密钥文件 {self.key_file}",
            ), t("run envprobe as the key's owner, or fix the file's permissions",
                 "请以密钥文件所有者身份运行 envprobe，或修正文件权限")) from None
        except (paramiko.PasswordRequiredException, TypeError) as exc:
            # cryptography says so with a TypeError ("Key is password-protected, but password was not provided")
            if isinstance(exc, TypeError) and "password" not in str(exc).lower():
                raise
            raise HostUnavailable("auth-failed", t(
                f"SSH to {where}: the key {self.key_file} is protected by a passphrase and none was given; "
                "nothing was sent",
                f"SSH 连接 {where}：密钥 {self.key_file} 有口令保护，但未提供口令；未发送任何内容",
            ), hint) from None
        except (paramiko.SSHException, ValueError) as exc:
            if self.passphrase:
                raise HostUnavailable("auth-failed", t(
                    f"SSH to {where}: the passphrase for the key {self.key_file} is wrong; nothing was sent",
                    f"SSH 连接 {where}：密钥 {self.key_file} 的口令不正确；未发送任何内容",
                ), hint) from None
            raise HostUnavailable("auth-failed", t(
                f"SSH to {where}: {self.key_file} is not a private key envprobe can read ({exc})",
                f"SSH 连接 {where}：{self.key_file} 不是可读取的私钥（{exc}）",
            ), t("give the private key (not the .pub file) in `key:`", "请在 `key:` 中给出私钥（不是 .pub 文件）")) \
                from None

    def _connect(self) -> Any:
        import paramiko

        pkey = self._check_key()
        sock = self._open_socket()
        client = paramiko.SSHClient()
        try:
            if os.path.exists(self.known_hosts):
                client.load_host_keys(self.known_hosts)
        except (OSError, paramiko.SSHException) as exc:
            raise HostUnavailable("hostkey-unknown", t(
                f"cannot read the known-hosts file {self.known_hosts}: {exc}",
                f"无法读取 known-hosts 文件 {self.known_hosts}：{exc}",
            )) from None
        client.set_missing_host_key_policy(_HostKeyPolicy(self.known_hosts, self.accept_new_hostkeys,
                                                          _known_hosts_lock))
        where = self._where()
        try:
            client.connect(
                self.address, port=self.port, username=self.user, sock=sock,
                pkey=pkey, key_filename=None if pkey is not None else self.key_file, password=self.password,
                passphrase=self.passphrase,
                timeout=self.connect_timeout, banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout, channel_timeout=self.connect_timeout,
                allow_agent=self.allow_agent and self.password is None, look_for_keys=self.key_file is None,
                transport_factory=_transport_factory,
            )
        except _UnknownKey as exc:
            client.close()
            fp = fingerprint(exc.key)
            raise HostUnavailable("hostkey-unknown", t(
                f"SSH to {where}: the host key is not known ({exc.key.get_name()} {fp}); nothing was sent. "
                f"Compare the fingerprint with the one the client's administrator reads on the server "
                f"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then run again with --accept-new-hostkeys "
                f"to record it in {self.known_hosts}",
                f"SSH 连接 {where}：主机密钥未知（{exc.key.get_name()} {fp}），未发送任何内容。请与客户管理员在服务器上"
                f"读取的指纹（ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub）核对后，加 --accept-new-hostkeys 重新运行，"
                f"密钥将记录到 {self.known_hosts}",
            ), t("verify the fingerprint out of band, then use --accept-new-hostkeys",
                 "通过其他渠道核对指纹后使用 --accept-new-hostkeys")) from None
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostUnavailable("hostkey-changed", t(
                f"SSH to {where}: THE HOST KEY HAS CHANGED (now {exc.key.get_name()} {fingerprint(exc.key)}, "
                f"known as {fingerprint(exc.expected_key)}). Someone may be intercepting the connection, or the "
                f"server was reinstalled. Refused, even with --accept-new-hostkeys",
                f"SSH 连接 {where}：主机密钥已变更（当前 {exc.key.get_name()} {fingerprint(exc.key)}，"
                f"已记录的是 {fingerprint(exc.expected_key)}）。可能有人在拦截连接，也可能服务器已重装。已拒绝连接，"
                f"即使使用 --accept-new-hostkeys 也不会接受",
            ), t(f"ask the client whether the server was reinstalled; only then remove the old entry from "
                 f"{self.known_hosts} (ssh-keygen -R)",
                 f"先向客户确认服务器是否重装过；确认后再从 {self.known_hosts} 删除旧记录（ssh-keygen -R）")) from None
        except (paramiko.AuthenticationException, paramiko.BadAuthenticationType) as exc:
            client.close()
            allowed = getattr(exc, "allowed_types", None)
            extra = f"; the server accepts: {', '.join(allowed)}" if allowed else ""
            extra_zh = f"；服务器接受的方式：{', '.join(allowed)}" if allowed else ""
            raise HostUnavailable("auth-failed", t(
                f"SSH to {where}: the server rejected the login ({exc}){extra}",
                f"SSH 连接 {where}：服务器拒绝登录（{exc}）{extra_zh}",
            ), t("check the user, the key or password in the inventory, and that the key is in the account's "
                 "authorized_keys",
                 "检查清单中的用户名、密钥或密码，以及该公钥是否在账号的 authorized_keys 中")) from None
        except TimeoutError as exc:
            client.close()
            raise self._socket_failure(TimeoutError(str(exc))) from None
        except paramiko.SSHException as exc:
            client.close()
            text = str(exc)
            if "authentication methods" in text.lower():
                raise HostUnavailable("auth-failed", t(
                    f"SSH to {where}: no key, agent or password to log in with",
                    f"SSH 连接 {where}：没有可用于登录的密钥、agent 或密码",
                ), t("give a key (key:) or password (password: ${env:...}) in the inventory, an IdentityFile in "
                     "~/.ssh/config, or use --ask-pass",
                     "在清单中提供密钥（key:）或密码（password: ${env:...}），或在 ~/.ssh/config 中配置 IdentityFile，"
                     "或使用 --ask-pass")) from None
            reason = "timeout" if "timeout" in text.lower() or "timed out" in text.lower() else "unreachable"
            raise HostUnavailable(reason, t(
                f"SSH to {where}: {text} (is an SSH server listening on port {self.port}?)",
                f"SSH 连接 {where}：{text}（{self.port} 端口上是 SSH 服务吗？）",
            )) from None
        except OSError as exc:
            client.close()
            raise self._socket_failure(exc) from None
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- commands -----------------------------------------------------------------------------------------
    def _exec_raw(
        self, command: str, timeout: float, stdin: str | None = None
    ) -> tuple[int, bytes | None, bytes, float]:
        """(rc, stdout bytes or None on timeout, stderr, ms). Without stdin the command reads /dev/null: closing
        our side of a channel whose command already ended can make sshd drop the whole connection."""
        client = self.client()
        start = time.perf_counter()
        try:
            chan = client.get_transport().open_session(timeout=timeout)
            self.exec_count += 1
            chan.settimeout(timeout)
            if stdin is None:
                chan.exec_command(f"{command} </dev/null")
            else:
                chan.exec_command(command)
                chan.sendall(stdin.encode())
                chan.shutdown_write()  # the command reads until EOF, so it cannot have ended before this
            out, err = _drain(chan, timeout)
            rc = -1 if out is None else chan.recv_exit_status()
            chan.close()
        except (OSError, EOFError) as exc:
            raise TransportError(f"{self.name}: the SSH connection failed during a command: {exc}") from exc
        except Exception as exc:  # paramiko.SSHException and friends
            raise TransportError(f"{self.name}: the SSH connection failed during a command: {exc}") from exc
        return rc, out, err, (time.perf_counter() - start) * 1000

    def timed_run(self, cmd: str, timeout: float = 10.0) -> tuple[CommandResult, float, float]:
        """The channel is opened first (one round trip), then t0, the exec request and the output, t1: the
        bracket holds one round trip and the command, not the channel's set-up."""
        client = self.client()
        try:
            chan = client.get_transport().open_session(timeout=timeout)
            self.exec_count += 1
            chan.settimeout(timeout)
            t0 = time.time()
            chan.exec_command(f"LC_ALL=C LANG=C sh -c {shlex.quote(cmd)} </dev/null")
            out, err = _drain(chan, timeout)
            t1 = time.time()
            rc = -1 if out is None else chan.recv_exit_status()
            chan.close()
        except (OSError, EOFError) as exc:
            raise TransportError(f"{self.name}: the SSH connection failed during a command: {exc}") from exc
        except Exception as exc:  # paramiko.SSHException and friends
            raise TransportError(f"{self.name}: the SSH connection failed during a command: {exc}") from exc
        res = CommandResult(rc, (out or b"").decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                            (t1 - t0) * 1000, timed_out=out is None)
        return res, t0, t1

    def _exec(self, command: str, timeout: float, stdin: str | None = None) -> CommandResult:
        rc, out, err, ms = self._exec_raw(command, timeout, stdin)
        return CommandResult(rc, (out or b"").decode("utf-8", "replace"), err.decode("utf-8", "replace"), ms,
                             timed_out=out is None)

    def run(
        self,
        cmd: Sequence[str] | str,
        timeout: float = 10.0,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> CommandResult:
        line = cmd if isinstance(cmd, str) else shlex.join(cmd)
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        # servers rarely accept SetEnv/AcceptEnv: pass variables in the command line itself
        full = f"{prefix} sh -c {shlex.quote(line)}" if prefix else line
        return self._exec(full, timeout, stdin)

    def start(self, cmd: str, timeout: float) -> Started:
        """Run a command on its own channel, streaming its output to the caller as it arrives."""
        client = self.client()
        started = Started()
        try:
            chan = client.get_transport().open_session(timeout=self.connect_timeout)
            self.exec_count += 1
            chan.exec_command("LC_ALL=C LANG=C sh -c " + shlex.quote(cmd) + " </dev/null")
        except Exception as exc:  # noqa: BLE001 - paramiko raises several types
            raise TransportError(f"{self.name}: cannot start a command: {exc}") from exc

        def pump() -> None:
            import select

            t0 = time.perf_counter()
            deadline = time.monotonic() + timeout
            out: list[bytes] = []
            err: list[bytes] = []
            fd = chan.fileno()
            timed_out = False
            while True:
                while chan.recv_ready():
                    data = chan.recv(65536)
                    out.append(data)
                    started._feed(data.decode("utf-8", "replace"))
                while chan.recv_stderr_ready():
                    err.append(chan.recv_stderr(65536))
                if chan.eof_received and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                select.select([fd], [], [], min(left, 1.0))
            rc = -1 if timed_out else chan.recv_exit_status()
            chan.close()
            started._finish(CommandResult(rc, b"".join(out).decode("utf-8", "replace"),
                                          b"".join(err).decode("utf-8", "replace"),
                                          (time.perf_counter() - t0) * 1000, timed_out=timed_out))

        threading.Thread(target=pump, daemon=True, name=f"start@{self.name}").start()
        return started

    def read_file(self, path: str, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        rc, out, err, _ = self._exec_raw(f"head -c {int(max_bytes)} -- {shlex.quote(path)}",
                                         timeout=self.connect_timeout + 20)
        if rc != 0 or out is None:
            low = err.decode("utf-8", "replace").lower()
            if "no such file" in low:
                raise FileNotFoundError(2, f"{path}: no such file on {self.name}")
            if "permission denied" in low:
                raise PermissionError(13, f"{path}: permission denied on {self.name}")
            raise TransportError(f"{self.name}: cannot read {path}: {low.strip() or 'timed out'}")
        return out  # bytes as they are: a DER certificate or a GBK file must arrive unchanged

    def put(self, local_path: str, remote_path: str) -> None:
        sftp = self.client().open_sftp()
        try:
            sftp.put(local_path, remote_path)
        finally:
            sftp.close()

    def get(self, remote_path: str, local_path: str) -> None:
        sftp = self.client().open_sftp()
        try:
            sftp.get(remote_path, local_path)
        finally:
            sftp.close()

    def connect(self, host: str, port: int, timeout: float) -> Any:
        """A TCP stream to host:port opened **by this host** (direct-tcpip). Failures map to the same exceptions
        a local socket raises: ConnectionRefusedError, TimeoutError, OSError(EHOSTUNREACH …)."""
        import errno

        import paramiko

        client = self.client()
        tr = client.get_transport()
        try:
            chan = tr.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout)
        except EOFError as exc:
            raise TransportError(f"{self.name}: the SSH connection was lost") from exc
        except paramiko.ChannelException as shared:
            # the exception paramiko raised may belong to another thread's open: take this thread's own
            own = tr.open_failure() if hasattr(tr, "open_failure") else None
            raise _open_failure_error(own or shared, self.name) from None
        except paramiko.SSHException as exc:
            own = tr.open_failure() if hasattr(tr, "open_failure") else None
            if own is not None:  # another thread took our reason from the shared slot; ours is filed apart
                raise _open_failure_error(own, self.name) from None
            if "timeout" in str(exc).lower():
                raise TimeoutError(f"no answer within {timeout:g} s (from {self.name})") from None
            raise OSError(errno.ECONNABORTED, f"{self.name}: {exc}") from None
        chan.settimeout(timeout)
        return chan

    # -- batched sources ------------------------------------------------------------------------------------
    def _fetch_uncached(self, sources: Sequence[Source], timeout: float) -> dict[Source, CommandResult]:
        """All sources in one exec: a generated sh script prints each one's output, error and status between
        markers that carry a per-batch nonce (so no output can forge them)."""
        if not sources:
            return {}
        nonce = _secrets.token_hex(6)
        script = batch_script(sources, nonce)
        res = self._exec("sh -s", timeout=max(timeout, 5.0) + 5.0, stdin=script)
        parsed = parse_batch(res.stdout, len(sources), nonce)
        out: dict[Source, CommandResult] = {}
        for i, src in enumerate(sources):
            if i in parsed:
                rc, stdout, stderr = parsed[i]
                out[src] = CommandResult(rc, stdout, stderr, res.duration_ms)
            else:
                why = "the batch was cut short" + (" (timed out)" if res.timed_out else "")
                out[src] = CommandResult(-1, "", f"{why}: {res.stderr.strip()[:200]}", res.duration_ms,
                                         timed_out=res.timed_out)
        return out


def _open_failure_error(exc: Any, where: str) -> OSError:
    """The OSError a local connect() would have raised, from the server's reason for a failed direct-tcpip."""
    import errno

    text = (getattr(exc, "text", "") or "").lower()
    if "refused" in text:
        return ConnectionRefusedError(errno.ECONNREFUSED, f"connection refused (from {where})")
    if "network is unreachable" in text:
        return OSError(errno.ENETUNREACH, f"network is unreachable (from {where})")
    if "no route" in text or "unreachable" in text or "prohibited" in text:
        return OSError(errno.EHOSTUNREACH, f"no route to host (from {where})")
    if "timed out" in text:
        return TimeoutError(f"no answer (from {where})")
    if "name" in text or "resolve" in text:
        return socket.gaierror(socket.EAI_NONAME, f"name does not resolve on {where}")
    return OSError(errno.ECONNABORTED, f"{where} refused to open the connection: {getattr(exc, 'text', exc)}")


def os_family_from_banner(banner: str) -> str:
    """``windows`` for Windows' OpenSSH (``SSH-2.0-OpenSSH_for_Windows_8.1``) and the common Windows servers
    (Bitvise WinSSHD, freeSSHd, …), else ``posix``."""
    low = banner.lower()
    return "windows" if any(k in low for k in ("for_windows", "winsshd", "freesshd", "windows")) else "posix"


def batch_script(sources: Sequence[Source], nonce: str, per_source_timeout: float = 20.0) -> str:
    """One POSIX sh script fetching every source; see :func:`parse_batch` for its output format."""
    lines = [
        "export LC_ALL=C LANG=C",
        't=$(mktemp -d 2>/dev/null || { d=/tmp/envprobe.$$; mkdir -m 700 "$d" && echo "$d"; })',
        'trap \'rm -rf "$t"\' EXIT',
        f"T=; command -v timeout >/dev/null 2>&1 && T='timeout -k 1 {int(per_source_timeout)}'",
    ]
    for i, src in enumerate(sources):
        quoted = shlex.quote(src.target)
        if src.kind == "file":
            body = f"cat -- {quoted}"
        elif src.user:
            body = f"$T sh -c {quoted}"  # a user's command: its own shell and timeout
        else:
            body = f"(\n{src.target}\n)"  # envprobe's own: a subshell, no extra exec
        lines.append(f"printf '%s\\n' '@@{nonce}:{i}:out'")
        lines.append(f'{body} </dev/null 2>"$t/e"; rc=$?')
        lines.append(f"printf '\\n%s\\n' \"@@{nonce}:{i}:err:$rc\"")
        lines.append('[ -s "$t/e" ] && cat "$t/e"')  # most sources write no stderr: no process for them
        lines.append(f"printf '\\n%s\\n' '@@{nonce}:{i}:end'")
    return "\n".join(lines) + "\n"


def parse_batch(text: str, count: int, nonce: str) -> dict[int, tuple[int, str, str]]:
    """{index: (rc, stdout, stderr)} from a batch script's output. Each part was followed by exactly one
    newline that the script added, which is removed again."""
    out: dict[int, tuple[int, str, str]] = {}
    for i in range(count):
        head = f"@@{nonce}:{i}:out\n"
        start = text.find(head)
        if start < 0:
            continue
        start += len(head)
        err_mark = f"\n@@{nonce}:{i}:err:"
        mid = text.find(err_mark, start)
        if mid < 0:
            continue
        eol = text.find("\n", mid + len(err_mark))
        if eol < 0:
            continue
        try:
            rc = int(text[mid + len(err_mark): eol])
        except ValueError:
            rc = -1
        end_mark = f"\n@@{nonce}:{i}:end\n"
        end = text.find(end_mark, eol + 1)
        if end < 0:
            continue
        out[i] = (rc, text[start:mid], text[eol + 1: end])
    return out


def _drain(chan: Any, timeout: float) -> tuple[bytes | None, bytes]:
    """Read stdout and stderr until the command closes its output; (None, err) on timeout. Waits on the
    channel's file descriptor (select), never by polling."""
    import select

    deadline = time.monotonic() + timeout
    out: list[bytes] = []
    err: list[bytes] = []
    fd = chan.fileno()
    while True:
        while chan.recv_ready():
            out.append(chan.recv(65536))
        while chan.recv_stderr_ready():
            err.append(chan.recv_stderr(65536))
        if chan.eof_received and not chan.recv_ready() and not chan.recv_stderr_ready():
            return b"".join(out), b"".join(err)
        left = deadline - time.monotonic()
        if left <= 0:
            return None, b"".join(err)
        select.select([fd], [], [], min(left, 1.0))


def _local_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database entry (containers)
        return "root"
