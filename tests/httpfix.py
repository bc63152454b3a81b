"""Reusable HTTP/TLS test fixtures: real servers on loopback, a test CA, certificates, a forward proxy.

Everything listens on 127.0.0.1 on a free port chosen by the kernel, runs in threads of the test process, and is
stopped at teardown (servers shut down, every socket closed, threads joined). Nothing resolves a name and nothing
leaves loopback: the proxy refuses any destination that is not a loopback IP address.

Use from a test module::

    from tests.httpfix import *  # noqa: F403 - fixtures: http_server, https_server, tls_server, proxy, certs, ...

* ``http_server`` / ``https_server``: :class:`Server` with the routes of :class:`Handler` (``/ok``, ``/404``,
  ``/500``, ``/r1`` → ``/r2`` → ``/ok``, ``/slow?s=N``, ``/auth``, ``/big``, ``/binary``, ``/gbk``, ``/echo``,
  ``/loop``, ``/to?url=...``); ``.url(path)``, ``.hits[path]``.
* ``tls_server(cert_pem, key_pem)``: a factory for HTTPS servers with any certificate.
* ``certs``: a session-wide :class:`Certs` — the trustme test CA (``ca_path``), a valid leaf for 127.0.0.1 and
  ``app.example.test``, an expired one and one expiring in 10 days from the same CA, a self-signed RSA one.
* ``proxy`` / ``make_proxy(auth=...)``: :class:`ForwardProxy` (CONNECT and absolute-URI forwarding), counting what it
  did in ``.connects`` and ``.forwards``.
* :func:`free_port`: a port with nothing listening (for "refused").
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import selectors
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

AUTH_USER = "mes-admin"
BODY_OK = "OK: envprobe test server 你好".encode()
GBK_PAGE = "<html><body>中文页面：制造执行系统</body></html>"
BINARY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8

__all__ = [
    "AUTH_USER", "BODY_OK", "GBK_PAGE", "Certs", "ForwardProxy", "Server", "certs", "free_port", "http_server",
    "https_server", "make_proxy", "proxy", "silent_listener", "tls_server",
]


def free_port() -> int:
    """A loopback port nothing listens on (bound and released: refused when connected to)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ===========================================================================================================
# HTTP server
# ===========================================================================================================
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    server: Server._HTTPServer

    def setup(self) -> None:
        # answer as production servers do: no Nagle delay between the header and body writes (on loopback it
        # would add the client's 40 ms delayed ACK to every TLS response)
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815

    def _send(self, code: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        owner = self.server.owner
        with owner.lock:
            owner.hits[path] += 1
            owner.requests.append((self.command, self.path, dict(self.headers)))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path == "/ok":
            self._send(200, BODY_OK, headers={"X-Served-By": "envprobe-test"})
        elif path == "/404":
            self._send(404, b"not found")
        elif path == "/500":
            self._send(500, b"internal error")
        elif path == "/r1":
            self._send(301, b"", headers={"Location": "/r2"})
        elif path == "/r2":
            self._send(302, b"", headers={"Location": "/ok"})
        elif path == "/loop":
            self._send(302, b"", headers={"Location": "/loop"})
        elif path == "/to":
            self._send(302, b"", headers={"Location": query["url"][0]})
        elif path == "/slow":
            owner.stopping.wait(float(query.get("s", ["5"])[0]))
            self._send(200, b"slow OK")
        elif path == "/drip":  # headers at once, then a byte every 0.2 s, no length: only a deadline ends it
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            while not owner.stopping.wait(0.2):
                try:
                    self.wfile.write(b".")
                    self.wfile.flush()
                except OSError:
                    break
        elif path == "/auth":
            want = "Basic " + base64.b64encode(f"{AUTH_USER}:{owner.password}".encode()).decode()
            if self.headers.get("Authorization") == want:
                self._send(200, b"welcome, authenticated")
            else:
                self._send(401, b"who are you?", headers={"WWW-Authenticate": 'Basic realm="mes"'})
        elif path == "/big":
            self._send(200, b"0123456789abcde\n" * (200 * 64))  # 200 KiB
        elif path == "/binary":
            self._send(200, BINARY, ctype="image/png")
        elif path == "/gbk":
            self._send(200, GBK_PAGE.encode("gbk"), ctype="text/html")
        elif path == "/echo":
            seen = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            doc = {"method": self.command, "path": self.path, "headers": seen, "body": body.decode("utf-8", "replace")}
            self._send(200, json.dumps(doc).encode(), ctype="application/json")
        else:
            self._send(404, b"no such route")


class Server:
    """A threaded HTTP(S) server on 127.0.0.1 with :class:`Handler`'s routes."""

    class _HTTPServer(ThreadingHTTPServer):
        daemon_threads = True
        owner: Server

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # clients that time out or refuse our certificate are part of the tests

    class _HTTPSServer(_HTTPServer):
        ssl_context: ssl.SSLContext

        def finish_request(self, request: Any, client_address: Any) -> None:
            request.settimeout(5)
            try:
                tls = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client gave up on our certificate: nothing to serve
            try:
                self.RequestHandlerClass(tls, client_address, self)
            finally:
                with contextlib.suppress(OSError):
                    tls.close()

    def __init__(self, ssl_context: ssl.SSLContext | None = None, password: str = "s3cret-pw"):
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.password = password
        cls = Server._HTTPSServer if ssl_context is not None else Server._HTTPServer
        self.httpd = cls(("127.0.0.1", 0), Handler)
        self.httpd.owner = self
        if ssl_context is not None:
            self.httpd.ssl_context = ssl_context  # type: ignore[attr-defined]
        self.scheme = "https" if ssl_context is not None else "http"
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True, name=f"test-{self.scheme}-{self.port}")
        self.thread.start()

    def url(self, path: str = "/ok", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.stopping.set()  # wakes slow handlers
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


# ===========================================================================================================
# Certificates
# ===========================================================================================================
class Certs:
    """The test CA and the leaf certificates the tests need, as PEM bytes and files."""

    def __init__(self, folder: Path):
        import trustme

        self.folder = folder
        self.ca = trustme.CA(organization_name="envprobe test CA")
        self.ca_path = str(folder / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        now = dt.datetime.now(dt.timezone.utc)
        self.valid = self._leaf("valid", self.ca.issue_cert("127.0.0.1", "app.example.test",
                                                            common_name="app.example.test"))
        self.expired = self._leaf("expired", self.ca.issue_cert(
            "127.0.0.1", "app.example.test", not_before=now - dt.timedelta(days=60),
            not_after=now - dt.timedelta(days=3)))
        self.soon = self._leaf("soon", self.ca.issue_cert(
            "127.0.0.1", "app.example.test", not_before=now - dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=10)))
        self.self_signed = self_signed_cert("selfsigned.example.test", ["selfsigned.example.test", "127.0.0.1"])
        self.names_only = self._leaf("names", self.ca.issue_cert("app.example.test"))  # no IP SAN

    def _leaf(self, name: str, leaf: Any) -> tuple[bytes, bytes]:
        return leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes()

    def server_context(self, pair: tuple[bytes, bytes]) -> ssl.SSLContext:
        return server_context(*pair, self.folder)


def self_signed_cert(cn: str, sans: list[str], days: int = 365, bits: int = 2048) -> tuple[bytes, bytes]:
    """A self-signed RSA certificate (PEM cert, PEM key) generated with cryptography."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "某制造企业 (test)")])
    alt: list[x509.GeneralName] = []
    for s in sans:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            alt.append(x509.DNSName(s))
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert_pem: bytes, key_pem: bytes, folder: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(dir=folder) as d:
        cert_file, key_file = Path(d) / "cert.pem", Path(d) / "key.pem"
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx


# ===========================================================================================================
# Forward proxy
# ===========================================================================================================
class ForwardProxy:
    """A small HTTP forward proxy on 127.0.0.1: CONNECT tunnels and absolute-URI requests, loopback only.

    ``connects`` lists "host:port" of each tunnel opened, ``forwards`` each forwarded URL, ``refused`` what it
    would not do. With ``auth=(user, password)`` it answers 407 unless Proxy-Authorization matches.
    """

    def __init__(self, auth: tuple[str, str] | None = None):
        self.auth = auth
        self.connects: list[str] = []
        self.forwards: list[str] = []
        self.refused: list[str] = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._accept, daemon=True, name=f"test-proxy-{self.port}")
        self.thread.start()

    def url(self, with_auth: bool = False) -> str:
        if with_auth and self.auth:
            return f"http://{self.auth[0]}:{self.auth[1]}@127.0.0.1:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    @property
    def count(self) -> int:
        return len(self.connects) + len(self.forwards)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self._track(conn)
            th = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(th)
            th.start()

    def _track(self, s: socket.socket) -> None:
        with self.lock:
            self._open.add(s)

    def _close(self, *socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()
            with self.lock:
                self._open.discard(s)

    @staticmethod
    def _read_head(s: socket.socket) -> tuple[bytes, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the end of the head")
            data += chunk
            if len(data) > 65536:
                raise ConnectionError("head too long")
        head, _, rest = data.partition(b"\r\n\r\n")
        return head, rest

    def _reply(self, conn: socket.socket, status: str, extra: str = "") -> None:
        with contextlib.suppress(OSError):
            conn.sendall(f"HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            conn.settimeout(10)
            head, rest = self._read_head(conn)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = [ln for ln in lines[1:] if ln]
            if self.auth is not None:
                want = "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
                got = next((ln.split(":", 1)[1].strip() for ln in headers
                            if ln.lower().startswith("proxy-authorization:")), None)
                if got != want:
                    with self.lock:
                        self.refused.append(f"407 {target}")
                    self._reply(conn, "407 Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="p"\r\n')
                    return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                if not _loopback(host):
                    with self.lock:
                        self.refused.append(f"403 {target}")
                    self._reply(conn, "403 Forbidden")
                    return
                try:
                    upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
                except OSError:
                    self._reply(conn, "502 Bad Gateway")
                    return
                self._track(upstream)
                with self.lock:
                    self.connects.append(target)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
                self._pipe(conn, upstream)
                return
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname or not _loopback(parts.hostname):
                with self.lock:
                    self.refused.append(f"403 {target}")
                self._reply(conn, "403 Forbidden")
                return
            try:
                upstream = socket.create_connection((parts.hostname, parts.port or 80), timeout=5)
            except OSError:
                self._reply(conn, "502 Bad Gateway")
                return
            self._track(upstream)
            with self.lock:
                self.forwards.append(target)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            keep = [ln for ln in headers
                    if not ln.lower().startswith(("proxy-authorization:", "proxy-connection:", "connection:"))]
            upstream.sendall(f"{method} {path} HTTP/1.1\r\n".encode() + "\r\n".join(keep).encode("latin-1")
                             + b"\r\nConnection: close\r\n\r\n" + rest)
            # relay the response with "Connection: close", so the client never reuses this connection
            rhead, rrest = self._read_head(upstream)
            rlines = [ln for ln in rhead.decode("latin-1").split("\r\n") if not ln.lower().startswith("connection:")]
            conn.sendall("\r\n".join(rlines).encode("latin-1") + b"\r\nConnection: close\r\n\r\n" + rrest)
            self._pipe(conn, upstream, one_way=True)
        except (OSError, ValueError, ConnectionError):
            pass
        finally:
            self._close(conn, *([upstream] if upstream is not None else []))

    def _pipe(self, a: socket.socket, b: socket.socket, one_way: bool = False) -> None:
        sel = selectors.DefaultSelector()
        a.setblocking(False)
        b.setblocking(False)
        pairs = {b: a} if one_way else {a: b, b: a}
        for s in pairs:
            sel.register(s, selectors.EVENT_READ)
        try:
            while not self.stopping.is_set():
                for key, _ in sel.select(0.1):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = src.recv(65536)
                    except BlockingIOError:
                        continue
                    if not data:
                        return
                    dst = pairs[src]
                    dst.setblocking(True)
                    dst.sendall(data)
                    dst.setblocking(False)
        finally:
            sel.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()
        with self.lock:
            leftover = list(self._open)
        self._close(*leftover)
        for th in self._threads:
            th.join(5)


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: the proxy never resolves names


def silent_listener() -> tuple[socket.socket, int]:
    """A socket that listens but never accepts: TCP connects (the kernel completes the handshake), nothing is
    ever said — a TLS client waits for the ServerHello."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s, int(s.getsockname()[1])


# ===========================================================================================================
# pytest fixtures
# ===========================================================================================================
@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def http_server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture
def https_server(certs: Certs) -> Iterator[Server]:
    srv = Server(certs.server_context(certs.valid))
    yield srv
    srv.stop()


@pytest.fixture
def tls_server(certs: Certs) -> Iterator[Callable[[tuple[bytes, bytes]], Server]]:
    started: list[Server] = []

    def start(pair: tuple[bytes, bytes]) -> Server:
        srv = Server(certs.server_context(pair))
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def make_proxy() -> Iterator[Callable[..., ForwardProxy]]:
    started: list[ForwardProxy] = []

    def start(auth: tuple[str, str] | None = None) -> ForwardProxy:
        p = ForwardProxy(auth)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def proxy(make_proxy: Callable[..., ForwardProxy]) -> ForwardProxy:
    return make_proxy()


def wait_until(cond: Callable[[], bool], timeout: float = 2.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()
