"""``http``: request a URL and observe the status, timings, redirects, headers, body and the proxy used.

**A probe observes; data judges.** A 4xx or 5xx answer is a status like any other. A request that gets no
answer at all (refused, timed out, certificate not trusted, name not resolved, proxy refused) is also an
observation: ``status`` is null and ``error`` / ``error_kind`` say what happened, so a checklist can expect
``status: 200`` (and fail, not-ready, with the reason and what to check next in the message) or, as sites in
China often require, expect that something is *not* reachable (``error_kind: "in [refused, timeout]"``).
Only a problem with the check itself (an unreadable ``ca_bundle``, a SOCKS proxy in the environment, an
invalid URL) is an error result. Write ``expect: {status: ...}`` on every http check: without
expectations a check passes whenever the probe ran, whatever it observed.

**Phase timings.** Every TCP connection the client opens goes through an instrumented urllib3 connection
class that times name resolution (``dns_ms``), the TCP connect (``connect_ms``), the TLS handshake
(``tls_ms``) and the wait from the request being sent to the response headers (``ttfb_ms``). They are
per-phase durations, not cumulative; summed over the hops of a redirect chain; null when no hop had the
phase (an IP address needs no resolution, plain http no handshake, a kept-alive connection neither).
Through a proxy the client never sees the target's resolution or TCP connect: ``dns_ms`` and ``connect_ms``
then describe the hop to the proxy (for https, ``connect_ms`` includes the CONNECT exchange that opens the
tunnel), ``tls_ms`` is still the handshake with the target (inside the tunnel); for plain http through a
proxy the proxy's own connection to the target is inside ``ttfb_ms``.

**Proxies.** ``proxy: URL`` uses that proxy (``proxy_source: param``); ``proxy: none`` connects directly;
without ``proxy:`` the probing host's environment decides, as curl and requests do: ``http_proxy`` /
``https_proxy`` / ``all_proxy`` (lower-case names win over upper-case), minus ``no_proxy`` (host names and
their subdomains, ``.domain``, IP addresses, CIDR ranges, ``host:port``, ``*``). It is applied again to each
redirect hop. ``proxy_used`` never shows the proxy's credentials. Nothing else comes from the environment
(no ``.netrc``, no ``REQUESTS_CA_BUNDLE``): what the check does is what the checklist says.

**Trust.** ``verify: true`` checks the certificate against the system store of the machine running
envprobe (on a Python without one, e.g. python.org's macOS build, certifi's bundle), or only against
``ca_bundle`` when given. Basic-auth credentials and request headers are never part of the observed facts;
the runner also masks every ``${env:...}`` value in all output.

**Where it runs (vantage).** requests, urllib3 and ssl run in the envprobe process (the engineer's laptop);
every TCP connection — to the target or to the proxy — is opened by ``ctx.transport.connect()``, that is *from*
the check's host. Locally that is a plain socket. Over SSH it will be a ``direct-tcpip`` channel; for ssl and
http.client to work unchanged the SSH transport must hand it back as a real socket (one end of a
``socket.socketpair()`` pumped to the channel), as ``Transport.connect`` promises. On a remote vantage the host
resolves the name while connecting, so ``dns_ms`` is null and ``connect_ms`` includes the resolution; the
environment's proxy variables are read on that host (``env``, once per host); ``ca_bundle`` is read there
too (``transport.read_file``). The system trust store is the laptop's; give ``ca_bundle`` (e.g.
``/etc/pki/tls/certs/ca-bundle.crt`` on the vantage host) to judge with the host's own store. Nothing is
installed on the host.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from envprobe.model import Text, join_text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator, model_validator
from envprobe.transport.base import pump

if TYPE_CHECKING:
    import ssl

ErrorKind = Literal["refused", "timeout", "tls", "dns", "proxy", "other"]
ProxySource = Literal["param", "environment", "none"]

MAX_REDIRECTS = 20
_TOKEN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _duration(v: Any) -> Any:
    from envprobe.loader import parse_duration

    return parse_duration(v)


class HttpParams(Model):
    url: str = Field(description="the URL to request: http:// or https://, e.g. https://mes.example.cn/health")
    method: str = Field(default="GET", description="the HTTP method (GET, HEAD, POST, ...)")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="request headers to send (e.g. Host, Accept); never shown in "
                                                "results")
    body: str | None = Field(default=None,
                             description="request body, sent as UTF-8 (set Content-Type in headers)")
    timeout: float = Field(default=10.0, gt=0,
                           description="seconds for the whole exchange, redirects and body included "
                                       "('10s', '500ms'); the check's timeout: bounds it too")
    verify: bool = Field(default=True,
                         description="check the server's certificate for https; false: look anyway (the "
                                     "result says the certificate was not checked)")
    ca_bundle: str | None = Field(default=None,
                                  description="PEM file with the CA certificates to trust instead of the system "
                                              "store (e.g. the client's internal CA), read on the probing host")
    proxy: str | None = Field(default=None,
                              description="proxy URL (http://[user:password@]host:port) to use; 'none' to connect "
                                          "directly whatever the environment says; default: the "
                                          "http_proxy/https_proxy/all_proxy and no_proxy variables")
    follow_redirects: bool = Field(default=True,
                                   description=f"follow redirects (up to {MAX_REDIRECTS}); false: observe the "
                                               "first answer, e.g. a 301 and its location header")
    user: str | None = Field(default=None, description="user name for HTTP basic authentication")
    password: str | None = Field(default=None,
                                 description="password for basic authentication, normally ${env:NAME} (a secret: "
                                             "masked in all output)")
    max_body_kb: int = Field(default=64, ge=0, le=16384,
                             description="how much of the response body to read and keep, in KiB")

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> Any:
        return _duration(v) if isinstance(v, str) else v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip()
        parts = urlsplit(v)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("give an http:// or https:// URL with a host, e.g. https://10.0.0.5:8443/health")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError("the URL's port is not a number between 1 and 65535") from None
        return v

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if not _TOKEN.match(v.strip()):
            raise ValueError("give an HTTP method such as GET, HEAD or POST")
        return v.strip().upper()

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip()
        if v.lower() in ("none", "direct", "off", ""):
            return "none"
        full = v if "://" in v else "http://" + v
        parts = urlsplit(full)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("give an http:// proxy URL (http://host:port, http://user:password@host:port), or "
                             "'none'; SOCKS proxies are not supported")
        return full

    @model_validator()
    def _auth(self) -> HttpParams:
        if self.password is not None and not self.user:
            raise ValueError("password is given without user: basic authentication needs both")
        return self


class HttpFacts(Facts):
    status: int | None = Field(description="HTTP status of the final response; null when the exchange failed "
                                           "(see error), including a body that stalled after the headers")
    elapsed_ms: float = Field(description="wall time of the whole exchange: connections, redirects, body read "
                                          "(up to max_body_kb)")
    dns_ms: float | None = Field(description="time resolving names on the probing host; null for an IP address, "
                                             "a reused connection, or a remote vantage (resolved while "
                                             "connecting); through a proxy: the proxy's name")
    connect_ms: float | None = Field(description="TCP connect time (through a proxy: to the proxy, plus the "
                                                 "CONNECT exchange for https); null for a reused connection")
    tls_ms: float | None = Field(description="TLS handshake time with the server; null for plain http")
    ttfb_ms: float | None = Field(description="from the request sent to the response headers received: the "
                                              "server's processing plus one round trip (through a proxy, the "
                                              "proxy's work too)")
    redirects: int = Field(description="redirects followed")
    redirect_chain: list[str] = Field(description="each redirect as 'STATUS URL', the URL being the one that "
                                                  "answered with the redirect, in order")
    final_url: str | None = Field(description="URL of the final response (credentials removed); null when no "
                                              "response came")
    headers: dict[str, str] = Field(description="response headers of the final response, names in lower case "
                                                "(repeated headers joined by ', ')")
    body: str | None = Field(description="the response body as text: the first max_body_kb KiB, decoded by its "
                                         "charset (else UTF-8, else GB18030); null when binary or no response")
    body_truncated: bool = Field(description="the body was longer than max_body_kb and was cut")
    proxy_used: str | None = Field(description="the proxy the (last) request went through, without credentials; "
                                               "null: direct")
    proxy_source: ProxySource = Field(description="where the proxy choice came from: param (proxy:), environment "
                                                  "(http_proxy/https_proxy/all_proxy), none (direct)")
    error: str | None = Field(description="why the exchange failed (no response, or not all of it in time), in "
                                          "one line; null when it did not")
    error_kind: ErrorKind | None = Field(description="refused, timeout, tls, dns, proxy or other; null when a "
                                                     "response came")


# -- pure helpers --------------------------------------------------------------------------------------------
def redact_url(url: str) -> str:
    """The URL without ``user:password@``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def no_proxy_match(host: str, port: int, no_proxy: str) -> bool:
    """Does ``no_proxy`` (curl's and requests' syntax) exempt host:port from the proxy?"""
    host = host.strip("[]").lower().rstrip(".")
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in no_proxy.replace(";", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        want_port: int | None = None
        m = re.match(r"^(\[[^\]]+\]|[^:]+):(\d+)$", entry)
        if m:
            entry, want_port = m.group(1), int(m.group(2))
        if want_port is not None and want_port != port:
            continue
        entry = entry.strip("[]").rstrip(".")
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = entry.lstrip("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def env_proxy(url: str, environ: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """(proxy URL, variable it came from, no_proxy variable that exempted the URL) for ``url``.

    Lower-case variable names win over upper-case ones, as in curl and Python's urllib.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)

    def lookup(name: str) -> tuple[str | None, str | None]:
        for var in (name, name.upper()):
            value = environ.get(var, "").strip()
            if value:
                return value, var
        return None, None

    proxy, var = lookup(f"{scheme}_proxy")
    if proxy is None:
        proxy, var = lookup("all_proxy")
    if proxy is None:
        return None, None, None
    no_proxy, no_var = lookup("no_proxy")
    if no_proxy and no_proxy_match(host, port, no_proxy):
        return None, var, no_var
    return (proxy if "://" in proxy else "http://" + proxy), var, None


_TEXTY = ("text/", "json", "xml", "javascript", "ecmascript", "x-www-form-urlencoded", "yaml", "csv", "html")
_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030"}


def _content_type(value: str | None) -> tuple[str, str | None]:
    if not value:
        return "", None
    mime, _, rest = value.partition(";")
    charset = None
    m = re.search(r"charset\s*=\s*\"?([A-Za-z0-9._:-]+)", rest, re.I)
    if m:
        charset = m.group(1).lower()
    return mime.strip().lower(), charset


def _strict(data: bytes, encoding: str, truncated: bool) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(data) - 4:  # a character cut in half at the limit
            try:
                return data[: exc.start].decode(encoding)
            except UnicodeDecodeError:
                return None
        return None
    except LookupError:
        return None


def decode_body(data: bytes, content_type: str | None, truncated: bool = False) -> str | None:
    """Text of a response body, or None when it is binary.

    A declared charset is trusted (bad bytes replaced); otherwise UTF-8, then GB18030 (legacy Chinese pages
    often declare nothing), strictly. Without a textual content type, a NUL byte or undecodable bytes mean
    binary.
    """
    if not data:
        return ""
    mime, charset = _content_type(content_type)
    texty = not mime or any(k in mime for k in _TEXTY)
    if charset:
        charset = _ALIASES.get(charset, charset)
        try:
            return data.decode(charset, errors="replace")
        except LookupError:
            pass
    if not texty and b"\x00" in data[:8192]:
        return None
    for enc in ("utf-8-sig", "gb18030"):
        text = _strict(data, enc, truncated)
        if text is not None and (texty or "\x00" not in text):
            return text
    return data.decode("utf-8", errors="replace") if texty else None


# -- instrumentation ------------------------------------------------------------------------------------------
class _Failure(Exception):
    """What went wrong below urllib3, recorded where it happened (the phase and the peer say more than the
    exception urllib3 and requests eventually wrap it in)."""

    def __init__(self, kind: str, exc: BaseException | None, detail: str = ""):
        super().__init__(detail or str(exc))
        self.kind = kind
        self.exc = exc
        self.detail = detail


class _State:
    """One exchange: the transport, the deadline, phase timings, where things stand, and a watchdog that
    shuts every socket of the exchange down when the deadline passes (a slow-drip server cannot stretch the
    check: each socket read is bounded, and so is their sum)."""

    def __init__(self, ctx: ProbeContext, budget: float):
        self.transport = ctx.transport
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self.times: dict[str, float] = {}
        self.phase = "start"
        self.peer: tuple[str, int] = ("", 0)
        self.via_proxy = False
        self.failure: _Failure | None = None
        self.failure_phase = ""
        self.timed_out = False
        self.hops: list[tuple[int, str]] = []
        self.proxy: tuple[str | None, str, str | None, str | None] = (None, "none", None, None)
        self._dups: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(budget, self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def remaining(self) -> float:
        return max(0.001, self.deadline - time.monotonic())

    def add(self, name: str, ms: float) -> None:
        self.times[name] = self.times.get(name, 0.0) + ms

    def fail(self, failure: _Failure) -> _Failure:
        if self.failure is None:
            self.failure = failure
            self.failure_phase = self.phase
        return failure

    def track(self, sock: Any) -> None:
        try:
            dup = sock.dup()
        except (AttributeError, OSError):
            return
        with self._lock:
            if self.timed_out:
                dup.close()
                _shutdown(sock)
                return
            self._dups.append(dup)

    def _fire(self) -> None:
        with self._lock:
            self.timed_out = True
            for d in self._dups:
                _shutdown(d)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for d in self._dups:
                with contextlib.suppress(OSError):
                    d.close()
            self._dups.clear()

    # -- resolution and connection, from the vantage host ------------------------------------------------
    def open(self, host: str, port: int) -> socket.socket:
        host = host.strip("[]")
        if _is_ip(host) or not self.transport.is_local:
            targets = [host]  # a remote vantage resolves the name itself, while connecting
        else:
            self.phase = "dns"
            t0 = time.perf_counter()
            budget = self.remaining()
            try:
                targets = self.transport.resolve(host, timeout=budget)
            except (socket.gaierror, UnicodeError) as exc:
                raise _Failure("dns", exc) from None
            except TimeoutError:
                raise _Failure("dns", None, f"no answer from the resolver within {budget:.3g} s") from None
            finally:  # a failed phase still shows how long it took
                self.add("dns", _ms(t0))
            if not targets:
                raise _Failure("dns", None, "the name has no address")
        self.phase = "connect"
        t0 = time.perf_counter()
        last: BaseException | None = None
        try:
            for addr in targets:
                if self.timed_out:
                    break
                try:
                    return as_socket(self.transport.connect(addr, port, timeout=self.remaining()))
                except OSError as exc:
                    last = exc
        finally:
            self.add("connect", _ms(t0))
        if self.timed_out or last is None:
            raise _Failure("timeout", last)
        if not self.transport.is_local and isinstance(last, OSError) and last.errno == errno.ECONNABORTED:
            raise _Failure("refused", last, ssh_connect_failed(self.transport.name))
        raise _Failure(_os_kind(last), last)


def ssh_connect_failed(vantage: str) -> str:
    """What a failed direct-tcpip open means: OpenSSH's sshd says only "connect failed" (paramiko keeps its code,
    not its text), so refused and unreachable cannot be told apart from here."""
    return f"{vantage} could not connect: refused, or no route (sshd does not say which)"


def _shutdown(sock: Any) -> None:
    with contextlib.suppress(OSError, AttributeError):
        sock.shutdown(socket.SHUT_RDWR)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _os_kind(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    return "other"


def as_socket(stream: Any) -> socket.socket:
    """A real socket for a stream a transport opened. A local transport returns a socket already; the SSH
    transport returns a paramiko channel, which ssl and http.client cannot wrap: it is bridged to one end of a
    ``socketpair`` by two daemon threads copying bytes both ways. Closing (or shutting down) the socket closes
    the channel; the channel's end of stream shows as the socket's."""
    if isinstance(stream, socket.socket):
        return stream
    ours, theirs = socket.socketpair()
    with contextlib.suppress(Exception):
        stream.settimeout(None)

    def close_both() -> None:
        with contextlib.suppress(Exception):
            stream.close()
        with contextlib.suppress(OSError):
            theirs.close()

    def down() -> None:  # channel -> socket
        pump(stream, theirs, lambda: _shutdown_write(theirs))

    def up() -> None:  # socket -> channel
        pump(theirs, stream, close_both)

    threading.Thread(target=down, daemon=True, name="vantage-bridge-down").start()
    threading.Thread(target=up, daemon=True, name="vantage-bridge-up").start()
    return ours


def _shutdown_write(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


_CLASSES: dict[str, Any] = {}


def _classes() -> dict[str, Any]:
    """The instrumented urllib3 connections, the adapter and the session (built on first use: importing
    requests costs tens of milliseconds, which a scan without http checks should not pay)."""
    if _CLASSES:
        return _CLASSES
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    class Instrumented(HTTPConnection):
        _ep_state: _State
        _ep_tls = False

        def _new_conn(self) -> socket.socket:
            st = self._ep_state
            st.peer = (self._dns_host, int(self.port or 0))
            st.via_proxy = self.proxy is not None
            try:
                sock = st.open(self._dns_host, int(self.port or 0))
            except _Failure as f:
                st.fail(f)
                if f.kind == "dns":
                    raise NameResolutionError(self.host, self, socket.gaierror(str(f))) from f.exc
                if f.kind == "timeout":
                    raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from f.exc
                raise NewConnectionError(self, f"Failed to establish a new connection: {f}") from f.exc
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            st.track(sock)
            st.phase = "tls" if self._ep_tls and not self._tunnel_host else "connected"
            return sock

        def _tunnel(self) -> None:
            st = self._ep_state
            st.phase = "tunnel"
            t0 = time.perf_counter()
            try:
                super()._tunnel()
            except BaseException as exc:
                st.fail(_Failure("proxy", exc))
                raise
            st.add("connect", _ms(t0))
            st.phase = "tls" if self._ep_tls else "connected"

        def connect(self) -> None:
            st = self._ep_state
            t0 = time.perf_counter()
            before = st.times.get("dns", 0.0) + st.times.get("connect", 0.0)
            try:
                super().connect()
            except BaseException as exc:
                if st.phase == "tls":
                    st.fail(_Failure("timeout" if st.timed_out or isinstance(exc, TimeoutError) else "tls", exc))
                raise
            if self._ep_tls:
                spent = st.times.get("dns", 0.0) + st.times.get("connect", 0.0) - before
                st.add("tls", max(0.0, _ms(t0) - spent))
            st.phase = "send"

        def getresponse(self) -> Any:
            st = self._ep_state
            st.phase = "wait"
            self.timeout = st.remaining()
            t0 = time.perf_counter()
            try:
                resp = super().getresponse()
            except BaseException as exc:
                kind = "timeout" if st.timed_out or isinstance(exc, TimeoutError) else "other"
                st.fail(_Failure(kind, exc))
                raise
            st.add("ttfb", _ms(t0))
            st.phase = "body"
            return resp

    class InstrumentedTLS(Instrumented, HTTPSConnection):
        _ep_tls = True

    class Adapter(HTTPAdapter):
        def __init__(self, pools: dict[str, Any], ssl_context: Callable[[], ssl.SSLContext], verify: bool):
            self._ep_pools = pools
            self._ep_ssl = ssl_context  # built on first https use: loading the system store costs ~20 ms
            self._ep_verify = verify
            super().__init__(pool_connections=4, pool_maxsize=4, max_retries=0)

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = self._ep_pools

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            manager.pool_classes_by_scheme = self._ep_pools
            return manager

        def build_connection_pool_key_attributes(
            self, request: Any, verify: Any, cert: Any = None
        ) -> tuple[dict[str, Any], dict[str, Any]]:
            host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
            pool_kwargs: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED" if self._ep_verify else "CERT_NONE"}
            if host_params.get("scheme") == "https":
                pool_kwargs["ssl_context"] = self._ep_ssl()
            return host_params, pool_kwargs

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            # our own SSLContext carries the trust; requests would otherwise load certifi into it per connection
            conn.cert_reqs = "CERT_REQUIRED" if self._ep_verify else "CERT_NONE"
            conn.ca_certs = None
            conn.ca_cert_dir = None

    class Session(requests.Session):
        def __init__(self, choose: Callable[[str], dict[str, str]]):
            super().__init__()
            self._ep_choose = choose
            self.trust_env = False  # proxies are chosen explicitly; no .netrc, no REQUESTS_CA_BUNDLE
            self.max_redirects = MAX_REDIRECTS

        def rebuild_proxies(self, prepared_request: Any, proxies: Any) -> dict[str, str]:
            return super().rebuild_proxies(prepared_request, self._ep_choose(str(prepared_request.url)))

    _CLASSES.update(conn=Instrumented, tls=InstrumentedTLS, adapter=Adapter, session=Session)
    return _CLASSES


def _session(state: _State, ssl_context: Callable[[], ssl.SSLContext], verify: bool,
             choose: Callable[[str], dict[str, str]]) -> Any:
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    c = _classes()
    conn = type("EnvprobeHTTPConnection", (c["conn"],), {"_ep_state": state})
    tls = type("EnvprobeHTTPSConnection", (c["tls"],), {"_ep_state": state})
    pools = {
        "http": type("EnvprobeHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": conn}),
        "https": type("EnvprobeHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": tls}),
    }
    session = c["session"](choose)
    adapter = c["adapter"](pools, ssl_context, verify)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def read_ca_bundle(ctx: ProbeContext, path: str) -> str | bytes:
    """A CA bundle's contents, read on the probing host (PEM text, or DER bytes)."""
    where = "" if ctx.transport.is_local else f" on {ctx.transport.name}"
    where_zh = "" if ctx.transport.is_local else f"（{ctx.transport.name} 上）"
    try:
        data = ctx.transport.read_file(path, max_bytes=8 * 1024 * 1024)
    except FileNotFoundError:
        raise ProbeError(t(f"ca_bundle {path} does not exist{where}", f"ca_bundle 文件 {path} 不存在{where_zh}"),
                         t("give the path of a PEM file with the client's CA certificate",
                           "请填写包含客户 CA 证书的 PEM 文件路径")) from None
    except OSError as exc:
        raise ProbeError(t(f"cannot read ca_bundle {path}{where}: {exc}",
                           f"无法读取 ca_bundle 文件 {path}{where_zh}：{exc}")) from None
    if b"-----BEGIN" in data:
        return data.decode("ascii", errors="ignore")
    return data


def trust_context(ctx: ProbeContext, verify: bool, ca_bundle: str | None,
                  check_hostname: bool = True) -> ssl.SSLContext:
    """The client SSLContext: no checks; only ``ca_bundle``; or the system store (certifi when there is none).

    ``check_hostname=False`` checks the chain only (the tls probe judges the name itself). The system-store
    contexts are built once per process and shared: never change one after it is returned.
    """
    import ssl

    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_bundle:
        data = read_ca_bundle(ctx, ca_bundle)
        bundle_key = (check_hostname, data)
        with _SYSTEM_LOCK:  # the same bundle for many checks: parse it once (contexts are shared read-only)
            if bundle_key in _BUNDLES:
                return _BUNDLES[bundle_key]
        try:
            context = ssl.create_default_context(cadata=data)
            context.check_hostname = check_hostname
            with _SYSTEM_LOCK:
                if len(_BUNDLES) >= 32:
                    _BUNDLES.clear()
                _BUNDLES[bundle_key] = context
            return context
        except (ssl.SSLError, ValueError) as exc:
            raise ProbeError(t(f"ca_bundle {ca_bundle} holds no usable CA certificate ({exc})",
                               f"ca_bundle 文件 {ca_bundle} 中没有可用的 CA 证书（{exc}）"),
                             t("give a PEM file (-----BEGIN CERTIFICATE-----) with the CA certificate(s)",
                               "请提供 PEM 格式（-----BEGIN CERTIFICATE-----）的 CA 证书文件")) from None
    key = f"system-{check_hostname}"
    with _SYSTEM_LOCK:  # loading the system store costs milliseconds: once per process
        if key not in _SYSTEM:
            context = ssl.create_default_context()
            context.check_hostname = check_hostname
            paths = ssl.get_default_verify_paths()
            if sys.platform != "win32" and paths.cafile is None and paths.capath is None:
                try:
                    import certifi

                    context.load_verify_locations(cafile=certifi.where())
                except (ImportError, OSError, ssl.SSLError):
                    pass
            _SYSTEM[key] = context
        return _SYSTEM[key]


_SYSTEM: dict[str, ssl.SSLContext] = {}
_BUNDLES: dict[tuple[bool, str | bytes], ssl.SSLContext] = {}
_SYSTEM_LOCK = threading.Lock()


def _remote_environ(ctx: ProbeContext) -> dict[str, str]:
    def read() -> dict[str, str]:
        res = ctx.transport.run(["env"], timeout=ctx.remaining())
        env: dict[str, str] = {}
        for line in res.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.lower().endswith("_proxy"):
                env[key] = value
        return env

    return ctx.transport.memo("http.proxy-environment", read)


def probing_environ(ctx: ProbeContext) -> Mapping[str, str]:
    """The environment whose proxy variables apply: this process's, or the vantage host's."""
    return os.environ if ctx.transport.is_local else _remote_environ(ctx)


# -- what went wrong, in words ------------------------------------------------------------------------------
def _root(exc: BaseException) -> BaseException:
    """The innermost cause of a wrapped exception (requests → urllib3 → socket or ssl)."""
    seen: set[int] = set()
    cur = exc
    while id(cur) not in seen:
        seen.add(id(cur))
        nxt = getattr(cur, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = next((a for a in getattr(cur, "args", ()) if isinstance(a, BaseException)), None)
        if nxt is None:
            nxt = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
        if nxt is None:
            break
        cur = nxt
    return cur


def _reason(exc: BaseException | None) -> str:
    import ssl

    if exc is None:
        return ""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    if isinstance(exc, ssl.SSLError):
        return ssl_text(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text or type(exc).__name__


def ssl_text(exc: BaseException) -> str:
    """OpenSSL's words for an ssl error: "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)" →
    "wrong version number"."""
    m = re.search(r"\]\s*(.+?)\s*\(_ssl\.c:\d+\)", str(exc))
    if m:
        return m.group(1)
    reason = getattr(exc, "reason", None)
    return str(reason).lower().replace("_", " ") if reason else (str(exc) or type(exc).__name__)


def _tunnel_status(exc: BaseException | None) -> str:
    m = re.search(r"Tunnel connection failed: (\d{3}[^'\"]*)", str(exc or ""))
    return m.group(1).strip() if m else ""


def explain(kind: str, phase: str, exc: BaseException | None, detail: str, *, peer: tuple[str, int],
            via_proxy: bool, budget: float) -> tuple[str, ErrorKind, Text, Text]:
    """(error line, error_kind, what happened, what to check next) for a request that got no response."""
    import ssl

    host, port = peer
    hp = f"{host}:{port}" if port else host
    reason = detail or _reason(exc)
    if via_proxy and phase in ("dns", "connect", "tunnel"):
        if kind == "timeout":
            line = f"the proxy {hp} did not answer within {budget:.3g} s"
            what = t(line, f"代理 {hp} 在 {budget:.3g} 秒内无响应")
            nxt = t("a firewall may drop traffic to the proxy, or the proxy cannot reach the server; check the proxy "
                    "address, or proxy: none to connect directly",
                    "可能有防火墙拦截到代理的流量，或代理无法连到目标服务器；"
                    "请核实代理地址，或设置 proxy: none 直接连接")
        elif phase == "tunnel":
            code = _tunnel_status(exc) or reason
            line = f"the proxy {hp} refused to open a tunnel: {code}"
            what = t(line, f"代理 {hp} 拒绝建立隧道：{code}")
            nxt = t("407: the proxy wants credentials (proxy: http://user:${env:PROXY_PASSWORD}@host:port); 403: it "
                    "forbids this destination — ask the client's network team to allow it; 502/504: the proxy "
                    "cannot reach the server itself",
                    "407：代理需要认证（proxy: http://用户:${env:PROXY_PASSWORD}@主机:端口）；403：代理禁止访问该目标，"
                    "请客户网络管理员放行；502/504：代理自身无法连到目标服务器")
        elif kind == "refused":
            line = f"the proxy {hp} refused the connection"
            what = t(line, f"代理 {hp} 拒绝连接")
            nxt = t("check the proxy address and port with the client's network team, or proxy: none to connect "
                    "directly", "请向客户网络管理员核实代理地址和端口，或设置 proxy: none 直接连接")
        elif kind == "dns":
            line = f"the proxy's name {host} does not resolve ({reason})"
            what = t(line, f"代理主机名 {host} 无法解析（{reason}）")
            nxt = t("check the proxy setting (an IP address avoids DNS) and the resolver configuration",
                    "请检查代理设置（可直接使用 IP 地址）和 DNS 解析配置")
        else:
            line = f"cannot reach the proxy {hp}: {reason}"
            what = t(line, f"无法连接代理 {hp}：{reason}")
            nxt = t("check the route and firewall to the proxy, or proxy: none to connect directly",
                    "请检查到代理的路由与防火墙，或设置 proxy: none 直接连接")
        return line, "proxy", what, nxt
    if kind == "timeout":
        if phase in ("dns", "connect", "start"):
            line = f"no answer from {hp} within {budget:.3g} s"
            what = t(line + ": the host is down or a firewall drops the packets",
                     f"{hp} 在 {budget:.3g} 秒内无响应：主机未启动或防火墙丢弃了数据包")
            nxt = t(f"check the firewall on the path and on the server (inbound {port}/tcp); if the site only "
                    "allows web access through a proxy, set proxy:",
                    f"请检查路径上和服务器上的防火墙（入站 {port}/tcp）；若现场只能经代理访问外网，请设置 proxy:")
        elif phase == "tls":
            line = f"the TLS handshake with {hp} did not finish within {budget:.3g} s"
            what = t(line, f"与 {hp} 的 TLS 握手在 {budget:.3g} 秒内未完成")
            nxt = t("check that this port speaks TLS (http:// vs https://)", "请确认该端口使用 TLS（http:// 还是 https://）")
        elif phase == "body":
            line = f"the response body did not arrive within {budget:.3g} s"
            what = t(line, f"响应内容在 {budget:.3g} 秒内未传输完")
            nxt = t("the server or the link is slow; lower max_body_kb or raise timeout:",
                    "服务器或网络较慢；可减小 max_body_kb 或调大 timeout:")
        else:
            line = f"connected to {hp}, but no response within {budget:.3g} s"
            what = t(line + " (the server is slow or stuck)",
                     f"已连接 {hp}，但 {budget:.3g} 秒内无响应（服务处理缓慢或卡住）")
            nxt = t("check the application's logs and load; raise timeout: if it is known to be slow",
                    "请检查应用日志与负载；若该服务本来就慢，可调大 timeout:")
        return line, "timeout", what, nxt
    if kind == "refused":
        line = f"connection refused by {hp}" + (f" ({detail})" if detail else "")
        what = t(line + ": nothing listens on that port, or a firewall rejects it",
                 f"{hp} 拒绝连接" + (f"（{detail}）" if detail else "") + "：该端口无服务监听，或被防火墙拒绝")
        nxt = t("check that the service runs and listens on that address and port (ss -ltnp), and the firewall "
                "rules (firewall-cmd --list-all, iptables -L)",
                "请确认服务已启动并在该地址和端口监听（ss -ltnp），"
                "并检查防火墙规则（firewall-cmd --list-all、iptables -L）")
        return line, "refused", what, nxt
    if kind == "dns":
        line = f"the name {host} does not resolve ({reason})"
        what = t(line, f"主机名 {host} 无法解析（{reason}）")
        nxt = t("check the DNS servers (/etc/resolv.conf; Windows: ipconfig /all) or add the name to the hosts file; "
                "if only the proxy resolves outside names, set proxy:",
                "请检查 DNS 服务器（/etc/resolv.conf；Windows：ipconfig /all），或把该主机名写入 hosts 文件；"
                "若只有代理能解析外部域名，请设置 proxy:")
        return line, "dns", what, nxt
    if kind == "tls":
        root = exc
        if isinstance(root, ssl.SSLCertVerificationError):
            if root.verify_code == 62 or "hostname mismatch" in (root.verify_message or "").lower() or \
                    "match" in (root.verify_message or "").lower():
                line = f"certificate does not match {host}: {reason}"
                what = t(line, f"证书与 {host} 不匹配：{reason}")
                nxt = t("request the name the certificate was issued for (the tls probe lists its sans), or "
                        "verify: false to look anyway",
                        "请使用证书签发的名称访问（tls 探针可列出证书的 sans），或设置 verify: false 先查看响应")
            else:
                line = f"certificate not trusted: {reason} ({hp})"
                what = t(line, f"证书不受信任：{reason}（{hp}）")
                nxt = t("use ca_bundle with the client's CA, or verify: false to look anyway; the tls probe shows "
                        "the certificate's issuer, names and dates",
                        "请用 ca_bundle 指定客户的 CA 证书，或设置 verify: false 先查看响应；tls 探针可显示证书的"
                        "签发者、名称与有效期")
        else:
            line = f"TLS handshake with {hp} failed: {reason}"
            what = t(line, f"与 {hp} 的 TLS 握手失败：{reason}")
            nxt = t("check that the port speaks TLS (http:// vs https://) and which TLS versions and ciphers the "
                    "server accepts (the tls probe shows what it negotiates)",
                    "请确认该端口使用 TLS（http:// 还是 https://），以及服务器接受的 TLS 版本与加密套件"
                    "（tls 探针可显示协商结果）")
        return line, "tls", what, nxt
    line = reason or "the request failed"
    if isinstance(exc, ConnectionResetError):
        line = f"{hp} reset the connection"
    elif phase == "wait":
        line = f"{hp} closed the connection without a response ({reason})"
    what = t(line, f"请求失败：{line}")
    nxt = t("check the service's logs; a security device on the path may cut connections",
            "请检查服务日志；路径上的安全设备可能中断了连接")
    return line, "other", what, nxt


# -- the probe ----------------------------------------------------------------------------------------------
class HttpProbe(Probe):
    name = "http"
    summary = t("HTTP(S) request: status, timings, redirects, headers, body, proxy used",
                "HTTP(S) 请求：状态码、各阶段耗时、重定向、响应头、响应内容、所用代理")
    Params = HttpParams
    Facts = HttpFacts
    vantage = True  # from: HOST runs it from that host's transport
    requires = t("a network path from the host to the URL (or its proxy); nothing is installed on the host",
                 "从该主机到 URL（或其代理）的网络连通；无需在主机上安装任何东西")
    example = """\
- id: mes-web
  title: {zh-CN: MES 网页入口, en: MES web entry}
  probe: http
  with: {url: "https://10.0.0.10:8443/mes/health", ca_bundle: /etc/pki/ca-trust/source/anchors/client-ca.pem}
  expect: {status: 200, body: "contains OK", elapsed_ms: "< 500"}
- id: vendor-portal-via-proxy
  title: {zh-CN: 经代理访问厂商门户, en: Vendor portal through the site proxy}
  probe: http
  with: {url: "https://portal.example.com/", proxy: "http://10.0.0.254:3128", timeout: 5s}
  expect: {status: "in [200, 301, 302]", proxy_source: param}
"""
    advice = {
        "status": t("compare with the application's own logs for this URL; 401/403: credentials or rights; 404: "
                    "wrong path or the application is not deployed; 502/503/504: a gateway or proxy cannot reach "
                    "the application behind it",
                    "对照应用自身日志中该 URL 的记录；401/403：认证或权限问题；404：路径错误或应用未部署；"
                    "502/503/504：网关或代理无法连到后端应用"),
        "elapsed_ms": t("compare dns_ms, connect_ms, tls_ms and ttfb_ms: a slow network shows in connect_ms, a "
                        "slow application in ttfb_ms",
                        "对比 dns_ms、connect_ms、tls_ms 与 ttfb_ms：网络慢体现在 connect_ms，应用慢体现在 ttfb_ms"),
        "ttfb_ms": t("the server takes long to answer: check the application's load and its database",
                     "服务器响应慢：请检查应用负载及其数据库"),
        "connect_ms": t("the network path is slow: check the route, or run the latency probe",
                        "网络路径较慢：请检查路由，或使用 latency 探针测量"),
        "dns_ms": t("name resolution is slow: check the DNS servers the host uses",
                    "域名解析慢：请检查主机使用的 DNS 服务器"),
        "body": t("the page is not the expected one: look at the body shown, and check the URL and the "
                  "application's version",
                  "页面内容与期望不符：请查看结果中的内容，并核对 URL 与应用版本"),
        "proxy_source": t("the proxy choice is not what the site needs: set proxy: explicitly, or check the "
                          "http_proxy/https_proxy/no_proxy variables of the host",
                          "代理选择与现场要求不符：请显式设置 proxy:，"
                          "或检查主机的 http_proxy/https_proxy/no_proxy 变量"),
        "error_kind": t("see the message: it says what was tried and what to check next",
                        "见结果说明：其中写明了尝试的内容与下一步检查项"),
        "*": t("open the URL from the same host (curl -v URL) to see the exchange",
               "在同一主机上执行 curl -v URL 查看完整交互过程"),
    }

    def __init__(self) -> None:
        self._note: Text | None = None

    def collect(self, ctx: ProbeContext, params: Any) -> HttpFacts:
        import requests

        budget = min(float(params.timeout), ctx.remaining(floor=0.05))
        state = _State(ctx, budget)
        environ: Mapping[str, str] = probing_environ(ctx) if params.proxy is None else {}
        notes: list[Text] = []

        def choose(url: str) -> dict[str, str]:
            scheme = urlsplit(url).scheme.lower()
            if params.proxy == "none":
                state.proxy = (None, "none", None, None)
                return {}
            if params.proxy is not None:
                state.proxy = (params.proxy, "param", None, None)
                return {scheme: params.proxy}
            proxy, var, exempt = env_proxy(url, environ)
            if proxy is not None and not proxy.lower().startswith(("http://", "https://")):
                raise ProbeError(
                    t(f"{var} is {redact_url(proxy)}: only http:// and https:// proxies are supported",
                      f"{var} 为 {redact_url(proxy)}：仅支持 http:// 与 https:// 代理"),
                    t("set proxy: explicitly (an http proxy URL, or none)",
                      "请显式设置 proxy:（http 代理地址，或 none）"))
            state.proxy = (proxy, "environment" if proxy else "none", var, exempt)
            return {scheme: proxy} if proxy else {}

        contexts: list[ssl.SSLContext] = []

        def ssl_context() -> ssl.SSLContext:
            if not contexts:
                contexts.append(trust_context(ctx, params.verify, params.ca_bundle))
            return contexts[0]

        if not params.verify:
            import warnings

            from urllib3.exceptions import InsecureRequestWarning

            # the user's choice, and the result says the certificate was not checked
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        session = _session(state, ssl_context, params.verify, choose)
        headers = {"User-Agent": f"envprobe/{_version()}", **params.headers}
        auth = (params.user, params.password or "") if params.user else None
        data = params.body.encode("utf-8") if params.body is not None else None
        limit = params.max_body_kb * 1024

        def hook(resp: Any, *args: Any, **kwargs: Any) -> Any:
            state.hops.append((int(resp.status_code), str(resp.url)))
            return resp

        resp: Any = None
        raw = b""
        truncated = False
        failure: tuple[str, ErrorKind, Text, Text] | None = None
        t0 = time.perf_counter()
        try:
            proxies = choose(params.url)
            state.start()
            resp = session.request(
                params.method, params.url, headers=headers, data=data, auth=auth, proxies=proxies,
                timeout=(budget, budget), allow_redirects=params.follow_redirects, stream=True,
                hooks={"response": [hook]},
            )
            if params.method != "HEAD":
                raw, truncated = _read_body(resp, limit, state)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader) as exc:
            raise ProbeError(t(f"cannot send this request: {exc}", f"无法发送该请求：{exc}")) from None
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            failure = self._failure(exc, state)
        finally:
            elapsed = _ms(t0)
            state.close()
            if resp is not None:
                resp.close()
            session.close()

        proxy, source, var, exempt = state.proxy
        via = t(f"via proxy {redact_url(proxy)}" + (f" (from {var})" if var else ""),
                f"经代理 {redact_url(proxy)}" + (f"（来自 {var}）" if var else "")) if proxy else None
        if exempt:
            notes.append(t(f"{var} is set, but {exempt} exempts this host: connected directly",
                           f"已设置 {var}，但 {exempt} 豁免了该主机：直接连接"))
        times = state.times
        chain = [f"{code} {redact_url(url)}" for code, url in state.hops if 300 <= code < 400]  # before a failure

        def ms(name: str) -> float | None:
            return round(times[name], 2) if name in times else None

        if failure is not None:
            line, kind, what, nxt = failure
            tried = f"{params.method} {redact_url(params.url)}"
            how = via or t("direct, no proxy", "直连，未使用代理")
            if not ctx.transport.is_local:
                how = t(f"{how['en']}, from {ctx.transport.name}", f"{how['zh-CN']}，从 {ctx.transport.name} 发起")
            self._note = t(f"{tried} ({how['en']}): {what['en']} — {nxt['en']}",
                           f"{tried}（{how['zh-CN']}）：{what['zh-CN']}——{nxt['zh-CN']}")
            return HttpFacts(
                status=None, elapsed_ms=round(elapsed, 1), dns_ms=ms("dns"), connect_ms=ms("connect"),
                tls_ms=ms("tls"), ttfb_ms=ms("ttfb"), redirects=len(chain), redirect_chain=chain,
                final_url=None, headers={}, body=None, body_truncated=False,
                proxy_used=redact_url(proxy) if proxy else None, proxy_source=source,
                error=line, error_kind=kind,
            )

        content_type = resp.headers.get("Content-Type")
        text = decode_body(raw, content_type, truncated)
        if text is None:
            mime = _content_type(content_type)[0] or "no content type"
            notes.append(t(f"the body is binary ({mime}, {len(raw)} bytes read): body is null",
                           f"响应内容为二进制（{mime}，已读取 {len(raw)} 字节）：body 为空"))
        if via is not None and source == "environment":
            notes.append(via)
        if not params.verify and urlsplit(str(resp.url)).scheme == "https":
            notes.append(t("the certificate was not checked (verify: false)", "未校验证书（verify: false）"))
        self._note = join_text(*notes, sep="; ") if notes else None
        return HttpFacts(
            status=int(resp.status_code), elapsed_ms=round(elapsed, 1), dns_ms=ms("dns"),
            connect_ms=ms("connect"), tls_ms=ms("tls"), ttfb_ms=ms("ttfb"), redirects=len(resp.history),
            redirect_chain=[f"{r.status_code} {redact_url(str(r.url))}" for r in resp.history],
            final_url=redact_url(str(resp.url)),
            headers={str(k).lower(): str(v) for k, v in resp.headers.items()},
            body=text, body_truncated=truncated,
            proxy_used=redact_url(proxy) if proxy else None, proxy_source=source,
            error=None, error_kind=None,
        )

    @staticmethod
    def _failure(exc: BaseException, state: _State) -> tuple[str, ErrorKind, Text, Text]:
        import requests

        f = state.failure
        phase = state.failure_phase if f is not None else state.phase
        if f is not None:
            kind, inner, detail = f.kind, f.exc, f.detail
            if inner is not None and kind in ("tls", "other", "proxy"):
                inner = _root(inner)
        else:
            inner = _root(exc)
            kind = _os_kind(inner) if isinstance(inner, OSError) else "other"
            detail = ""
            if isinstance(exc, requests.exceptions.TooManyRedirects):
                detail = f"more than {MAX_REDIRECTS} redirects (a redirect loop?)"
            elif isinstance(exc, requests.exceptions.SSLError):
                kind = "tls"
        if state.timed_out or isinstance(exc, requests.exceptions.Timeout):
            kind = "timeout"
        if kind == "tls" and state.timed_out:
            kind = "timeout"
        return explain(kind, phase, inner, detail, peer=state.peer, via_proxy=state.via_proxy,
                       budget=state.budget)

    def note(self, params: Any, facts: Any) -> Text | None:
        return self._note


def _read_body(resp: Any, limit: int, state: _State) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the (decoded) body, and whether there was more."""
    chunks: list[bytes] = []
    got = 0
    for chunk in resp.iter_content(chunk_size=16384):
        if state.timed_out:
            raise TimeoutError("deadline")
        chunks.append(chunk)
        got += len(chunk)
        if got > limit:
            break
    if state.timed_out:  # the watchdog's shutdown can look like the end of a body without a length
        raise TimeoutError("deadline")
    data = b"".join(chunks)
    return data[:limit], len(data) > limit


def _version() -> str:
    from envprobe import __version__

    return __version__
