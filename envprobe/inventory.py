"""Inventories: which hosts a scan reaches and how. envprobe's own YAML format, and Ansible's INI and YAML.

envprobe format::

    hosts:
      app01: {address: 10.0.0.10, user: deploy, key: ~/.ssh/id_ed25519}
      db01:  {address: 10.0.0.5, user: deploy, port: 2222, sudo: true, vars: {data_dir: /data}}
      web01: {ssh_alias: client-web}        # resolved through ~/.ssh/config (ProxyJump honoured)
    groups:
      app: [app01, web01]
    vars: {}

Ansible: ``ansible_host``, ``ansible_user``, ``ansible_port``, ``ansible_ssh_private_key_file``,
``ansible_password``, ``ansible_become``, group ``vars`` / ``[group:vars]`` and ``children``.

Every problem names file, line and field, like checklist errors.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any

from envprobe.errors import ConfigError, Problem, read_utf8
from envprobe.record import field, record
from envprobe.registry import did_you_mean
from envprobe.schema import Field, Model, ValidationError, field_validator

LOCAL = "local"
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


class HostSpec(Model):
    address: str | None = Field(default=None, description="IP address or DNS name to connect to")
    port: int | None = Field(default=None, ge=1, le=65535, description="SSH port (default 22 or ssh_config)")
    user: str | None = Field(default=None, description="login user (default: ssh_config, else the local user)")
    key: str | None = Field(default=None, description="private key file")
    password: str | None = Field(default=None, description="login password, as ${env:NAME}")
    passphrase: str | None = Field(default=None, description="private key passphrase, as ${env:NAME}")
    ssh_alias: str | None = Field(default=None, description="a Host entry of ~/.ssh/config to take settings from")
    jump: str | None = Field(default=None, description="inventory host or user@host:port to jump through")
    sudo: bool = Field(default=False, description="run probes that need root through sudo")
    sudo_password: str | None = Field(default=None, description="sudo password, as ${env:NAME}")
    connect_timeout: float = Field(default=10.0, gt=0, le=600, description="seconds to connect and log in")
    vars: dict[str, Any] = Field(default_factory=dict, description="variables for this host's checks")

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, v: Any) -> Any:
        return None if v in ("", None) else v


@record
class Host:
    name: str
    spec: HostSpec
    groups: list[str] = field(default_factory=list)
    line: int | None = None

    @property
    def address(self) -> str:
        return self.spec.address or self.spec.ssh_alias or self.name


@record
class Inventory:
    path: str
    hosts: dict[str, Host]
    groups: dict[str, list[str]]
    vars: dict[str, Any] = field(default_factory=dict)

    def names(self) -> list[str]:
        return list(self.hosts)

    def resolve(self, pattern: str) -> list[str]:
        """Host names matching one pattern: a host, a group, ``all``, ``local``, or a glob (``app*``)."""
        if pattern in (LOCAL, "localhost"):
            return [LOCAL]
        if pattern == "all":
            return list(self.hosts)
        if pattern in self.groups:
            return list(self.groups[pattern])
        if pattern in self.hosts:
            return [pattern]
        if any(ch in pattern for ch in "*?["):
            hits = [h for h in self.hosts if fnmatch.fnmatchcase(h, pattern)]
            for g, members in self.groups.items():
                if fnmatch.fnmatchcase(g, pattern):
                    hits.extend(members)
            return list(dict.fromkeys(hits))
        return []

    def known(self, pattern: str) -> bool:
        return bool(self.resolve(pattern)) or pattern in self.groups

    def suggest(self, pattern: str) -> str:
        return did_you_mean(pattern, [*self.hosts, *self.groups, "all", LOCAL])

    def limit(self, names: list[str], limit: str | None) -> list[str]:
        """Apply ``--limit``: comma- or colon-separated patterns; ``!pattern`` excludes; ``&pattern`` intersects."""
        if not limit:
            return names
        keep: list[str] = []
        positive = False
        drop: set[str] = set()
        must: list[set[str]] = []
        for part in re.split(r"[,:]", limit):
            part = part.strip()
            if not part:
                continue
            if part.startswith("!"):
                drop.update(self.resolve(part[1:]))
            elif part.startswith("&"):
                must.append(set(self.resolve(part[1:])))
            else:
                positive = True
                keep.extend(self.resolve(part))
        chosen = set(keep) if positive else set(names)
        for m in must:
            chosen &= m
        return [n for n in names if n in chosen and n not in drop]


def empty() -> Inventory:
    return Inventory(path="", hosts={}, groups={})


def load(path: str | Path, environ: dict[str, str] | None = None) -> Inventory:
    """Load an inventory file (envprobe YAML, Ansible YAML or Ansible INI), secrets resolved and masked later."""
    text = read_utf8(path, "inventory file")
    if _looks_ini(text):
        return _load_ini(text, str(path))
    return _load_yaml(text, str(path))


def _looks_ini(text: str) -> bool:
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith(("#", ";")):
            continue
        return s.startswith("[") or ("=" in s and ":" not in s.split("=", 1)[0])
    return False


# -- envprobe / Ansible YAML ---------------------------------------------------------------------------------
_ANSIBLE_KEYS = {
    "ansible_host": "address", "ansible_ssh_host": "address", "ansible_port": "port", "ansible_ssh_port": "port",
    "ansible_user": "user", "ansible_ssh_user": "user", "ansible_ssh_private_key_file": "key",
    "ansible_password": "password", "ansible_ssh_pass": "password", "ansible_become": "sudo",
    "ansible_become_password": "sudo_password", "ansible_become_pass": "sudo_password",
}


def _load_yaml(text: str, filename: str) -> Inventory:
    from envprobe.loader import YamlDoc

    doc = YamlDoc(text, filename)
    data = doc.data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([doc.problem((), "an inventory is a mapping with 'hosts' (and optionally 'groups', "
                                            "'vars'), or an Ansible YAML inventory starting with 'all:'")])
    if "all" in data and "hosts" not in data:
        return _from_ansible_yaml(doc, data)
    problems: list[Problem] = []
    allowed = ["hosts", "groups", "vars"]
    for key in data:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            problems.append(doc.problem((key,), f"unknown key {key!r}" + (f"; did you mean {hint}?" if hint else "")
                                        + " (allowed: hosts, groups, vars)", key=True))
    hosts_raw = data.get("hosts") or {}
    groups_raw = data.get("groups") or {}
    if not isinstance(hosts_raw, dict):
        problems.append(doc.problem(("hosts",), "must be a mapping of host name → settings"))
        hosts_raw = {}
    if not isinstance(groups_raw, dict):
        problems.append(doc.problem(("groups",), "must be a mapping of group name → list of hosts"))
        groups_raw = {}
    hosts: dict[str, Host] = {}
    for name, spec in hosts_raw.items():
        path = ("hosts", name)
        host = _host(doc, str(name), spec or {}, path, problems)
        if host is not None:
            hosts[str(name)] = host
    groups: dict[str, list[str]] = {}
    for gname, members in groups_raw.items():
        gpath = ("groups", gname)
        if isinstance(members, str):
            members = [members]
        if not isinstance(members, list):
            problems.append(doc.problem(gpath, "a group is a list of host names"))
            continue
        if gname in hosts_raw:
            problems.append(doc.problem(gpath, f"{gname!r} is both a host and a group", key=True))
        out: list[str] = []
        for j, m in enumerate(members):
            m = str(m)
            if m in hosts:
                out.append(m)
            elif m in groups_raw and m != gname:
                sub = groups_raw[m]
                out.extend(str(x) for x in (sub if isinstance(sub, list) else [sub]))
            else:
                hint = did_you_mean(m, [*hosts_raw, *groups_raw])
                problems.append(doc.problem((*gpath, j), f"unknown host {m!r}" + (f"; did you mean {hint}?" if hint
                                                                                   else "")))
        groups[str(gname)] = list(dict.fromkeys(out))
    gvars = data.get("vars") or {}
    if not isinstance(gvars, dict):
        problems.append(doc.problem(("vars",), "must be a mapping"))
        gvars = {}
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))
    for gname, members in groups.items():
        for m in members:
            hosts[m].groups.append(gname)
    return Inventory(path=filename, hosts=hosts, groups=groups, vars=gvars)


def _host(doc: Any, name: str, spec: Any, path: tuple[Any, ...], problems: list[Problem]) -> Host | None:
    if not _NAME.match(name):
        problems.append(doc.problem(path, "host names are letters, digits, '.', '_' and '-'", key=True))
        return None
    if name in (LOCAL, "localhost", "all"):
        problems.append(doc.problem(path, f"{name!r} is reserved (it means this machine / every host)", key=True))
        return None
    if not isinstance(spec, dict):
        problems.append(doc.problem(path, "host settings are a mapping, e.g. {address: 10.0.0.5, user: deploy}"))
        return None
    try:
        hs = HostSpec.model_validate(spec)
    except ValidationError as exc:
        fields = [f.key for f in HostSpec.model_fields.values()]
        for err in exc.errors():
            loc = (*path, *err["loc"])
            if err["type"] == "extra_forbidden":
                key = str(err["loc"][-1])
                hint = did_you_mean(key, fields)
                problems.append(doc.problem(loc, f"unknown host setting {key!r}" + (f"; did you mean {hint}?" if hint
                                                                                      else "")
                                            + f" (allowed: {', '.join(fields)})", key=True))
            else:
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(doc.problem(loc, msg))
        return None
    return Host(name=name, spec=hs, line=doc.where(path)[0])


def _from_ansible_yaml(doc: Any, data: dict[str, Any]) -> Inventory:
    problems: list[Problem] = []
    hosts: dict[str, dict[str, Any]] = {}
    host_groups: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    host_lines: dict[str, tuple[Any, ...]] = {}

    def walk(gname: str, node: Any, path: tuple[Any, ...], inherited: dict[str, Any]) -> list[str]:
        if node is None:
            node = {}
        if not isinstance(node, dict):
            problems.append(doc.problem(path, "an Ansible group is a mapping with hosts, vars and children"))
            return []
        for key in node:
            if key not in ("hosts", "vars", "children"):
                problems.append(doc.problem((*path, key), f"unknown key {key!r} in an Ansible group "
                                                          "(allowed: hosts, vars, children)", key=True))
        gvars = {**inherited, **(node.get("vars") or {})}
        members: list[str] = []
        for hname, hvars in (node.get("hosts") or {}).items():
            hname = str(hname)
            merged = {**gvars, **hosts.get(hname, {}), **(hvars or {})}
            hosts[hname] = merged
            host_lines.setdefault(hname, (*path, "hosts", hname))
            host_groups.setdefault(hname, [])
            if gname != "all":
                host_groups[hname].append(gname)
            members.append(hname)
        for cname, child in (node.get("children") or {}).items():
            members.extend(walk(str(cname), child, (*path, "children", cname), gvars))
        if gname != "all":
            groups[gname] = list(dict.fromkeys([*groups.get(gname, []), *members]))
        return members

    walk("all", data.get("all"), ("all",), {})
    out: dict[str, Host] = {}
    for name, hvars in hosts.items():
        spec, extra = _ansible_spec(hvars)
        spec["vars"] = extra
        host = _host(doc, name, spec, host_lines[name], problems)
        if host is not None:
            host.groups = host_groups.get(name, [])
            out[name] = host
    if problems:
        raise ConfigError(problems)
    return Inventory(path=doc.filename, hosts=out, groups=groups, vars={})


def _ansible_spec(hvars: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    spec: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for k, v in hvars.items():
        if k in _ANSIBLE_KEYS:
            spec[_ANSIBLE_KEYS[k]] = v
        elif k in ("ansible_connection", "ansible_python_interpreter", "ansible_become_method",
                   "ansible_become_user", "ansible_ssh_common_args"):
            continue  # meaningful to Ansible only
        else:
            extra[k] = v
    return spec, extra


# -- Ansible INI -----------------------------------------------------------------------------------------------
class _IniDoc:
    """Positions for INI problems, with the same interface the YAML loader's problems use."""

    def __init__(self, filename: str):
        self.filename = filename
        self.lines: dict[tuple[Any, ...], int] = {}

    def problem(self, path: tuple[Any, ...], message: str, key: bool = False) -> Problem:
        return Problem(self.filename, self.lines.get(path), None, ".".join(str(p) for p in path), message)

    def where(self, path: tuple[Any, ...]) -> tuple[int | None, int | None]:
        return self.lines.get(path), None


def _ini_value(v: str) -> Any:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    low = v.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    return v


def _load_ini(text: str, filename: str) -> Inventory:
    import shlex

    doc = _IniDoc(filename)
    problems: list[Problem] = []
    section = "ungrouped"
    kind = "hosts"
    hostvars: dict[str, dict[str, Any]] = {}
    group_hosts: dict[str, list[str]] = {}
    group_vars: dict[str, dict[str, Any]] = {}
    children: dict[str, list[str]] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.fullmatch(r"\[([^\]:]+)(?::(vars|children))?\]", line)
        if m:
            section, kind = m.group(1).strip(), m.group(2) or "hosts"
            continue
        if line.startswith("["):
            problems.append(Problem(filename, lineno, 1, "", f"bad section header {line!r}; expected [group], "
                                                             "[group:vars] or [group:children]"))
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            problems.append(Problem(filename, lineno, 1, "", f"cannot parse the line: {exc}"))
            continue
        if not words:
            continue
        if kind == "vars":
            k, sep, v = line.partition("=")
            if not sep:
                problems.append(Problem(filename, lineno, 1, section, "expected NAME=VALUE in a :vars section"))
                continue
            group_vars.setdefault(section, {})[k.strip()] = _ini_value(v)
        elif kind == "children":
            children.setdefault(section, []).append(words[0])
        else:
            name = words[0]
            if re.search(r"\[\d+:\d+\]", name):
                problems.append(Problem(filename, lineno, 1, name, "host ranges like web[01:10] are not supported; "
                                                                   "list the hosts"))
                continue
            hv = hostvars.setdefault(name, {})
            for w in words[1:]:
                k, sep, v = w.partition("=")
                if not sep:
                    problems.append(Problem(filename, lineno, 1, name, f"expected key=value, found {w!r}"))
                    continue
                hv[k] = _ini_value(v)
            doc.lines.setdefault(("hosts", name), lineno)
            if section != "ungrouped":
                group_hosts.setdefault(section, []).append(name)
    if problems:
        raise ConfigError(problems)

    def members(g: str, seen: tuple[str, ...] = ()) -> list[str]:
        out = list(group_hosts.get(g, []))
        for c in children.get(g, []):
            if c not in seen:
                out.extend(members(c, (*seen, g)))
        return list(dict.fromkeys(out))

    all_groups = sorted(set(group_hosts) | set(children) | set(group_vars) - {"all"})
    groups = {g: members(g) for g in all_groups if g != "all"}
    hosts: dict[str, Host] = {}
    for name, hv in hostvars.items():
        merged: dict[str, Any] = dict(group_vars.get("all", {}))
        for g in all_groups:  # group vars, then the host's own
            if name in groups.get(g, []):
                merged.update(group_vars.get(g, {}))
        merged.update(hv)
        spec, extra = _ansible_spec(merged)
        spec["vars"] = extra
        host = _host(doc, name, spec, ("hosts", name), problems)
        if host is not None:
            host.groups = [g for g in all_groups if name in groups.get(g, [])]
            hosts[name] = host
    if problems:
        raise ConfigError(problems)
    return Inventory(path=filename, hosts=hosts, groups=groups, vars={})


def expand_secrets(inv: Inventory, environ: dict[str, str], masker: Any) -> list[Problem]:
    """Resolve ``${env:NAME}`` in passwords and passphrases, registering the values as secrets."""
    from envprobe.secrets import substitute_env

    problems: list[Problem] = []
    for host in inv.hosts.values():
        for attr in ("password", "passphrase", "sudo_password"):
            value = getattr(host.spec, attr)
            if not isinstance(value, str):
                continue
            new, missing = substitute_env(value, environ, masker)
            if "${env:" not in value:
                masker.add(value)  # a literal password in the inventory is still a secret
            for name in missing:
                problems.append(Problem(inv.path, host.line, None, f"hosts.{host.name}.{attr}",
                                        f"environment variable {name} is not set (needed by ${{env:{name}}})"))
            setattr(host.spec, attr, new)
        if host.spec.key:
            host.spec.key = os.path.expanduser(host.spec.key)
    return problems
