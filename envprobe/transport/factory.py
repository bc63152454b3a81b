"""Build a transport for every host a plan uses: local, or SSH with ~/.ssh/config and jump hosts honoured."""

from __future__ import annotations

import os
from typing import Any

from envprobe.transport.base import Transport
from envprobe.transport.local import LocalTransport


class SshOptions:
    def __init__(self, known_hosts: str | None = None, accept_new_hostkeys: bool = False,
                 ssh_config: str | None = None, password: str | None = None, passphrase: str | None = None):
        self.known_hosts = known_hosts
        self.accept_new_hostkeys = accept_new_hostkeys
        self.ssh_config = ssh_config or os.path.expanduser("~/.ssh/config")
        #: asked once with --ask-pass, used for hosts that have no password of their own (never stored)
        self.password = password
        #: asked once with --ask-passphrase, for key files that have no passphrase of their own (never stored)
        self.passphrase = passphrase


def _ssh_config(path: str) -> Any:
    import paramiko

    if not os.path.exists(path):
        return paramiko.SSHConfig()
    return paramiko.SSHConfig.from_path(path)


def _parse_jump(spec: str) -> tuple[str | None, str, int | None]:
    """``user@host:port`` → (user, host, port)."""
    user = None
    if "@" in spec:
        user, spec = spec.split("@", 1)
    port = None
    if spec.startswith("["):  # [v6]:port
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
        return user, host, port
    if spec.count(":") == 1:
        host, p = spec.split(":")
        return user, host, int(p)
    return user, spec, None


def build_transports(hosts: list[str], inventory: Any, opts: SshOptions) -> dict[str, Transport]:
    from envprobe.transport.ssh import SshTransport

    cfg = _ssh_config(opts.ssh_config)
    out: dict[str, Transport] = {}
    jumps: dict[tuple[str | None, str, int | None], SshTransport] = {}

    def settings(alias: str) -> dict[str, Any]:
        return dict(cfg.lookup(alias)) if cfg is not None else {}

    def jump_chain(spec: str, default_timeout: float) -> SshTransport | None:
        """``ProxyJump a,b,c``: connect to a, through it to b, through b to c. Returns the last hop."""
        prev: SshTransport | None = None
        for hop in [h.strip() for h in spec.split(",") if h.strip()]:
            if hop.lower() == "none":
                return None
            user, host, port = _parse_jump(hop)
            if inventory is not None and host in inventory.hosts:
                prev = make(host, via=prev)
                continue
            key = (user, host, port)
            if key not in jumps:
                s = settings(host)
                jumps[key] = SshTransport(
                    name=f"jump:{host}", address=s.get("hostname", host), port=int(port or s.get("port", 22)),
                    user=user or s.get("user"), key_file=(s.get("identityfile") or [None])[0],
                    known_hosts=opts.known_hosts, accept_new_hostkeys=opts.accept_new_hostkeys,
                    connect_timeout=default_timeout, jump=prev,
                )
            prev = jumps[key]
        return prev

    made: dict[str, SshTransport] = {}

    def make(name: str, via: SshTransport | None = None) -> SshTransport:
        if name in made:
            return made[name]
        spec = inventory.hosts[name].spec
        alias = spec.ssh_alias or spec.address or name
        s = settings(alias)
        jump = via
        if jump is None and spec.jump:
            jump = jump_chain(spec.jump, spec.connect_timeout)
        elif jump is None and s.get("proxyjump"):
            jump = jump_chain(s["proxyjump"], spec.connect_timeout)
        key_file = spec.key or (s.get("identityfile") or [None])[0]
        tr = SshTransport(
            name=name,
            address=s.get("hostname", spec.address or alias) if spec.ssh_alias or not spec.address else spec.address,
            port=int(spec.port or s.get("port", 22)),
            user=spec.user or s.get("user"),
            key_file=os.path.expanduser(key_file) if key_file else None,
            password=spec.password or opts.password,
            passphrase=spec.passphrase or opts.passphrase,
            known_hosts=opts.known_hosts,
            accept_new_hostkeys=opts.accept_new_hostkeys,
            connect_timeout=spec.connect_timeout,
            jump=jump,
        )
        tr.sudo = bool(spec.sudo)
        tr.sudo_password = spec.sudo_password
        made[name] = tr
        return tr

    for h in hosts:
        if h == "local":
            out[h] = LocalTransport()
        else:
            out[h] = make(h)
    return out
