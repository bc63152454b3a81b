"""The http and tls probes against real servers on loopback (tests/httpfix.py): statuses, redirects, timeouts,
basic auth, a test CA, self-signed / expired / soon-expiring certificates, a forward proxy chosen by parameter
or by environment, secrets kept out of every output, and whole scans in both languages.

Nothing resolves a name through the system resolver (conftest's guard) and nothing leaves loopback."""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml

from envprobe.probes.base import ProbeContext, ProbeError
from envprobe.probes.http import HttpProbe, decode_body, env_proxy, no_proxy_match, redact_url
from envprobe.probes.tls import TlsProbe, certificate_facts, hostname_matches
from envprobe.schema import ValidationError
from envprobe.transport.local import LocalTransport
from tests.conftest import cli
from tests.httpfix import *  # noqa: F403 - the fixtures
from tests.httpfix import AUTH_USER, BODY_OK, GBK_PAGE, Server, free_port, silent_listener

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own proxy settings must not leak into the tests."""
    for v in PROXY_VARS:
        monkeypatch.delenv(v, raising=False)
        monkeypatch.delenv(v.upper(), raising=False)


class Vantage(LocalTransport):
    """A stand-in for a remote host (the SSH transport to come): not local, so the probes must do everything
    through connect() and run(); it records what they asked for."""

    is_local = False
    name = "app01"

    def __init__(self) -> None:
        super().__init__()
        self.connects: list[tuple[str, int]] = []
        self.commands: list[object] = []

    def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        self.connects.append((host, port))
        return super().connect(host, port, timeout)

    def run(self, cmd, timeout=10.0, env=None, stdin=None):  # type: ignore[no-untyped-def]
        self.commands.append(cmd)
        return super().run(cmd, timeout=timeout, env=env, stdin=stdin)


def collect(probe_cls, transport=None, timeout: float = 20, **params):  # type: ignore[no-untyped-def]
    probe = probe_cls()
    p = probe_cls.Params.model_validate(params)
    ctx = ProbeContext(transport or LocalTransport(), getattr(transport, "name", "local"), timeout)
    facts = probe.collect(ctx, p)
    return facts, probe.note(p, facts)


def http(**params):  # type: ignore[no-untyped-def]
    return collect(HttpProbe, **params)


def tls(**params):  # type: ignore[no-untyped-def]
    return collect(TlsProbe, **params)


def both(text: dict[str, str] | None) -> tuple[str, str]:
    assert text is not None
    assert text["en"] and text["zh-CN"], text
    return text["en"], text["zh-CN"]


# ===========================================================================================================
# http: statuses, body, timings
# ===========================================================================================================
def test_200_body_headers_and_phase_timings(http_server: Server) -> None:
    f, note = http(url=http_server.url("/ok"))
    assert f.status == 200 and f.error is None and f.error_kind is None
    assert f.body == BODY_OK.decode() and not f.body_truncated
    assert f.headers["x-served-by"] == "envprobe-test"
    assert f.headers["content-type"].startswith("text/plain")
    assert all(k == k.lower() for k in f.headers)
    assert f.final_url == http_server.url("/ok") and f.redirects == 0 and f.redirect_chain == []
    assert f.dns_ms is None  # an IP address: nothing to resolve
    assert f.tls_ms is None  # plain http
    assert f.connect_ms is not None and f.connect_ms >= 0
    assert f.ttfb_ms is not None and f.ttfb_ms >= 0
    assert f.elapsed_ms >= f.connect_ms + f.ttfb_ms
    assert f.proxy_used is None and f.proxy_source == "none"
    assert note is None
    assert http_server.requests[0][2]["User-Agent"].startswith("envprobe/")


@pytest.mark.parametrize(("path", "code"), [("/404", 404), ("/500", 500)])
def test_error_statuses_are_observations(http_server: Server, path: str, code: int) -> None:
    f, _ = http(url=http_server.url(path))
    assert f.status == code and f.error is None and f.error_kind is None
    assert f.body in ("not found", "internal error")


def test_a_name_is_resolved_and_timed(http_server: Server) -> None:
    f, _ = http(url=http_server.url("/ok", host="localhost"))
    assert f.status == 200 and f.dns_ms is not None and f.dns_ms >= 0


def test_redirect_chain_is_followed_and_recorded(http_server: Server) -> None:
    f, _ = http(url=http_server.url("/r1"))
    assert f.status == 200 and f.redirects == 2
    assert f.redirect_chain == [f"301 {http_server.url('/r1')}", f"302 {http_server.url('/r2')}"]
    assert f.final_url == http_server.url("/ok") and f.body == BODY_OK.decode()


def test_redirects_not_followed_show_the_first_answer(http_server: Server) -> None:
    f, _ = http(url=http_server.url("/r1"), follow_redirects=False)
    assert f.status == 301 and f.redirects == 0 and f.headers["location"] == "/r2"
    assert f.final_url == http_server.url("/r1")


def test_a_failure_after_redirects_keeps_the_chain(http_server: Server) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    first = http_server.url(f"/to?url={dead}")
    f, note = http(url=first)
    assert f.status is None and f.error_kind == "refused" and f.redirects == 1
    assert f.redirect_chain == [f"302 {first}"] and f.final_url is None


def test_redirect_loop_is_an_observation(http_server: Server) -> None:
    f, note = http(url=http_server.url("/loop"))
    assert f.status is None and f.error_kind == "other" and "redirects" in (f.error or "")
    both(note)


def test_slow_handler_times_out_within_the_timeout(http_server: Server) -> None:
    t0 = time.monotonic()
    f, note = http(url=http_server.url("/slow?s=5"), timeout=1)
    took = time.monotonic() - t0
    assert took < 2.0, took
    assert f.status is None and f.error_kind == "timeout"
    assert f.connect_ms is not None and f.ttfb_ms is None
    en, zh = both(note)
    assert "no response within 1 s" in en and "1 秒内无响应" in zh


def test_a_dripping_body_cannot_stretch_the_deadline(http_server: Server) -> None:
    t0 = time.monotonic()
    f, note = http(url=http_server.url("/drip"), timeout=1)
    assert time.monotonic() - t0 < 2.0
    assert f.status is None and f.error_kind == "timeout" and f.ttfb_ms is not None
    assert "body" in both(note)[0]


def test_the_check_timeout_bounds_the_probe_timeout(http_server: Server) -> None:
    t0 = time.monotonic()
    f, _ = collect(HttpProbe, timeout=1, url=http_server.url("/slow?s=5"))  # timeout param 10 s, check 1 s
    assert time.monotonic() - t0 < 1.8 and f.error_kind == "timeout"


def test_refused(http_server: Server) -> None:
    port = free_port()
    f, note = http(url=f"http://127.0.0.1:{port}/health")
    assert f.status is None and f.error_kind == "refused" and f.final_url is None
    assert f.error == f"connection refused by 127.0.0.1:{port}"
    en, zh = both(note)
    assert f"GET http://127.0.0.1:{port}/health (direct, no proxy)" in en and "ss -ltnp" in en
    assert "拒绝连接" in zh and "直连" in zh


def test_dns_failure_is_an_observation(monkeypatch: pytest.MonkeyPatch) -> None:
    guarded = socket.getaddrinfo

    def fake(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return guarded(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    f, note = http(url="http://mes.example.invalid/")
    assert f.status is None and f.error_kind == "dns" and f.dns_ms is not None
    en, zh = both(note)
    assert "mes.example.invalid does not resolve" in en and "无法解析" in zh


def test_basic_auth_and_the_password_never_shows(http_server: Server) -> None:
    f, _ = http(url=http_server.url("/auth"))
    assert f.status == 401 and f.headers["www-authenticate"].startswith("Basic")
    f, note = http(url=http_server.url("/auth"), user=AUTH_USER, password=http_server.password)
    assert f.status == 200 and f.body == "welcome, authenticated"
    dumped = json.dumps(f.model_dump()) + json.dumps(note)
    token = base64.b64encode(f"{AUTH_USER}:{http_server.password}".encode()).decode()
    assert http_server.password not in dumped and token not in dumped


def test_credentials_in_the_url_are_used_and_removed_from_results(http_server: Server) -> None:
    url = f"http://{AUTH_USER}:{http_server.password}@127.0.0.1:{http_server.port}/auth"
    f, _ = http(url=url)
    assert f.status == 200 and f.final_url == http_server.url("/auth")
    assert http_server.password not in json.dumps(f.model_dump())


def test_method_headers_and_body_are_sent(http_server: Server) -> None:
    f, _ = http(url=http_server.url("/echo"), method="post", body="名字=值",
                headers={"X-Trace": "t-1", "Content-Type": "text/plain; charset=utf-8"})
    seen = json.loads(f.body or "{}")
    assert f.status == 200 and seen["method"] == "POST" and seen["body"] == "名字=值"
    assert seen["headers"]["X-Trace"] == "t-1" and seen["headers"]["User-Agent"].startswith("envprobe/")
    f, _ = http(url=http_server.url("/echo"), headers={"User-Agent": "mes-client/1.0"})
    assert json.loads(f.body or "{}")["headers"]["User-Agent"] == "mes-client/1.0"


def test_head_has_an_empty_body(http_server: Server) -> None:
    f, _ = http(url=http_server.url("/ok"), method="HEAD")
    assert f.status == 200 and f.body == "" and f.headers["content-length"] == str(len(BODY_OK))


def test_binary_gbk_and_truncated_bodies(http_server: Server) -> None:
    f, note = http(url=http_server.url("/binary"))
    assert f.status == 200 and f.body is None
    en, zh = both(note)
    assert "binary (image/png" in en and "二进制" in zh
    f, _ = http(url=http_server.url("/gbk"))
    assert f.body == GBK_PAGE
    f, _ = http(url=http_server.url("/big"))
    assert f.body_truncated and len(f.body or "") == 64 * 1024
    f, _ = http(url=http_server.url("/big"), max_body_kb=1)
    assert f.body_truncated and f.body == ("0123456789abcde\n" * 64)
    f, _ = http(url=http_server.url("/ok"), max_body_kb=0)
    assert f.body == "" and f.body_truncated


# ===========================================================================================================
# http over TLS
# ===========================================================================================================
def test_https_with_the_test_ca(https_server: Server, certs) -> None:  # type: ignore[no-untyped-def]
    f, note = http(url=https_server.url("/ok"), ca_bundle=certs.ca_path)
    assert f.status == 200 and f.body == BODY_OK.decode()
    assert f.tls_ms is not None and f.tls_ms > 0 and f.connect_ms is not None and f.ttfb_ms is not None
    assert note is None


def test_https_untrusted_without_the_ca(https_server: Server) -> None:
    f, note = http(url=https_server.url("/ok"))
    assert f.status is None and f.error_kind == "tls" and f.tls_ms is None
    assert (f.error or "").startswith("certificate not trusted: unable to get local issuer certificate")
    en, zh = both(note)
    assert "use ca_bundle with the client's CA, or verify: false to look anyway" in en
    assert "证书不受信任" in zh and "ca_bundle" in zh and "verify: false" in zh
    assert https_server.hits["/ok"] == 0


def test_https_verify_false_looks_anyway(https_server: Server) -> None:
    f, note = http(url=https_server.url("/ok"), verify=False)
    assert f.status == 200 and f.tls_ms is not None
    en, zh = both(note)
    assert "not checked" in en and "未校验证书" in zh


def test_https_name_mismatch_and_expired(tls_server, certs) -> None:  # type: ignore[no-untyped-def]
    names_only = tls_server(certs.names_only)
    f, note = http(url=names_only.url("/ok"), ca_bundle=certs.ca_path)
    assert f.error_kind == "tls" and "does not match 127.0.0.1" in (f.error or "")
    assert "sans" in both(note)[0]
    expired = tls_server(certs.expired)
    f, _ = http(url=expired.url("/ok"), ca_bundle=certs.ca_path)
    assert f.error_kind == "tls" and "certificate has expired" in (f.error or "")


def test_https_to_a_plain_http_port(http_server: Server) -> None:
    f, note = http(url=f"https://127.0.0.1:{http_server.port}/ok", timeout=3)
    assert f.error_kind == "tls" and "wrong version number" in (f.error or "")
    assert "http:// vs https://" in both(note)[0]


def test_ca_bundle_that_does_not_exist_is_an_error(https_server: Server, tmp_path: Path) -> None:
    with pytest.raises(ProbeError) as err:
        http(url=https_server.url("/ok"), ca_bundle=str(tmp_path / "missing.pem"))
    assert "does not exist" in err.value.message["en"] and "不存在" in err.value.message["zh-CN"]
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ProbeError):
        http(url=https_server.url("/ok"), ca_bundle=str(bad))


# ===========================================================================================================
# http through a proxy
# ===========================================================================================================
def test_proxy_param_forwards_http(http_server: Server, proxy) -> None:  # type: ignore[no-untyped-def]
    f, _ = http(url=http_server.url("/ok"), proxy=proxy.url())
    assert f.status == 200 and f.body == BODY_OK.decode()
    assert proxy.forwards == [http_server.url("/ok")] and proxy.connects == []
    assert f.proxy_used == proxy.url() and f.proxy_source == "param"


def test_proxy_param_tunnels_https(https_server: Server, proxy, certs) -> None:  # type: ignore[no-untyped-def]
    f, _ = http(url=https_server.url("/r1"), proxy=proxy.url(), ca_bundle=certs.ca_path)
    assert f.status == 200 and f.redirects == 2 and f.tls_ms is not None
    assert proxy.connects == [f"127.0.0.1:{https_server.port}"]  # one tunnel, kept alive over the redirects
    assert f.proxy_used == proxy.url() and f.proxy_source == "param"


def test_environment_proxy_is_used_and_proxy_none_ignores_it(https_server: Server, proxy, certs,  # type: ignore[no-untyped-def]
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    f, note = http(url=https_server.url("/ok"), ca_bundle=certs.ca_path)
    assert f.status == 200 and f.proxy_source == "environment" and f.proxy_used == proxy.url()
    assert proxy.connects == [f"127.0.0.1:{https_server.port}"]
    en, zh = both(note)
    assert f"via proxy {proxy.url()} (from HTTPS_PROXY)" in en and "来自 HTTPS_PROXY" in zh
    f, note = http(url=https_server.url("/ok"), ca_bundle=certs.ca_path, proxy="none")
    assert f.status == 200 and f.proxy_source == "none" and f.proxy_used is None and note is None
    assert len(proxy.connects) == 1 and https_server.hits["/ok"] == 2


def test_environment_proxy_follows_the_scheme_and_no_proxy(http_server: Server, proxy,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    f, _ = http(url=http_server.url("/ok"))  # an http URL: HTTPS_PROXY does not apply
    assert f.proxy_source == "none" and proxy.count == 0
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.0/8")
    f, note = http(url=http_server.url("/ok"))
    assert f.status == 200 and f.proxy_source == "none" and proxy.count == 0
    en, zh = both(note)
    assert "HTTP_PROXY is set, but NO_PROXY exempts this host" in en and "豁免" in zh
    monkeypatch.delenv("NO_PROXY")
    f, _ = http(url=http_server.url("/ok"))
    assert f.proxy_source == "environment" and proxy.forwards == [http_server.url("/ok")]


@pytest.mark.skipif(sys.platform == "win32", reason="environment names are case-insensitive on Windows")
def test_lower_case_proxy_variable_wins(http_server: Server, proxy,  # type: ignore[no-untyped-def]
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("http_proxy", proxy.url())
    f, _ = http(url=http_server.url("/ok"))
    assert f.status == 200 and proxy.count == 1


def test_each_redirect_hop_chooses_its_proxy(http_server: Server, https_server: Server, proxy, certs,  # type: ignore[no-untyped-def]
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    f, _ = http(url=http_server.url(f"/to?url={https_server.url('/ok')}"), ca_bundle=certs.ca_path)
    assert f.status == 200 and f.redirects == 1 and f.final_url == https_server.url("/ok")
    assert http_server.hits["/to"] == 1 and proxy.forwards == []  # first hop direct
    assert proxy.connects == [f"127.0.0.1:{https_server.port}"]  # second hop through the proxy
    assert f.proxy_used == proxy.url() and f.proxy_source == "environment"


def test_proxy_with_credentials(http_server: Server, https_server: Server, make_proxy, certs) -> None:  # type: ignore[no-untyped-def]
    p = make_proxy(auth=("puser", "proxy-pw-123"))
    f, _ = http(url=https_server.url("/ok"), proxy=p.url(with_auth=True), ca_bundle=certs.ca_path)
    assert f.status == 200 and f.proxy_used == p.url() and "proxy-pw-123" not in json.dumps(f.model_dump())
    f, note = http(url=https_server.url("/ok"), proxy=p.url(), ca_bundle=certs.ca_path)
    assert f.status is None and f.error_kind == "proxy" and "407" in (f.error or "")
    en, zh = both(note)
    assert "407: the proxy wants credentials" in en and "代理需要认证" in zh
    f, _ = http(url=http_server.url("/ok"), proxy=p.url())  # forwarding: the proxy's answer is the response
    assert f.status == 407 and f.error is None


def test_proxy_refused(http_server: Server) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    f, note = http(url=http_server.url("/ok"), proxy=dead)
    assert f.status is None and f.error_kind == "proxy" and f.proxy_used == dead
    en, zh = both(note)
    assert f"the proxy {dead[7:]} refused the connection" in en and "proxy: none" in en and "代理" in zh


def test_silent_proxy_times_out_within_the_timeout(https_server: Server) -> None:
    s, port = silent_listener()
    try:
        t0 = time.monotonic()
        f, note = http(url=https_server.url("/ok"), proxy=f"http://127.0.0.1:{port}", timeout=1)
        assert time.monotonic() - t0 < 2.0
        assert f.status is None and f.error_kind == "proxy"
        en, zh = both(note)
        assert f"the proxy 127.0.0.1:{port} did not answer within 1 s" in en and "代理" in zh
    finally:
        s.close()


def test_proxy_that_refuses_the_destination(https_server: Server, proxy, certs) -> None:  # type: ignore[no-untyped-def]
    f, _ = http(url=f"https://127.0.0.1:{free_port()}/", proxy=proxy.url(), ca_bundle=certs.ca_path)
    assert f.error_kind == "proxy" and "502" in (f.error or "")


def test_socks_proxy_in_the_environment_is_an_error(http_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ProbeError) as err:
        http(url=http_server.url("/ok"))
    assert "ALL_PROXY" in err.value.message["en"]


# ===========================================================================================================
# http: vantage
# ===========================================================================================================
def test_http_connects_through_the_transport(http_server: Server, proxy,  # type: ignore[no-untyped-def]
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    v = Vantage()
    f, _ = http(transport=v, url=http_server.url("/r1"))
    assert f.status == 200 and v.connects == [("127.0.0.1", http_server.port)]  # one kept-alive connection
    v = Vantage()
    f, _ = http(transport=v, url=http_server.url("/ok", host="localhost"))
    assert f.status == 200 and v.connects == [("localhost", http_server.port)] and f.dns_ms is None
    # the vantage host's environment decides the proxy: read there, once
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    v = Vantage()
    f, _ = http(transport=v, url=http_server.url("/ok"))
    assert f.proxy_source == "environment" and v.connects == [("127.0.0.1", proxy.port)]
    assert v.commands == [["env"]]


# ===========================================================================================================
# http: parameters and pure helpers
# ===========================================================================================================
def test_params_are_validated() -> None:
    P = HttpProbe.Params
    assert P.model_validate({"url": "http://127.0.0.1/", "method": "head", "timeout": "500ms"}).method == "HEAD"
    assert P.model_validate({"url": "http://127.0.0.1/", "timeout": "500ms"}).timeout == 0.5
    assert P.model_validate({"url": "http://127.0.0.1/", "proxy": "127.0.0.1:3128"}).proxy == "http://127.0.0.1:3128"
    assert P.model_validate({"url": "http://127.0.0.1/", "proxy": "None"}).proxy == "none"
    for bad in ({"url": "ftp://x/"}, {"url": "http:///x"}, {"url": "http://127.0.0.1:99999/"},
                {"url": "http://127.0.0.1/", "password": "x"}, {"url": "http://127.0.0.1/", "proxy": "socks5://h:1"},
                {"url": "http://127.0.0.1/", "method": "GE T"}, {"url": "http://127.0.0.1/", "timeout": 0}):
        with pytest.raises(ValidationError):
            P.model_validate(bad)


@pytest.mark.parametrize(("host", "port", "no_proxy", "exempt"), [
    ("10.0.0.5", 80, "10.0.0.0/8", True),
    ("10.0.0.5", 80, "10.0.0.5", True),
    ("10.0.0.5", 80, "192.168.0.0/16, .example.cn", False),
    ("mes.example.cn", 443, ".example.cn", True),
    ("mes.example.cn", 443, "example.cn", True),
    ("mes.example.cn", 443, "*.example.cn", True),
    ("badexample.cn", 443, "example.cn", False),
    ("mes.example.cn", 443, "mes.example.cn:8443", False),
    ("mes.example.cn", 8443, "mes.example.cn:8443", True),
    ("anything", 80, "*", True),
    ("::1", 80, "::1", True),
    ("localhost", 80, "", False),
])
def test_no_proxy_matching(host: str, port: int, no_proxy: str, exempt: bool) -> None:
    assert no_proxy_match(host, port, no_proxy) is exempt


def test_env_proxy_choice() -> None:
    env = {"HTTPS_PROXY": "10.0.0.254:3128", "http_proxy": "http://p:8080", "HTTP_PROXY": "http://ignored:1",
           "NO_PROXY": ".internal"}
    assert env_proxy("https://x.example.com/", env) == ("http://10.0.0.254:3128", "HTTPS_PROXY", None)
    assert env_proxy("http://x.example.com/", env) == ("http://p:8080", "http_proxy", None)
    assert env_proxy("https://a.internal/", env) == (None, "HTTPS_PROXY", "NO_PROXY")
    assert env_proxy("http://x/", {"ALL_PROXY": "http://all:1"}) == ("http://all:1", "ALL_PROXY", None)
    assert env_proxy("http://x/", {}) == (None, None, None)


def test_decode_body_and_redact() -> None:
    assert decode_body("中文".encode("gbk"), "text/html; charset=GB2312") == "中文"
    assert decode_body("中文".encode(), None) == "中文"
    assert decode_body("中文".encode("gb18030"), "text/plain") == "中文"
    assert decode_body(b"\x00\x01\x02", "application/octet-stream") is None
    assert decode_body(b'{"a": 1}', "application/json") == '{"a": 1}'
    assert decode_body("中文".encode()[:-1], "text/plain", truncated=True) == "中"
    assert redact_url("http://u:p@h:1/x?y=1") == "http://h:1/x?y=1"
    assert redact_url("https://h/") == "https://h/"


# ===========================================================================================================
# tls
# ===========================================================================================================
def test_tls_valid_certificate_from_the_test_ca(tls_server, certs) -> None:  # type: ignore[no-untyped-def]
    srv = tls_server(certs.valid)
    f, note = tls(host="127.0.0.1", port=srv.port, ca_bundle=certs.ca_path)
    assert f.verified is True and f.verify_error is None and f.hostname_match is True and not f.self_signed
    assert set(f.sans) == {"127.0.0.1", "app.example.test"}
    assert "CN=app.example.test" in f.subject and "envprobe test CA" in f.issuer
    assert f.days_left > 300 and f.not_after.endswith("Z") and f.not_before < f.not_after
    assert f.protocol == "TLSv1.3" and f.cipher.startswith("TLS_")
    assert (f.key_type, f.key_bits, f.signature_hash) == ("EC", 256, "sha256")
    assert len(f.fingerprint_sha256.split(":")) == 32 and f.handshake_ms > 0
    assert note is None


def test_tls_server_name_is_matched(tls_server, certs) -> None:  # type: ignore[no-untyped-def]
    srv = tls_server(certs.names_only)
    f, note = tls(host="127.0.0.1", port=srv.port, ca_bundle=certs.ca_path)
    assert f.verified is True and f.hostname_match is False
    en, zh = both(note)
    assert "127.0.0.1 is not among the certificate's names (app.example.test)" in en and "不在证书的名称中" in zh
    f, note = tls(host="127.0.0.1", port=srv.port, ca_bundle=certs.ca_path, server_name="app.example.test")
    assert f.hostname_match is True and note is None
    f, _ = tls(host="127.0.0.1", port=srv.port, ca_bundle=certs.ca_path, server_name="other.example.test")
    assert f.hostname_match is False


def test_tls_unknown_issuer_without_the_ca(tls_server, certs) -> None:  # type: ignore[no-untyped-def]
    srv = tls_server(certs.valid)
    f, note = tls(host="127.0.0.1", port=srv.port)
    assert f.verified is False and f.verify_error == "unable to get local issuer certificate"
    assert f.days_left > 300 and f.hostname_match  # the certificate was still read
    en, zh = both(note)
    assert "certificate not trusted" in en and "证书不受信任" in zh


def test_tls_self_signed(tls_server, certs) -> None:  # type: ignore[no-untyped-def]
    srv = tls_server(certs.self_signed)
    f, note = tls(host="127.0.0.1", port=srv.port, server_name="selfsigned.example.test")
    assert f.self_signed is True and f.verified is False and "self-signed" in (f.verify_error or "").replace(" ", "-")
    assert f.subject == f.issuer and "某制造企业" in f.subject
    assert (f.key_type, f.key_bits) == ("RSA", 2048) and f.hostname_match
    en, zh = both(note)
    assert "self-signed" in en and "自签名" in zh


def test_tls_expired(tls_server, certs) -> None:  # type: ignore[no-untyped-def]
    srv = tls_server(certs.expired)
    f, note = tls(host="127.0.0.1", port=srv.port, ca_bundle=certs.ca_path)
    assert f.verified is False and f.verify_error == "certificate has expired"
    assert -3.2 <= f.days_left <= -2.8
    en, zh = both(note)
    assert "the certificate expired on" in en and "days ago" in en and "证书已于" in zh and "过期" in zh


def test_tls_expiring_in_ten_days(tls_server, certs) -> None:  # type: ignore[no-untyped-def]
    srv = tls_server(certs.soon)
    f, note = tls(host="127.0.0.1", port=srv.port, ca_bundle=certs.ca_path)
    assert f.verified is True and 9.9 <= f.days_left <= 10.0 and note is None


def test_tls_verify_false_only_reads(tls_server, certs) -> None:  # type: ignore[no-untyped-def]
    srv = tls_server(certs.self_signed)
    f, _ = tls(host="127.0.0.1", port=srv.port, verify=False)
    assert f.verified is None and f.verify_error is None and f.self_signed


def test_tls_refused_and_not_tls_are_errors(http_server: Server) -> None:
    port = free_port()
    with pytest.raises(ProbeError) as err:
        tls(host="127.0.0.1", port=port)
    en, zh = both(err.value.message)
    assert f"TLS 127.0.0.1:{port}: connection refused" in en and "连接被拒绝" in zh
    assert err.value.hint is not None
    with pytest.raises(ProbeError) as err:
        tls(host="127.0.0.1", port=http_server.port, timeout=3)
    en, zh = both(err.value.message)
    assert "the handshake failed" in en and "does not speak TLS" in en and "握手失败" in zh


def test_tls_silent_port_ends_within_the_timeout() -> None:
    s, port = silent_listener()
    try:
        t0 = time.monotonic()
        with pytest.raises(ProbeError) as err:
            tls(host="127.0.0.1", port=port, timeout=1)
        assert time.monotonic() - t0 < 2.0
        assert "did not finish within 1 s" in err.value.message["en"]
    finally:
        s.close()


def test_tls_connects_through_the_transport(tls_server, certs) -> None:  # type: ignore[no-untyped-def]
    srv = tls_server(certs.self_signed)
    v = Vantage()
    f, _ = tls(transport=v, host="127.0.0.1", port=srv.port)
    assert v.connects == [("127.0.0.1", srv.port)] * 2  # the trusted try, then the reading one
    assert f.self_signed
    v = Vantage()
    tls(transport=v, host="localhost", port=srv.port, verify=False)
    assert v.connects == [("localhost", srv.port)]


@pytest.mark.parametrize(("name", "sans", "ok"), [
    ("mes.example.cn", ["mes.example.cn"], True),
    ("MES.example.cn.", ["mes.example.cn"], True),
    ("a.example.cn", ["*.example.cn"], True),
    ("a.b.example.cn", ["*.example.cn"], False),
    ("example.cn", ["*.example.cn"], False),
    ("x.com", ["*.com"], False),
    ("web01.example.cn", ["web*.example.cn"], True),
    ("10.0.0.5", ["10.0.0.5"], True),
    ("10.0.0.5", ["*.0.0.5"], False),
    ("::1", ["0:0::1"], True),
    ("mes.example.cn", [], False),
])
def test_hostname_matching(name: str, sans: list[str], ok: bool) -> None:
    assert hostname_matches(name, sans) is ok


def test_certificate_facts_from_der(certs) -> None:  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = certs.self_signed[0]
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    facts = certificate_facts(der, "127.0.0.1")
    assert facts["hostname_match"] and facts["self_signed"] and 364 <= facts["days_left"] <= 365


# ===========================================================================================================
# whole scans, in process
# ===========================================================================================================
def _scan(tmp_path: Path, checks: list[dict], environ: dict[str, str] | None = None,  # type: ignore[type-arg]
          lang: str = "en"):  # type: ignore[no-untyped-def]
    cl = tmp_path / "checklist.yaml"
    cl.write_text(yaml.safe_dump({"version": 1, "name": {"zh-CN": "网络检查", "en": "Network checks"},
                                  "checks": checks}, allow_unicode=True), encoding="utf-8")
    out = {k: tmp_path / f"result.{k}" for k in ("json", "html", "log")}
    res = cli("scan", str(cl), "--json", str(out["json"]), "--html", str(out["html"]), "--lang", lang,
              "--debug-log", str(out["log"]), environ=environ)
    data = json.loads(out["json"].read_text(encoding="utf-8")) if out["json"].exists() else {}
    return res, data, out


def test_scan_mixing_http_and_tls(tmp_path: Path, http_server: Server, https_server: Server, tls_server,  # type: ignore[no-untyped-def]
                                  certs) -> None:
    expired, selfsigned = tls_server(certs.expired), tls_server(certs.self_signed)
    dead = free_port()
    checks = [
        {"id": "web-ok", "probe": "http", "with": {"url": http_server.url("/ok")},
         "expect": {"status": 200, "body": "contains OK", "elapsed_ms": "< 5000"}},
        {"id": "web-404", "probe": "http", "with": {"url": http_server.url("/404")}, "expect": {"status": 404}},
        {"id": "web-500", "probe": "http", "with": {"url": http_server.url("/500")}, "expect": {"status": 200}},
        {"id": "web-redirects", "probe": "http", "with": {"url": http_server.url("/r1")},
         "expect": {"status": 200, "redirects": 2, "final_url": "~ /ok$"}},
        {"id": "web-down", "probe": "http", "with": {"url": f"http://127.0.0.1:{dead}/"}, "expect": {"status": 200}},
        {"id": "web-blocked", "probe": "http", "with": {"url": f"http://127.0.0.1:{dead}/"},
         "expect": {"error_kind": "in [refused, timeout]"}},
        {"id": "web-tls", "probe": "http", "with": {"url": https_server.url("/ok"), "ca_bundle": certs.ca_path},
         "expect": {"status": 200, "tls_ms": "< 2000"}},
        {"id": "web-untrusted", "probe": "http", "with": {"url": https_server.url("/ok")},
         "expect": {"status": 200}},
        {"id": "cert-ok", "probe": "tls",
         "with": {"host": "127.0.0.1", "port": https_server.port, "ca_bundle": certs.ca_path,
                  "server_name": "app.example.test"},
         "expect": {"days_left": ">= 30", "verified": True, "hostname_match": True,
                    "protocol": "in [TLSv1.2, TLSv1.3]"}},
        {"id": "cert-expired", "probe": "tls",
         "with": {"host": "127.0.0.1", "port": expired.port, "ca_bundle": certs.ca_path},
         "expect": {"days_left": ">= 30"}},
        {"id": "cert-self-signed", "probe": "tls", "with": {"host": "127.0.0.1", "port": selfsigned.port},
         "expect": {"verified": True}, "severity": "recommended"},
        {"id": "cert-down", "probe": "tls", "with": {"host": "127.0.0.1", "port": dead},
         "expect": {"days_left": ">= 30"}},
    ]
    t0 = time.monotonic()
    res, data, out = _scan(tmp_path, checks)
    assert time.monotonic() - t0 < 10
    assert res.code == 1, res.err  # failures: not ready
    by_id = {r["check"]: r for r in data["results"]}
    want = {"web-ok": "pass", "web-404": "pass", "web-500": "fail", "web-redirects": "pass", "web-down": "fail",
            "web-blocked": "pass", "web-tls": "pass", "web-untrusted": "fail", "cert-ok": "pass",
            "cert-expired": "fail", "cert-self-signed": "warn", "cert-down": "error"}
    assert {k: r["status"] for k, r in by_id.items()} == want
    assert data["summary"]["verdict"] == "not-ready"
    for r in data["results"]:
        assert r["message"]["en"] and r["message"]["zh-CN"], r
    msg = {k: r["message"] for k, r in by_id.items()}
    assert "status is 500" in msg["web-500"]["en"] or "500" in msg["web-500"]["en"]
    assert f"connection refused by 127.0.0.1:{dead}" in msg["web-down"]["en"]
    assert "拒绝连接" in msg["web-down"]["zh-CN"]
    assert "certificate not trusted" in msg["web-untrusted"]["en"] and "证书不受信任" in msg["web-untrusted"]["zh-CN"]
    assert "expired" in msg["cert-expired"]["en"] and "过期" in msg["cert-expired"]["zh-CN"]
    assert "self-signed" in msg["cert-self-signed"]["en"] and "自签名" in msg["cert-self-signed"]["zh-CN"]
    assert "connection refused" in msg["cert-down"]["en"] and "连接被拒绝" in msg["cert-down"]["zh-CN"]
    assert by_id["cert-expired"]["hint"]["en"].startswith("renew the certificate")
    assert by_id["web-ok"]["observed"]["status"] == 200 and by_id["cert-ok"]["observed"]["verified"] is True
    html_en = out["html"].read_text(encoding="utf-8")
    assert "NOT READY" in html_en and "certificate not trusted" in html_en
    res = cli("report", str(out["json"]), "--html", str(tmp_path / "zh.html"), "--lang", "zh-CN")
    html_zh = (tmp_path / "zh.html").read_text(encoding="utf-8")
    assert res.code == 0 and "未就绪" in html_zh and "证书不受信任" in html_zh


def test_scan_never_shows_the_basic_auth_password(tmp_path: Path) -> None:
    canary = "Canary-9f3b7e1d-PW"
    token = "tok-5d1e2c8a-canary"
    srv = Server(password=canary)
    try:
        checks = [
            {"id": "login", "probe": "http",
             "with": {"url": srv.url("/auth"), "user": AUTH_USER, "password": "${env:EP_CANARY}"},
             "expect": {"status": 200}},
            {"id": "login-in-url", "probe": "http",
             "with": {"url": f"http://{AUTH_USER}:${{env:EP_CANARY}}@127.0.0.1:{srv.port}/auth"},
             "expect": {"status": 200}},
            {"id": "login-wrong", "probe": "http",
             "with": {"url": srv.url("/auth"), "user": AUTH_USER, "password": "${env:EP_WRONG}"},
             "expect": {"status": 200}},
            {"id": "token-echo", "probe": "http",
             "with": {"url": srv.url("/echo"), "headers": {"X-Api-Token": "${env:EP_TOKEN}",
                                                          "Authorization": "Bearer ${env:EP_TOKEN}"}},
             "expect": {"status": 200, "body": "contains X-Api-Token"}},
        ]
        res, data, out = _scan(tmp_path, checks,
                               environ={"EP_CANARY": canary, "EP_WRONG": "wrong-" + canary, "EP_TOKEN": token})
        statuses = {r["check"]: r["status"] for r in data["results"]}
        assert statuses == {"login": "pass", "login-in-url": "pass", "login-wrong": "fail", "token-echo": "pass"}
        assert srv.hits["/auth"] == 3
        b64 = base64.b64encode(f"{AUTH_USER}:{canary}".encode()).decode()
        texts = [res.out, res.err] + [p.read_text(encoding="utf-8") for p in out.values() if p.exists()]
        for text in texts:
            assert canary not in text and b64 not in text and token not in text
        assert "******" in json.dumps(data)  # the echoed token was masked, not dropped
    finally:
        srv.stop()


def test_scan_is_bounded_by_the_check_timeout(tmp_path: Path, http_server: Server) -> None:
    checks = [{"id": "slow", "probe": "http", "timeout": "1s",
               "with": {"url": http_server.url("/slow?s=5"), "timeout": 5}, "expect": {"status": 200}}]
    t0 = time.monotonic()
    res, data, _ = _scan(tmp_path, checks, lang="zh-CN")
    assert time.monotonic() - t0 < 2.5
    r = data["results"][0]
    assert r["status"] == "fail" and r["observed"]["error_kind"] == "timeout" and r["duration_ms"] < 2000
    assert "秒内无响应" in r["message"]["zh-CN"] and "no response within" in r["message"]["en"]


def test_probes_describe_http_and_tls() -> None:
    for name, fields in (("http", ("status", "ttfb_ms", "proxy_source", "error_kind")),
                         ("tls", ("days_left", "hostname_match", "verify_error"))):
        res = cli("probes", name)
        assert res.code == 0 and "Example:" in res.out
        for f in fields:
            assert f in res.out


def test_no_test_here_reads_proxy_settings_from_the_machine() -> None:
    assert not any(os.environ.get(v) or os.environ.get(v.upper()) for v in PROXY_VARS)


# ===========================================================================================================
# over SSH: the probes run on the laptop, every connection is opened by the remote host (direct-tcpip)
# ===========================================================================================================
def test_http_and_tls_from_a_remote_host_over_ssh(tmp_path: Path, http_server: Server, https_server: Server,  # type: ignore[no-untyped-def]
                                                 tls_server, certs, proxy) -> None:
    from tests.sshfix import SshServer, keygen, need_sshd

    need_sshd()
    key = keygen(tmp_path / "client_key")
    sshd = SshServer(tmp_path / "h1", key).start()
    try:
        inv = tmp_path / "inventory.yaml"
        inv.write_text(yaml.safe_dump({"hosts": {"h1": {"address": "127.0.0.1", "port": sshd.port, "user": "root",
                                                        "key": str(key)}}}))
        selfsigned = tls_server(certs.self_signed)
        dead = free_port()
        checks = [
            {"id": "web", "probe": "http", "hosts": ["h1"], "with": {"url": http_server.url("/r1")},
             "expect": {"status": 200, "redirects": 2, "body": "contains OK"}},
            {"id": "web-by-name", "probe": "http", "hosts": ["h1"],
             "with": {"url": http_server.url("/ok", host="localhost")}, "expect": {"status": 200}},
            {"id": "web-tls", "probe": "http", "hosts": ["h1"],
             "with": {"url": https_server.url("/ok"), "ca_bundle": certs.ca_path}, "expect": {"status": 200}},
            {"id": "web-proxy", "probe": "http", "hosts": ["h1"],
             "with": {"url": https_server.url("/ok"), "ca_bundle": certs.ca_path, "proxy": proxy.url()},
             "expect": {"status": 200, "proxy_source": "param"}},
            {"id": "web-from", "probe": "http", "from": "h1", "with": {"url": http_server.url("/404")},
             "expect": {"status": 404}},
            {"id": "web-down", "probe": "http", "hosts": ["h1"], "with": {"url": f"http://127.0.0.1:{dead}/"},
             "expect": {"error_kind": "refused"}},
            {"id": "cert", "probe": "tls", "hosts": ["h1"],
             "with": {"host": "127.0.0.1", "port": https_server.port, "ca_bundle": certs.ca_path,
                      "server_name": "app.example.test"},
             "expect": {"verified": True, "hostname_match": True, "days_left": ">= 30"}},
            {"id": "cert-self-signed", "probe": "tls", "hosts": ["h1"],
             "with": {"host": "127.0.0.1", "port": selfsigned.port}, "expect": {"self_signed": True, "verified": False}},
        ]
        cl = tmp_path / "checklist.yaml"
        cl.write_text(yaml.safe_dump({"version": 1, "checks": checks}))
        out = tmp_path / "r.json"
        for _attempt in range(2):
            res = cli("scan", str(cl), "-i", str(inv), "--known-hosts", str(tmp_path / "kh"),
                      "--accept-new-hostkeys", "--json", str(out), "--lang", "en")
            data = json.loads(out.read_text())
            # Known race in the SSH transport, not in these probes: SshTransport._exec sends EOF (shutdown_write)
            # after a command so fast that paramiko already answered the server's CLOSE; sshd then drops the
            # whole connection ("ieof packet referred to nonexistent channel"). Retry once on exactly that.
            if "referred to nonexistent channel" not in sshd.log.read_text(errors="replace"):
                break
            sshd.log.write_text("")
        by_id = {r["check"]: r for r in data["results"]}
        assert {k: r["status"] for k, r in by_id.items()} == dict.fromkeys(by_id, "pass"), \
            {k: r["message"]["en"] for k, r in by_id.items() if r["status"] != "pass"}
        assert res.code == 0
        assert by_id["web-from"]["from"] == "h1" and by_id["web-by-name"]["observed"]["dns_ms"] is None
        assert by_id["web-tls"]["observed"]["tls_ms"] is not None
        assert proxy.connects == [f"127.0.0.1:{https_server.port}"]
        # every TCP connection was opened by the SSH server (one per http check, two for the untrusted cert)
        assert sshd.count("direct-tcpip") >= 9
    finally:
        sshd.stop()


def test_heavy_libraries_are_imported_only_by_a_check() -> None:
    import subprocess

    code = ("import sys, envprobe.probes.http, envprobe.probes.tls\n"
            "heavy = [m for m in ('requests', 'urllib3', 'cryptography') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
