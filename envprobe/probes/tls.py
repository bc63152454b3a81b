"""``tls``: the certificate a TLS server presents — dates, names, issuer, trust — and what it negotiates.

**An untrusted, expired or self-signed certificate is an observation, not a failure to observe.** The
probe judges trust with a normal client handshake (``ssl.create_default_context()``: the system store, or
only ``ca_bundle``; chain and dates checked by OpenSSL, the name left to ``hostname_match``). When that
handshake is refused over the certificate (or over the server's TLS settings), it connects a second time
with checking off and relaxed settings (any protocol version OpenSSL still has, ``@SECLEVEL=0``) only to read
what the server presents; ``verified`` is then false and ``verify_error`` holds OpenSSL's reason. A trusted
server costs one handshake, an untrusted one two. ``verify: false`` skips the trust check (one relaxed
handshake, ``verified`` null). The certificate is parsed with ``cryptography`` (imported on first use).

Only the server's own (leaf) certificate is read: Python before 3.13 does not expose the chain the
server sends. ``self_signed`` means the leaf signs itself; a missing intermediate shows as ``verified:
false`` with "unable to get local issuer certificate".

A connection that cannot be made (refused, no answer, name not resolved) or a port that does not speak TLS
is an error result with the reason and what to check next: there is no certificate to observe. Use an
``http`` or ``tcp`` check for reachability, and ``needs:`` it.

**Where it runs (vantage).** The TCP stream is opened by ``ctx.transport.connect()`` — from the check's
host; the TLS handshake and the parsing run in the envprobe process over that stream. Over SSH the transport
must return a real socket (a ``socketpair`` end pumped to the ``direct-tcpip`` channel) so that
``ssl.wrap_socket`` works unchanged. ``ca_bundle`` is read on the vantage host (``transport.read_file``);
the system store is the one of the machine running envprobe.
"""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import socket
import time
from typing import TYPE_CHECKING, Any

from envprobe.model import Text, join_text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator

if TYPE_CHECKING:
    import ssl


class TlsParams(Model):
    host: str = Field(description="host name or IP address to connect to (from the check's host)")
    port: int = Field(default=443, ge=1, le=65535, description="TCP port, 1-65535 (default 443)")
    server_name: str | None = Field(default=None,
                                    description="the name sent as SNI and matched against the certificate "
                                                "(default: host); lets a check connect by IP address and still "
                                                "ask for mes.example.cn")
    verify: bool = Field(default=True,
                         description="judge trust (verified, verify_error); false: only read the certificate")
    ca_bundle: str | None = Field(default=None,
                                  description="PEM file with the CA certificates to trust instead of the system "
                                              "store (e.g. the client's internal CA), read on the probing host")
    timeout: float = Field(default=10.0, gt=0,
                           description="seconds for connecting and the handshakes ('10s', '500ms'); the check's "
                                       "timeout: bounds it too")

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> Any:
        from envprobe.loader import parse_duration

        return parse_duration(v) if isinstance(v, str) else v

    @field_validator("host", "server_name")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().strip("[]")
        if not v or "/" in v or " " in v:
            raise ValueError("give a host name or an IP address, without scheme or path")
        return v


class TlsFacts(Facts):
    days_left: float = Field(description="days until the certificate expires (negative: expired that many days "
                                         "ago), to 0.1 day")
    not_before: str = Field(description="start of validity, ISO 8601 UTC")
    not_after: str = Field(description="end of validity, ISO 8601 UTC")
    subject: str = Field(description="the certificate's subject, RFC 4514 (CN=...,O=...)")
    issuer: str = Field(description="the issuer, RFC 4514")
    sans: list[str] = Field(description="subject alternative names: DNS names and IP addresses")
    hostname_match: bool = Field(description="server_name (default host) is covered by the SANs "
                                             "(wildcards in the leftmost label; the CN is not used, as in browsers)")
    verified: bool | None = Field(description="a normal client trusts the chain: issued by a CA in the system store "
                                              "(or ca_bundle) and within its dates; the name is judged by "
                                              "hostname_match; null with verify: false")
    verify_error: str | None = Field(description="why it is not trusted, in OpenSSL's words (e.g. 'certificate has "
                                                 "expired', 'self-signed certificate'); null when trusted")
    self_signed: bool = Field(description="the certificate is signed by its own key")
    protocol: str = Field(description="negotiated protocol version, e.g. TLSv1.3")
    cipher: str = Field(description="negotiated cipher suite, e.g. TLS_AES_256_GCM_SHA384")
    key_type: str | None = Field(description="public key type: RSA, EC, Ed25519, Ed448, DSA")
    key_bits: int | None = Field(description="public key size in bits (RSA 2048, EC 256 ...)")
    signature_hash: str | None = Field(description="hash of the certificate's signature, e.g. sha256 (sha1: "
                                                   "rejected by current clients); null for Ed25519/Ed448")
    fingerprint_sha256: str = Field(description="SHA-256 fingerprint of the certificate (AB:CD:...), to compare "
                                                "with the file that was installed")
    handshake_ms: float = Field(description="duration of the (first) TLS handshake, after the TCP connect")


# -- pure helpers --------------------------------------------------------------------------------------------
def _label_match(pattern: str, name: str) -> bool:
    p_labels, n_labels = pattern.split("."), name.split(".")
    if len(p_labels) != len(n_labels) or len(p_labels) < 2:
        return False
    first, rest = p_labels[0], p_labels[1:]
    if rest != n_labels[1:]:
        return False
    if first == "*":
        return len(p_labels) >= 3 and bool(n_labels[0])  # no wildcard for a bare public suffix (*.com)
    if "*" in first:  # a partial wildcard: f*.example.com
        head, _, tail = first.partition("*")
        label = n_labels[0]
        return (not name.startswith("xn--") and len(label) >= len(head) + len(tail)
                and label.startswith(head) and label.endswith(tail))
    return first == n_labels[0]


def hostname_matches(name: str, sans: list[str]) -> bool:
    """RFC 6125 matching of a host name or IP address against the SANs (no CN fallback)."""
    name = name.strip().strip("[]").rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    for san in sans:
        if ip is not None:
            try:
                if ipaddress.ip_address(san) == ip:
                    return True
            except ValueError:
                continue
            continue
        san = san.lower().rstrip(".")
        if san == name or ("*" in san and _label_match(san, name)):
            return True
    return False


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(cert: Any, name: str) -> dt.datetime:
    value = getattr(cert, f"{name}_utc", None)  # cryptography >= 42
    if value is None:
        value = getattr(cert, name).replace(tzinfo=dt.timezone.utc)
    return value


def certificate_facts(der: bytes, name: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Facts read from a DER certificate (everything but trust and the negotiated parameters)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

    cert = x509.load_der_x509_certificate(der)
    now = now or dt.datetime.now(dt.timezone.utc)
    not_before, not_after = _utc(cert, "not_valid_before"), _utc(cert, "not_valid_after")
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v) for v in ext.get_values_for_type(x509.DNSName)]
        sans += [str(v) for v in ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    except ValueError:  # a malformed extension: report what can be read
        sans = []
    key = cert.public_key()
    key_type: str | None
    key_bits: int | None
    if isinstance(key, rsa.RSAPublicKey):
        key_type, key_bits = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, key_bits = "EC", key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type, key_bits = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        key_type, key_bits = "Ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, key_bits = "DSA", key.key_size
    else:
        key_type, key_bits = type(key).__name__, None
    self_signed = False
    if cert.issuer == cert.subject:
        try:
            cert.verify_directly_issued_by(cert)
            self_signed = True
        except Exception:  # noqa: BLE001 - InvalidSignature, ValueError, TypeError: not signed by itself
            self_signed = False
    try:
        sig = cert.signature_hash_algorithm
        signature_hash = sig.name if sig is not None else None
    except Exception:  # noqa: BLE001 - UnsupportedAlgorithm for exotic signatures
        signature_hash = None
    return {
        "days_left": round((not_after - now).total_seconds() / 86400.0, 1),
        "not_before": _iso(not_before),
        "not_after": _iso(not_after),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "sans": sans,
        "hostname_match": hostname_matches(name, sans),
        "self_signed": self_signed,
        "key_type": key_type,
        "key_bits": key_bits,
        "signature_hash": signature_hash,
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    }


# -- handshakes ---------------------------------------------------------------------------------------------
def _relaxed_context() -> ssl.SSLContext:
    """Checking off, old protocol versions and weak ciphers allowed: only to read what the server presents."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pass
    return context


class _Handshake:
    def __init__(self, der: bytes, protocol: str, cipher: str, ms: float):
        self.der, self.protocol, self.cipher, self.ms = der, protocol, cipher, ms


class TlsProbe(Probe):
    name = "tls"
    summary = t("TLS certificate and handshake: days left, names, issuer, trust, protocol",
                "TLS 证书与握手：剩余有效天数、名称、签发者、是否受信任、协议版本")
    Params = TlsParams
    Facts = TlsFacts
    vantage = True  # from: HOST runs it from that host's transport
    requires = t("a TCP path from the host to host:port; nothing is installed on the host",
                 "从该主机到 host:port 的 TCP 连通；无需在主机上安装任何东西")
    example = """\
- id: mes-cert
  title: {zh-CN: MES 证书有效期与信任, en: MES certificate validity and trust}
  probe: tls
  with: {host: 10.0.0.10, port: 8443, server_name: mes.example.cn}
  expect: {days_left: ">= 30", verified: true, hostname_match: true, protocol: "in [TLSv1.2, TLSv1.3]"}
"""
    advice = {
        "days_left": t("renew the certificate before it expires (ask who issued it: the client's PKI team or the "
                       "public CA) and install it with its intermediate certificates",
                       "请在到期前更新证书（联系签发方：客户 PKI 团队或公共 CA），并连同中间证书一起安装"),
        "verified": t("install the full chain (the intermediate certificates) on the server, or give ca_bundle "
                      "with the client's CA if it is an internal one; a self-signed certificate is trusted by no "
                      "client until it is imported",
                      "请在服务器上安装完整证书链（含中间证书）；若为客户内部 CA 签发，请用 ca_bundle 指定该 CA；"
                      "自签名证书在导入各客户端之前不会被信任"),
        "hostname_match": t("reissue the certificate with this name among its subject alternative names, or reach "
                            "the server by a name it has (see sans)",
                            "请重新签发证书并把该名称加入 SAN，或使用证书中已有的名称访问（见 sans）"),
        "self_signed": t("replace the self-signed certificate with one issued by the client's CA or a public CA",
                         "请用客户 CA 或公共 CA 签发的证书替换自签名证书"),
        "protocol": t("enable TLS 1.2 or 1.3 on the server (older versions are refused by current clients)",
                      "请在服务器上启用 TLS 1.2 或 1.3（更早的版本会被当前客户端拒绝）"),
        "key_bits": t("reissue the certificate with a stronger key (RSA 2048+ or EC 256+)",
                      "请使用更强的密钥重新签发证书（RSA 2048 位以上或 EC 256 位以上）"),
        "signature_hash": t("reissue the certificate with a SHA-256 signature", "请使用 SHA-256 签名重新签发证书"),
        "*": t("inspect the server with: openssl s_client -connect HOST:PORT -servername NAME -showcerts",
               "可用 openssl s_client -connect 主机:端口 -servername 名称 -showcerts 查看服务器证书"),
    }

    def __init__(self) -> None:
        self._extra: Text | None = None

    def collect(self, ctx: ProbeContext, params: Any) -> TlsFacts:
        import ssl

        from envprobe.probes.http import ssl_text, trust_context

        budget = min(float(params.timeout), ctx.remaining(floor=0.05))
        deadline = time.monotonic() + budget
        name = params.server_name or params.host
        verified: bool | None = None
        verify_error: str | None = None
        shake: _Handshake | None = None
        relaxed_note: Text | None = None
        if params.verify:
            context = trust_context(ctx, True, params.ca_bundle, check_hostname=False)
            try:
                shake = self._handshake(ctx, params, name, context, deadline, budget, check=True)
                verified = True
            except ssl.SSLCertVerificationError as exc:
                verified = False
                verify_error = exc.verify_message or ssl_text(exc)
            except ssl.SSLError as exc:
                verified = False
                verify_error = f"a default client refuses the handshake: {ssl_text(exc)}"
                relaxed_note = t(f"a client with default settings cannot connect ({ssl_text(exc)}); the facts come "
                                 "from a handshake with relaxed settings (old protocol versions, weak ciphers)",
                                 f"默认设置的客户端无法完成握手（{ssl_text(exc)}）；以下结果来自放宽设置"
                                 "（旧协议版本、弱加密套件）后的握手")
        if shake is None:
            try:
                shake = self._handshake(ctx, params, name, _relaxed_context(), deadline, budget, check=False)
            except ssl.SSLError as exc:
                raise ProbeError(
                    t(f"TLS {params.host}:{params.port}: the handshake failed ({ssl_text(exc)}): the port does not "
                      "speak TLS, or only with settings OpenSSL no longer has",
                      f"TLS {params.host}:{params.port}：握手失败（{ssl_text(exc)}）：该端口不使用 TLS，"
                      "或只支持 OpenSSL 已不再提供的设置"),
                    t("check the port (is it the https/TLS port, or a plain http or database port?); for "
                      "STARTTLS protocols (SMTP, LDAP, PostgreSQL) this probe does not apply",
                      "请核对端口（是 https/TLS 端口，还是普通 http 或数据库端口？）；"
                      "STARTTLS 类协议（SMTP、LDAP、PostgreSQL）不适用本探针")) from None
        facts = certificate_facts(shake.der, name)
        if facts["self_signed"] and verify_error is None and verified is False:
            verify_error = "self-signed certificate"
        self._extra = relaxed_note
        return TlsFacts(**facts, verified=verified, verify_error=verify_error, protocol=shake.protocol,
                        cipher=shake.cipher, handshake_ms=round(shake.ms, 2))

    def _handshake(self, ctx: ProbeContext, params: Any, name: str, context: ssl.SSLContext, deadline: float,
                   budget: float, check: bool) -> _Handshake:
        import ssl

        target = f"{params.host}:{params.port}"
        sock = self._connect(ctx, params, deadline, budget)
        sni = None if _is_ip(name) else name
        try:
            ssock = context.wrap_socket(sock, server_hostname=sni, do_handshake_on_connect=False)
        except (ssl.SSLError, ValueError):
            sock.close()
            raise
        try:
            ssock.settimeout(max(0.001, deadline - time.monotonic()))
            t0 = time.perf_counter()
            try:
                ssock.do_handshake()
            except TimeoutError:
                raise ProbeError(
                    t(f"TLS {target}: connected, but the handshake did not finish within {budget:.3g} s — the port "
                      "may not speak TLS (a plain http or database port waits for the client to speak first)",
                      f"TLS {target}：已连接，但握手在 {budget:.3g} 秒内未完成——该端口可能不使用 TLS"
                      "（普通 http 或数据库端口会等待客户端先发送数据）"),
                    t("check that this is the TLS port of the service", "请确认这是该服务的 TLS 端口")) from None
            except ssl.SSLError:
                raise
            except OSError as exc:
                raise ProbeError(
                    t(f"TLS {target}: the server closed the connection during the handshake ({_os_text(exc)})",
                      f"TLS {target}：服务器在握手过程中断开了连接（{_os_text(exc)}）"),
                    t("the port may not speak TLS, or the server only accepts certain clients (client "
                      "certificates, SNI names): check its TLS configuration",
                      "该端口可能不使用 TLS，或服务器只接受特定客户端（客户端证书、SNI 名称）：请检查其 TLS 配置"),
                ) from None
            ms = (time.perf_counter() - t0) * 1000.0
            der = ssock.getpeercert(binary_form=True)
            if not der:
                raise ProbeError(t(f"TLS {target}: the server presented no certificate",
                                   f"TLS {target}：服务器未出示证书"))
            cipher = ssock.cipher()
            return _Handshake(der, ssock.version() or "", cipher[0] if cipher else "", ms)
        finally:
            ssock.close()

    def _connect(self, ctx: ProbeContext, params: Any, deadline: float, budget: float) -> socket.socket:
        from envprobe.probes.http import as_socket, ssh_connect_failed

        target = f"{params.host}:{params.port}"
        where = "" if ctx.transport.is_local else f" from {ctx.transport.name}"
        where_zh = "" if ctx.transport.is_local else f"（从 {ctx.transport.name}）"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProbeError(t(f"TLS {target}: no time left within {budget:.3g} s for a second handshake",
                               f"TLS {target}：{budget:.3g} 秒内已无时间进行第二次握手"))
        try:
            return as_socket(ctx.transport.connect(params.host, params.port, timeout=remaining))
        except socket.gaierror as exc:
            raise ProbeError(t(f"TLS {target}: the name {params.host} does not resolve{where} ({_os_text(exc)})",
                               f"TLS {target}：主机名 {params.host} 无法解析{where_zh}（{_os_text(exc)}）"),
                             t("check the name and the DNS servers, or connect by IP address with server_name",
                               "请核对主机名与 DNS 服务器，或用 IP 地址连接并设置 server_name")) from None
        except ConnectionRefusedError:
            raise ProbeError(t(f"TLS {target}: connection refused{where}: nothing listens there, or a firewall "
                               "rejects it",
                               f"TLS {target}：连接被拒绝{where_zh}：该端口无服务监听，或被防火墙拒绝"),
                             t("check that the service runs and listens on that port (ss -ltnp) and the firewall "
                               "rules", "请确认服务已启动并在该端口监听（ss -ltnp），并检查防火墙规则")) from None
        except TimeoutError:
            raise ProbeError(t(f"TLS {target}: no answer within {budget:.3g} s{where}: the host is down or a "
                               "firewall drops the packets",
                               f"TLS {target}：{budget:.3g} 秒内无响应{where_zh}：主机未启动或防火墙丢弃了数据包"),
                             t(f"check the firewall on the path and on the server (inbound {params.port}/tcp)",
                               f"请检查路径上和服务器上的防火墙（入站 {params.port}/tcp）")) from None
        except OSError as exc:
            if not ctx.transport.is_local and exc.errno == errno.ECONNABORTED:
                vh = ctx.transport.name
                raise ProbeError(t(f"TLS {target}: {ssh_connect_failed(vh)}",
                                   f"TLS {target}：{vh} 无法连接（连接被拒绝或无路由，sshd 未说明原因）"),
                                 t(f"check that the service listens on that port and that {vh} may reach it "
                                   "(routes, firewalls)",
                                   f"请确认服务在该端口监听，且 {vh} 能访问到它（路由、防火墙）")) from None
            raise ProbeError(t(f"TLS {target}: cannot connect{where}: {_os_text(exc)}",
                               f"TLS {target}：无法连接{where_zh}：{_os_text(exc)}"),
                             t("check the route and the firewall to the server",
                               "请检查到服务器的路由与防火墙")) from None

    def note(self, params: Any, facts: Any) -> Text | None:
        parts: list[Text] = []
        name = params.server_name or params.host
        if facts.days_left < 0:
            days = -facts.days_left
            parts.append(t(f"the certificate expired on {facts.not_after} ({days:g} days ago)",
                           f"证书已于 {facts.not_after} 过期（{days:g} 天前）"))
        elif facts.not_before > _iso(dt.datetime.now(dt.timezone.utc)):
            parts.append(t(f"the certificate is not valid before {facts.not_before}",
                           f"证书在 {facts.not_before} 之前尚未生效"))
        if facts.verified is False:
            parts.append(t(f"certificate not trusted: {facts.verify_error} — give ca_bundle with the client's CA, or "
                           "install the missing intermediate certificates on the server",
                           f"证书不受信任：{facts.verify_error}——请用 ca_bundle 指定客户的 CA，"
                           "或在服务器上补装中间证书"))
        if facts.self_signed:
            parts.append(t("the certificate is self-signed", "该证书为自签名证书"))
        if not facts.hostname_match:
            if facts.sans:
                shown = ", ".join(facts.sans[:8]) + (" …" if len(facts.sans) > 8 else "")
                parts.append(t(f"{name} is not among the certificate's names ({shown})",
                               f"{name} 不在证书的名称中（{shown}）"))
            else:
                parts.append(t(f"the certificate has no subject alternative names: clients cannot match it to "
                               f"{name}", f"证书没有 SAN（主题备用名称）：客户端无法将其与 {name} 匹配"))
        if self._extra:
            parts.append(self._extra)
        return join_text(*parts, sep="; ") if parts else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _os_text(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
