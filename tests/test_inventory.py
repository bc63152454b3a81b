"""Inventories: envprobe YAML, Ansible YAML and INI; patterns, --limit, per-host vars, file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from envprobe import inventory as inv
from envprobe.errors import ConfigError
from envprobe.loader import load_file
from envprobe.registry import Registry
from envprobe.secrets import Masker

NATIVE = """\
hosts:
  app01: {address: 10.0.0.10, user: deploy, key: ~/.ssh/id_ed25519, vars: {data_dir: /data1}}
  app02: {address: 10.0.0.11, user: deploy}
  db01:  {address: 10.0.0.5, user: deploy, port: 2222, sudo: true, password: "${env:DB_SSH_PW}"}
  web01: {ssh_alias: client-web}
groups:
  app: [app01, app02, web01]
  db: [db01]
  backend: [app, db]
vars: {data_dir: /data}
"""

ANSIBLE_YAML = """\
all:
  vars: {ntp: 10.0.0.1}
  hosts:
    bastion: {ansible_host: 10.0.0.2}
  children:
    app:
      vars: {ansible_user: deploy, role: app}
      hosts:
        app01: {ansible_host: 10.0.0.10, ansible_ssh_private_key_file: /k/id}
        app02: {ansible_host: 10.0.0.11, ansible_port: 2200}
    db:
      hosts:
        db01: {ansible_host: 10.0.0.5, ansible_become: true}
"""

ANSIBLE_INI = """\
# client inventory
bastion ansible_host=10.0.0.2

[app]
app01 ansible_host=10.0.0.10 ansible_user=deploy
app02 ansible_host=10.0.0.11 ansible_port=2200 role=worker

[db]
db01 ansible_host=10.0.0.5 ansible_become=yes

[app:vars]
role=app
ansible_user=ops

[backend:children]
app
db

[all:vars]
ntp=10.0.0.1
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_native_format(tmp_path):
    i = inv.load(write(tmp_path, "inv.yaml", NATIVE))
    assert i.names() == ["app01", "app02", "db01", "web01"]
    assert i.hosts["db01"].spec.port == 2222 and i.hosts["db01"].spec.sudo is True
    assert i.hosts["web01"].address == "client-web"
    assert i.resolve("app") == ["app01", "app02", "web01"]
    assert i.resolve("backend") == ["app01", "app02", "web01", "db01"]
    assert i.resolve("app0*") == ["app01", "app02"]
    assert i.resolve("all") == i.names() and i.resolve("local") == ["local"]
    assert i.hosts["app01"].groups == ["app", "backend"]


def test_limit_patterns(tmp_path):
    i = inv.load(write(tmp_path, "inv.yaml", NATIVE))
    names = i.names()
    assert i.limit(names, "app") == ["app01", "app02", "web01"]
    assert i.limit(names, "app,!web01") == ["app01", "app02"]
    assert i.limit(names, "backend,&db") == ["db01"]
    assert i.limit(names, "db01:app01") == ["app01", "db01"]
    assert i.limit(names, None) == names
    assert i.limit(names, "nope*") == [] and i.limit(names, "!db01") == ["app01", "app02", "web01"]


def test_secrets_from_the_environment(tmp_path):
    i = inv.load(write(tmp_path, "inv.yaml", NATIVE))
    m = Masker()
    assert inv.expand_secrets(i, {"DB_SSH_PW": "Pw-123456"}, m) == []
    assert i.hosts["db01"].spec.password == "Pw-123456" and m.text("x Pw-123456") == "x ******"
    i2 = inv.load(write(tmp_path, "inv2.yaml", NATIVE))
    problems = inv.expand_secrets(i2, {}, Masker())
    assert len(problems) == 1 and "DB_SSH_PW is not set" in str(problems[0]) and ":4:" in str(problems[0])


@pytest.mark.parametrize(("name", "text"), [("a.yaml", ANSIBLE_YAML), ("hosts.ini", ANSIBLE_INI)])
def test_ansible_formats(tmp_path, name, text):
    i = inv.load(write(tmp_path, name, text))
    assert set(i.names()) == {"bastion", "app01", "app02", "db01"}
    a1, a2, db = i.hosts["app01"], i.hosts["app02"], i.hosts["db01"]
    assert a1.spec.address == "10.0.0.10" and a2.spec.port == 2200 and db.spec.sudo is True
    assert a2.spec.vars["role"] in ("app", "worker") and a1.spec.vars["ntp"] == "10.0.0.1"
    assert set(i.resolve("app")) == {"app01", "app02"}
    if name.endswith(".ini"):
        assert a1.spec.user == "deploy"  # the host's own setting beats its group's
        assert a2.spec.user == "ops" and a2.spec.vars["role"] == "worker"
        assert set(i.resolve("backend")) == {"app01", "app02", "db01"}
    else:
        assert a1.spec.key == "/k/id" and a1.spec.user == "deploy"


@pytest.mark.parametrize(("text", "fragment"), [
    ("hosts:\n  app01: {adress: 10.0.0.1}\n", "2:11: hosts.app01.adress: unknown host setting 'adress'; did you mean address?"),
    ("hosts:\n  app01: {address: 10.0.0.1, port: 70000}\n", "2:36: hosts.app01.port: Input should be less than or equal to 65535"),
    ("hosts:\n  app01: {address: 10.0.0.1}\ngroups:\n  app: [app1]\n", "4:9: groups.app[0]: unknown host 'app1'; did you mean app01?"),
    ("hots:\n  a: {}\n", "1:1: hots: unknown key 'hots'; did you mean hosts?"),
    ("hosts:\n  local: {address: 1.2.3.4}\n", "2:3: hosts.local: 'local' is reserved"),
    ("[app\nx\n", "hosts.ini:1:1: bad section header"),
    ("[app]\nweb[01:10] ansible_host=1.2.3.4\n", "hosts.ini:2:1: web[01:10]: host ranges"),
])
def test_bad_inventories_name_line_and_field(tmp_path, text, fragment):
    name = "hosts.ini" if text.startswith("[") else "inv.yaml"
    with pytest.raises(ConfigError) as info:
        inv.load(write(tmp_path, name, text))
    assert fragment in str(info.value)


def test_checklist_hosts_groups_and_per_host_vars(tmp_path):
    i = inv.load(write(tmp_path, "inv.yaml", NATIVE))
    cl = write(tmp_path, "c.yaml", """\
version: 1
checks:
  - id: data-disk
    probe: disk
    hosts: [app]
    with: {path: "{{ data_dir }}"}
  - id: here
    probe: memory
  - id: echo-name
    probe: command
    hosts: [db01, local]
    with: {run: "echo {{ inventory_hostname | default('local') }}"}
""")
    plan = load_file(cl, Registry(), inventory=i, environ={})
    got = {(c.id, c.hosts[0]): c for c in plan.checks}
    assert got[("data-disk", "app01")].params.path == "/data1"  # the host's own vars win
    assert got[("data-disk", "app02")].params.path == "/data"  # else the inventory's
    assert ("here", "local") in got
    assert got[("echo-name", "db01")].params.run == "echo db01"
    assert got[("echo-name", "local")].params.run == "echo local"


def test_checklist_unknown_hosts_and_needs_across_hosts(tmp_path):
    i = inv.load(write(tmp_path, "inv.yaml", NATIVE))
    cl = write(tmp_path, "c.yaml", """\
version: 1
checks:
  - {id: a, probe: memory, hosts: [ap]}
  - {id: b, probe: memory, hosts: [db]}
  - {id: c, probe: memory, hosts: [app], needs: [b]}
  - {id: d, probe: tcp, hosts: [app01], from: dbo1, with: {host: 10.0.0.5, port: 1433}}
""")
    with pytest.raises(ConfigError) as info:
        load_file(cl, Registry(), inventory=i, environ={})
    text = str(info.value)
    assert "3:36: checks[0].hosts[0]: unknown host or group 'ap'" in text and "did you mean app?" in text
    assert "checks[2].needs[0]: 'c' runs on 'app01' but 'b' does not" in text
    assert "checks[3].from: unknown host 'dbo1'" in text and "did you mean db01?" in text
