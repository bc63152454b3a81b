"""Remote scans over SSH against real sshd servers (loopback): host keys, auth failures, dead hosts, batching."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import cli
from tests.sshfix import SshServer, keygen, need_sshd


@pytest.fixture
def lab(tmp_path: Path):
    need_sshd()
    client_key = keygen(tmp_path / "client_key")
    servers: list[SshServer] = []

    def start(name: str, **kw) -> SshServer:
        srv = SshServer(tmp_path / name, client_key, **kw).start()
        servers.append(srv)
        return srv

    yield start, client_key, tmp_path
    for s in servers:
        s.stop()


def inventory(tmp_path: Path, client_key: Path, hosts: dict[str, dict]) -> Path:
    inv = {"hosts": {n: {"address": "127.0.0.1", "user": "root", "key": str(client_key), **h}
                     for n, h in hosts.items()}}
    p = tmp_path / "inventory.yaml"
    p.write_text(yaml.safe_dump(inv))
    return p


def checklist(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "checklist.yaml"
    p.write_text(text)
    return p


def scan(*args: str, tmp_path: Path, environ: dict[str, str] | None = None) -> tuple[int, dict, str]:
    out = tmp_path / f"r{time.monotonic_ns()}.json"
    res = cli("scan", *args, "--json", str(out), "--lang", "en", environ=environ)
    return res.code, json.loads(out.read_text()) if out.exists() else {}, res.out + res.err


SIMPLE = """\
version: 1
checks:
  - {id: os, probe: os, hosts: [all], expect: {family: linux}}
  - {id: mem, probe: memory, hosts: [all], expect: {total_gb: "> 0.5"}}
"""


def test_unknown_key_refused_then_accepted_then_changed_key_refused(lab):
    start, key, tmp = lab
    srv = start("h1")
    inv = inventory(tmp, key, {"h1": {"port": srv.port}})
    cl = checklist(tmp, SIMPLE)
    kh = tmp / "known_hosts"
    code, data, text = scan(str(cl), "-i", str(inv), "--known-hosts", str(kh), tmp_path=tmp)
    assert code == 3
    r = data["results"][0]
    assert r["status"] == "error" and r["reason"] == "hostkey-unknown"
    fp = os.popen(f"ssh-keygen -lf {srv.host_key}.pub").read().split()[1]
    assert fp.startswith("SHA256:") and fp in r["message"]["en"] and "--accept-new-hostkeys" in r["message"]["en"]
    assert "主机密钥未知" in r["message"]["zh-CN"]
    assert srv.logins == 0  # nothing was sent
    # trust on first use records the key
    code, data, _ = scan(str(cl), "-i", str(inv), "--known-hosts", str(kh), "--accept-new-hostkeys", tmp_path=tmp)
    assert code == 0 and {r["status"] for r in data["results"]} == {"pass"}
    assert f"[127.0.0.1]:{srv.port}" in kh.read_text()
    code, data, _ = scan(str(cl), "-i", str(inv), "--known-hosts", str(kh), tmp_path=tmp)
    assert code == 0
    # the server's key changes: refused, even with the flag, with a warning
    srv.restart_with_host_key(keygen(tmp / "other_host_key"))
    code, data, _ = scan(str(cl), "-i", str(inv), "--known-hosts", str(kh), "--accept-new-hostkeys", tmp_path=tmp)
    r = data["results"][0]
    assert code == 3 and r["reason"] == "hostkey-changed"
    assert "intercepting" in r["message"]["en"] and "拦截" in r["message"]["zh-CN"]
    assert srv.logins == 0


def test_auth_failures_and_dead_host_among_live_ones(lab):
    start, key, tmp = lab
    good = start("good")
    pw_only = start("pw", password_only=True)
    wrong_key = keygen(tmp / "wrong_key")
    dead_port = good.port + 1 if good.port < 65000 else good.port - 1
    inv = inventory(tmp, key, {
        "good": {"port": good.port},
        "wrongkey": {"port": good.port, "key": str(wrong_key)},
        "pwonly": {"port": pw_only.port},
        "dead": {"port": dead_port, "connect_timeout": 2},
    })
    cl = checklist(tmp, SIMPLE)
    t0 = time.perf_counter()
    code, data, text = scan(str(cl), "-i", str(inv), "--known-hosts", str(tmp / "kh"), "--accept-new-hostkeys",
                            tmp_path=tmp)
    assert time.perf_counter() - t0 < 15
    by_host: dict[str, set[tuple[str, str | None]]] = {}
    for r in data["results"]:
        by_host.setdefault(r["host"], set()).add((r["status"], r.get("reason")))
    assert by_host["good"] == {("pass", None)}
    assert by_host["wrongkey"] == {("error", "auth-failed")}
    assert by_host["pwonly"] == {("error", "auth-failed")}
    assert by_host["dead"] == {("error", "unreachable")}
    assert code == 3
    pw = next(r for r in data["results"] if r["host"] == "pwonly")
    assert "password" in pw["message"]["en"]  # says what the server accepts
    assert "Traceback" not in text
    # the live host's facts are the facts of this machine (the server runs here)
    assert data["hosts"]["good"]["facts"]["os"]["kernel"] == os.uname().release
    assert not any(data["hosts"]["dead"]["facts"].values())


def test_thirty_checks_one_login_few_execs_and_facts_agree_with_local(lab, tmp_path):
    start, key, tmp = lab
    srv = start("h1")
    inv = inventory(tmp, key, {"h1": {"port": srv.port}})
    (tmp / "f.txt").write_text("hello envprobe\n")
    checks = []
    for i in range(6):
        checks += [
            {"id": f"os-{i}", "probe": "os", "expect": {"family": "linux"}},
            {"id": f"mem-{i}", "probe": "memory", "expect": {"total_gb": "> 0.5"}},
            {"id": f"disk-{i}", "probe": "disk", "with": {"path": "/"}, "expect": {"total_gb": "> 1"}},
            {"id": f"file-{i}", "probe": "file", "with": {"path": str(tmp / "f.txt"), "contains": "envprobe"},
             "expect": {"exists": True, "content_match": True}},
            {"id": f"cmd-{i}", "probe": "command", "with": {"run": f"echo run-{i}"},
             "expect": {"stdout": f"run-{i}", "exit_code": 0}},
        ]
    for c in checks:
        c["hosts"] = ["h1", "local"]
    cl = checklist(tmp, yaml.safe_dump({"version": 1, "checks": checks}))
    before_exec, before_login = srv.exec_requests, srv.logins
    code, data, text = scan(str(cl), "-i", str(inv), "--known-hosts", str(tmp / "kh"), "--accept-new-hostkeys",
                            tmp_path=tmp)
    assert code == 0, text
    remote = [r for r in data["results"] if r["host"] == "h1"]
    assert len(remote) == 30 and all(r["status"] == "pass" for r in remote)
    assert srv.logins - before_login == 1
    execs = srv.exec_requests - before_exec
    assert 1 <= execs <= 5, execs
    # remote (shell path over SSH) and local (native) observations of the same machine agree
    local = {r["check"]: r["observed"] for r in data["results"] if r["host"] == "local"}
    rem = {r["check"]: r["observed"] for r in remote}
    for k in ("family", "id", "kernel", "arch", "hostname"):
        assert rem["os-0"][k] == local["os-0"][k], k
    assert abs(rem["mem-0"]["total_gb"] - local["mem-0"]["total_gb"]) < 0.02
    assert abs(rem["disk-0"]["total_gb"] - local["disk-0"]["total_gb"]) < 0.02
    assert rem["file-0"]["sha256"] == local["file-0"]["sha256"]


def test_remote_command_output_masks_secrets(lab):
    start, key, tmp = lab
    srv = start("h1")
    inv = inventory(tmp, key, {"h1": {"port": srv.port}})
    cl = checklist(tmp, "version: 1\nchecks:\n  - {id: leak, probe: command, hosts: [h1], "
                        "with: {run: 'echo token=${env:TOK}'}, expect: {exit_code: 0}}\n")
    code, data, text = scan(str(cl), "-i", str(inv), "--known-hosts", str(tmp / "kh"), "--accept-new-hostkeys",
                            tmp_path=tmp, environ={"TOK": "S3cr3t-Remote-77"})
    assert code == 0
    dumped = json.dumps(data)
    assert "S3cr3t-Remote-77" not in dumped + text and "token=******" in dumped


def test_limit_selects_hosts(lab):
    start, key, tmp = lab
    srv = start("h1")
    inv = inventory(tmp, key, {"h1": {"port": srv.port}, "h2": {"port": 1, "connect_timeout": 1}})
    cl = checklist(tmp, SIMPLE)
    code, data, _ = scan(str(cl), "-i", str(inv), "--limit", "h1", "--known-hosts", str(tmp / "kh"),
                         "--accept-new-hostkeys", tmp_path=tmp)
    assert code == 0 and {r["host"] for r in data["results"]} == {"h1"}
    res = cli("scan", str(cl), "-i", str(inv), "--limit", "nope*")
    assert res.code == 2 and "matches no host" in res.err


def test_ssh_test_infrastructure_is_present_in_ci():
    # in CI the binaries must be there (scripts/test installs them); on a laptop this skips
    need_sshd()
    assert shutil.which("ssh-keygen")


def test_port_proof_on_a_remote_host(lab):
    import socket

    start, key, tmp = lab
    srv = start("h1")
    inv = inventory(tmp, key, {"h1": {"port": srv.port}})
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen()
    taken = busy.getsockname()[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    cl = checklist(tmp, f"""\
version: 1
checks:
  - {{id: path-open, probe: port_proof, hosts: [h1], with: {{port: {free}}}, expect: {{state: open}}}}
  - {{id: port-taken, probe: port_proof, hosts: [h1], with: {{port: {taken}}}, expect: {{state: open}}}}
""")
    try:
        code, data, text = scan(str(cl), "-i", str(inv), "--known-hosts", str(tmp / "kh"), "--accept-new-hostkeys",
                                tmp_path=tmp)
    finally:
        busy.close()
    r = {x["check"]: x for x in data["results"]}
    assert r["path-open"]["status"] == "pass", r["path-open"]["message"]
    assert r["path-open"]["observed"]["accepted_from"] == "127.0.0.1"
    assert r["port-taken"]["status"] == "fail" and r["port-taken"]["observed"]["state"] == "port-in-use"
    assert "already taken" in r["port-taken"]["message"]["en"] and "已被占用" in r["port-taken"]["message"]["zh-CN"]
    # after the check, nothing listens on the proven port any more
    import subprocess

    listening = subprocess.run(["ss", "-Hltn", f"sport = :{free}"], capture_output=True, text=True).stdout
    assert listening.strip() == "", listening


def test_jump_hosts_from_inventory_and_ssh_config(lab):
    start, key, tmp = lab
    bastion = start("bastion")
    target = start("target")
    inv = inventory(tmp, key, {
        "bastion": {"port": bastion.port},
        "inner": {"port": target.port, "jump": "bastion"},
        "aliased": {"ssh_alias": "inner-alias"},
    })
    cfg = tmp / "ssh_config"
    cfg.write_text(f"Host inner-alias\n  HostName 127.0.0.1\n  Port {target.port}\n  User root\n"
                   f"  IdentityFile {key}\n  ProxyJump jumpbox\n"
                   f"Host jumpbox\n  HostName 127.0.0.1\n  Port {bastion.port}\n  User root\n  IdentityFile {key}\n")
    cl = checklist(tmp, "version: 1\nchecks:\n  - {id: os, probe: os, hosts: [inner, aliased], "
                        "expect: {family: linux}}\n")
    code, data, text = scan(str(cl), "-i", str(inv), "--known-hosts", str(tmp / "kh"), "--accept-new-hostkeys",
                            "--ssh-config", str(cfg), tmp_path=tmp)
    assert code == 0, text
    assert {r["host"] for r in data["results"]} == {"inner", "aliased"}
    # both reached the target through the bastion: the bastion forwarded, the target saw logins from it
    assert bastion.count("direct-tcpip") >= 2 or bastion.count("server_request_direct_tcpip") >= 2
    assert target.logins == 2


def test_conditions_derived_expectations_loops_and_consistency_over_ssh(lab):
    """Facts referred to by when:/derived expectations ride in the host's single batch; two hosts compared."""
    start, key, tmp = lab
    a, b = start("a"), start("b")
    inv = inventory(tmp, key, {"a": {"port": a.port, "vars": {"role": "app"}},
                               "b": {"port": b.port, "vars": {"role": "db"}}})
    cl = checklist(tmp, """\
version: 1
checks:
  - {id: linux-only, probe: command, hosts: [all], with: {run: "echo {{ role }}"}, when: "os.family == linux",
     consistent: [stdout]}
  - {id: windows-only, probe: command, hosts: [all], with: {run: "true"}, when: "os.family == windows"}
  - {id: mem, probe: memory, hosts: [all], expect: {available_gb: "<= {{ memory.total_gb }}"},
     consistent: [{total_gb: "<= 0.01"}]}
  - {id: loop, probe: command, hosts: [all], with: {run: "echo {{ item }}"}, expect: {stdout: "{{ item }}"},
     loop: [one, two, three]}
  - {id: clock, probe: time, hosts: [all], consistent: [timezone, {offset_ms: "<= 500 ms"}]}
""")
    before = (a.exec_requests, b.exec_requests)
    code, data, text = scan(str(cl), "-i", str(inv), "--known-hosts", str(tmp / "kh"), "--accept-new-hostkeys",
                            tmp_path=tmp)
    r = {(x["check"], x["host"]): x for x in data["results"]}
    assert r[("windows-only", "a")]["status"] == "skip" and "(os.family is linux)" in r[("windows-only", "a")][
        "message"]["en"]
    assert r[("mem", "b")]["status"] == "pass" and r[("mem", "b")]["expected"]["available_gb"].startswith("<= ")
    assert r[("mem", "*")]["status"] == "pass"  # the same machine behind both servers
    assert r[("linux-only", "*")]["status"] == "fail"
    assert "1 of 2" not in r[("linux-only", "*")]["message"]["en"]  # no majority: both values listed
    assert "a: app" in r[("linux-only", "*")]["message"]["en"] and "b: db" in r[("linux-only", "*")]["message"]["en"]
    assert all(r[(f"loop-{n}", h)]["status"] == "pass" for n in ("one", "two", "three") for h in "ab")
    clock = r[("clock", "*")]
    assert clock["status"] == "pass", clock["message"]  # the same clock behind both servers: skew of a few ms
    assert set(clock["observed"]["offset_ms"]) == {"a", "b"}
    assert all(abs(v) < 100 for v in clock["observed"]["offset_ms"].values())
    assert code == 1, text
    # everything in one batch, plus the time probe's own clock read (kept out of the batch on purpose)
    assert (a.exec_requests - before[0], b.exec_requests - before[1]) == (2, 2)


def test_os_family_seam_from_the_ssh_banner(lab):
    from envprobe.transport.ssh import SshTransport, os_family_from_banner

    assert os_family_from_banner("SSH-2.0-OpenSSH_for_Windows_8.1") == "windows"
    assert os_family_from_banner("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3") == "posix"
    assert os_family_from_banner("SSH-2.0-7.99 FlowSsh: Bitvise SSH Server (WinSSHD) 9.31") == "windows"
    start, key, tmp = lab
    srv = start("h1")
    tr = SshTransport("h1", "127.0.0.1", port=srv.port, user="root", key_file=str(key),
                      known_hosts=str(tmp / "kh"), accept_new_hostkeys=True)
    try:
        assert tr.server_banner().startswith("SSH-2.0-OpenSSH")
        assert tr.os_family == "posix"
        assert srv.exec_requests == 0  # asked without running anything
    finally:
        tr.close()


def test_clock_skew_across_hosts_names_the_host_that_is_off(lab):
    """Host b's `date` runs 5 s ahead (a wrapper bound over `date` in its sshd's own mount namespace, calling the
    real binary bound beside it): offsets are measured for real over SSH, and the fleet result names b."""
    start, key, tmp = lab
    real = os.path.realpath(shutil.which("date") or "/usr/bin/date")
    keep = tmp / "date.real"
    keep.touch()  # a mount point for the real binary, inside b's namespace only
    fake = tmp / "date"
    fake.write_text(f"#!/bin/sh\nnow=$({keep} +%s.%N)\n"
                    "awk -v t=\"$now\" 'BEGIN { printf \"%.9f\\n\", t + 5 }'\n")
    fake.chmod(0o755)
    a = start("a")
    b = start("b", extra_binds={real: str(keep), str(fake): real})
    inv = inventory(tmp, key, {"a": {"port": a.port}, "b": {"port": b.port}})
    cl = checklist(tmp, "version: 1\nchecks:\n"
                        "  - {id: clock, probe: time, hosts: [all], consistent: [{offset_ms: '<= 500 ms'}]}\n")
    code, data, text = scan(str(cl), "-i", str(inv), "--known-hosts", str(tmp / "kh"), "--accept-new-hostkeys",
                            tmp_path=tmp)
    r = {(x["check"], x["host"]): x for x in data["results"]}
    assert 4900 < r[("clock", "b")]["observed"]["offset_ms"] < 5100, r[("clock", "b")]
    assert abs(r[("clock", "a")]["observed"]["offset_ms"]) < 100
    fleet = r[("clock", "*")]
    assert fleet["status"] == "fail" and code == 1, fleet
    assert "highest b" in fleet["message"]["en"] and "lowest a" in fleet["message"]["en"]
