"""Password logins and sudo over SSH, against a real sshd and a real (throwaway) non-root account.

The account is created by the fixture (useradd, a random password set with chpasswd, a sudoers.d drop-in) and
removed afterwards; sshd checks the password against /etc/shadow (UsePAM no), sudo against the same account.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from envprobe.transport.base import PrivilegeError
from envprobe.transport.ssh import HostUnavailable, SshTransport
from tests.conftest import cli, need
from tests.sshfix import SshServer, keygen, need_sshd


class Account:
    def __init__(self, name: str, password: str):
        self.name = name
        self.password = password


@pytest.fixture
def account() -> Iterator[Account]:
    need_sshd()
    need(shutil.which("useradd") is not None and shutil.which("chpasswd") is not None, "needs useradd/chpasswd")
    need(shutil.which("sudo") is not None, "needs sudo (apt install sudo)")
    name = f"ept{os.getpid() % 100000}"
    password = "pw-" + secrets.token_hex(8)
    home = tempfile.mkdtemp(prefix="envprobe-home-")  # under /tmp, reachable by the account
    subprocess.run(["userdel", "-f", name], capture_output=True)  # left over by a killed run
    subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/bin/sh", name], check=True)
    os.chown(home, int(subprocess.run(["id", "-u", name], capture_output=True, text=True).stdout), -1)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    try:
        yield Account(name, password)
    finally:
        Path(f"/etc/sudoers.d/{name}").unlink(missing_ok=True)
        subprocess.run(["userdel", "-f", name], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def _sudoers(acct: Account, rule: str | None) -> None:
    path = Path(f"/etc/sudoers.d/{acct.name}")
    if rule is None:
        path.unlink(missing_ok=True)
        return
    path.write_text(f"{acct.name} {rule}\n")
    path.chmod(0o440)
    check = subprocess.run(["visudo", "-cf", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.fixture
def pw_server(tmp_path: Path) -> Iterator[SshServer]:
    need_sshd()
    srv = SshServer(tmp_path / "pw", keygen(tmp_path / "unused_key"), password_only=True).start()
    try:
        yield srv
    finally:
        srv.stop()


def _transport(srv: SshServer, acct: Account, tmp: Path, password: str | None = None) -> SshTransport:
    return SshTransport("pw", "127.0.0.1", port=srv.port, user=acct.name,
                        password=acct.password if password is None else password,
                        known_hosts=str(tmp / "kh"), accept_new_hostkeys=True, connect_timeout=5)


def test_password_login_runs_commands_as_that_user(pw_server, account, tmp_path):
    tr = _transport(pw_server, account, tmp_path)
    try:
        res = tr.run("id -un")
        assert res.ok and res.stdout.strip() == account.name
    finally:
        tr.close()
    assert pw_server.count("Accepted password") == 1
    bad = _transport(pw_server, account, tmp_path, password="not-" + account.password)
    with pytest.raises(HostUnavailable) as info:
        bad.run("true")
    assert info.value.reason == "auth-failed"
    assert account.password not in str(info.value.message)


def test_sudo_with_a_password_without_one_and_refused(pw_server, account, tmp_path):
    tr = _transport(pw_server, account, tmp_path)
    try:
        # not root and no sudo configured: a clear refusal, nothing run
        with pytest.raises(PrivilegeError) as info:
            tr.run_privileged("id -u")
        assert info.value.reason == "not-root"
        # sudo with the account's password (sudo asks for it)
        _sudoers(account, "ALL=(ALL) ALL")
        tr.sudo, tr.sudo_password = True, account.password
        res = tr.run_privileged("id -u; cat")  # `cat` proves the command cannot read the password from stdin
        assert res.ok and res.stdout == "0\n", res
        assert "ENVPROBE" not in res.stderr
        # a wrong sudo password, and none at all where one is needed
        tr.sudo_password = "wrong-" + account.password
        with pytest.raises(PrivilegeError) as info:
            tr.run_privileged("id -u")
        assert info.value.reason == "sudo-password"
        tr.sudo_password = None
        with pytest.raises(PrivilegeError) as info:
            tr.run_privileged("id -u")
        assert info.value.reason == "sudo-password"
        # passwordless sudo: -n works without a password
        _sudoers(account, "ALL=(ALL) NOPASSWD: ALL")
        assert tr.run_privileged("id -u").stdout == "0\n"
        # sudo rights only for another command: passwordless, sudo -n wants a password for anything else; with
        # the right password, the refusal itself
        _sudoers(account, "ALL=(ALL) NOPASSWD: /bin/false")
        with pytest.raises(PrivilegeError) as info:
            tr.run_privileged("id -u")
        assert info.value.reason == "sudo-password", info.value
        _sudoers(account, "ALL=(ALL) /bin/false")
        tr.sudo_password = account.password
        with pytest.raises(PrivilegeError) as info:
            tr.run_privileged("id -u")
        assert info.value.reason == "sudo-denied", info.value
        assert "not allowed" in info.value.detail and "ENVPROBE" not in info.value.detail
        tr.sudo_password = None
        # the command's own exit status and stderr come back as data
        _sudoers(account, "ALL=(ALL) NOPASSWD: ALL")
        res = tr.run_privileged("echo oops >&2; exit 3")
        assert res.rc == 3 and res.stderr == "oops\n"
    finally:
        tr.close()


def test_password_from_env_and_ask_pass_never_leak(pw_server, account, tmp_path):
    inv = {"hosts": {"pw": {"address": "127.0.0.1", "port": pw_server.port, "user": account.name,
                            "password": "${env:EP_TEST_PW}"}}}
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
    (tmp_path / "c.yaml").write_text(
        "version: 1\nchecks:\n"
        "  - {id: who, probe: command, hosts: [all], with: {run: 'id -un; echo $HOME'}, "
        f"expect: {{stdout: '~ ^{account.name}'}}}}\n"
        "  - {id: os, probe: os, hosts: [all], expect: {family: linux}}\n")
    out = tmp_path / "r.json"
    html = tmp_path / "r.html"
    res = cli("scan", str(tmp_path / "c.yaml"), "-i", str(tmp_path / "inv.yaml"), "--known-hosts",
              str(tmp_path / "kh"), "--accept-new-hostkeys", "--json", str(out), "--html", str(html),
              "--lang", "en", environ={"EP_TEST_PW": account.password})
    data = json.loads(out.read_text())
    assert res.code == 0, res.out + res.err
    assert {r["status"] for r in data["results"]} == {"pass"}
    for text in (res.out, res.err, out.read_text(), html.read_text()):
        assert account.password not in text
    # --ask-pass: the password typed at the prompt (stdin here: no terminal in a new session)
    inv["hosts"]["pw"].pop("password")
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "envprobe", "scan", str(tmp_path / "c.yaml"), "-i", str(tmp_path / "inv.yaml"),
         "--known-hosts", str(tmp_path / "kh"), "--ask-pass", "--json", str(out), "--lang", "en"],
        input=account.password + "\n", capture_output=True, text=True, start_new_session=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert time.perf_counter() - t0 < 30
    assert account.password not in proc.stdout + proc.stderr + out.read_text()
    assert {r["status"] for r in json.loads(out.read_text())["results"]} == {"pass"}


# -- key passphrases and the agent ---------------------------------------------------------------------------
@pytest.fixture
def enc_server(tmp_path: Path) -> Iterator[tuple[SshServer, Path, str]]:
    need_sshd()
    passphrase = "kp-" + secrets.token_hex(6)
    key = tmp_path / "enc_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "envprobe-test", "-f", str(key)],
                   check=True)
    srv = SshServer(tmp_path / "enc", key).start()
    try:
        yield srv, key, passphrase
    finally:
        srv.stop()


def _key_scan(tmp_path: Path, srv: SshServer, host: dict, *extra: str, environ: dict | None = None,
              stdin: str | None = None) -> tuple[int, dict, str]:
    inv = {"hosts": {"h": {"address": "127.0.0.1", "port": srv.port, "user": "root", **host}}}
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
    (tmp_path / "c.yaml").write_text("version: 1\nchecks:\n  - {id: os, probe: os, hosts: [all], "
                                     "expect: {family: linux}}\n")
    out = tmp_path / f"r{time.monotonic_ns()}.json"
    env = dict(os.environ)
    env.update(environ or {})
    proc = subprocess.run(
        [sys.executable, "-m", "envprobe", "scan", str(tmp_path / "c.yaml"), "-i", str(tmp_path / "inv.yaml"),
         "--known-hosts", str(tmp_path / "kh"), "--accept-new-hostkeys", "--json", str(out), "--lang", "en", *extra],
        input=stdin, capture_output=True, text=True, env=env, start_new_session=True, timeout=60)
    data = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, data, proc.stdout + proc.stderr


def test_key_passphrase_from_env_prompt_missing_and_wrong(enc_server, tmp_path):
    srv, key, passphrase = enc_server
    # from the environment
    code, data, text = _key_scan(tmp_path, srv, {"key": str(key), "passphrase": "${env:KEY_PASS}"},
                                 environ={"KEY_PASS": passphrase})
    assert code == 0 and data["results"][0]["status"] == "pass", text
    # asked at a prompt (stdin here: no terminal in a new session)
    code, data, text = _key_scan(tmp_path, srv, {"key": str(key)}, "--ask-passphrase", stdin=passphrase + "\n")
    assert code == 0 and data["results"][0]["status"] == "pass", text
    assert passphrase not in text + json.dumps(data)
    logins = srv.logins
    # none given: named as the key's problem, before anything is sent
    code, data, text = _key_scan(tmp_path, srv, {"key": str(key)})
    r = data["results"][0]
    assert code == 3 and r["reason"] == "auth-failed"
    assert "protected by a passphrase and none was given" in r["message"]["en"] and "口令" in r["message"]["zh-CN"]
    assert "--ask-passphrase" in r["hint"]["en"]
    # a wrong one
    code, data, text = _key_scan(tmp_path, srv, {"key": str(key), "passphrase": "${env:KEY_PASS}"},
                                 environ={"KEY_PASS": "not-" + passphrase})
    r = data["results"][0]
    assert r["reason"] == "auth-failed" and "passphrase for the key" in r["message"]["en"] and "wrong" in r[
        "message"]["en"]
    assert "not-" + passphrase not in text + json.dumps(data)
    # a missing key file
    code, data, text = _key_scan(tmp_path, srv, {"key": str(tmp_path / "nope")})
    assert "does not exist" in data["results"][0]["message"]["en"]
    assert srv.logins == logins  # none of the three reached the server
    assert "Traceback" not in text


def test_login_through_an_ssh_agent(enc_server, tmp_path):
    need(shutil.which("ssh-agent") is not None and shutil.which("ssh-add") is not None, "needs ssh-agent/ssh-add")
    srv, key, passphrase = enc_server
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        env = {"SSH_AUTH_SOCK": str(sock), "SSH_ASKPASS_REQUIRE": "never", "DISPLAY": ""}
        add = subprocess.run(["ssh-add", str(key)], input=passphrase + "\n", capture_output=True, text=True,
                             env={**os.environ, **env}, start_new_session=True, timeout=20)
        if add.returncode != 0:  # ssh-add reads the passphrase from a terminal only: hand it a decrypted copy
            plain = tmp_path / "plain_key"
            shutil.copy(key, plain)
            subprocess.run(["ssh-keygen", "-q", "-p", "-P", passphrase, "-N", "", "-f", str(plain)], check=True)
            add = subprocess.run(["ssh-add", str(plain)], capture_output=True, text=True,
                                 env={**os.environ, **env}, timeout=20)
        assert add.returncode == 0, add.stderr
        # no key, no password in the inventory: the agent's key logs in
        code, data, text = _key_scan(tmp_path, srv, {}, environ=env)
        assert code == 0 and data["results"][0]["status"] == "pass", text
        assert srv.count("Accepted publickey") >= 1
    finally:
        agent.terminate()
        agent.wait(5)
