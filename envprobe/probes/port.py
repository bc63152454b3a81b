"""``port``: is a local port listened on (by which process), and is it free for our service?

Native path (this machine): on Linux the kernel's sock_diag netlink (else ``/proc/net``) for the listening
sockets, ``/proc/*/fd`` for their processes and ``/proc/PID/stat`` for the process names; elsewhere
``psutil.net_connections`` (psutil is imported only there). Then a real test: a socket is bound to the port
(``SO_REUSEADDR`` off) and closed at once, so ``bindable`` says what the service would meet when it starts.
A readiness check changes nothing: the socket never listens.

Shell path (a remote Linux host): one ``sh`` command prints the sockets on that port from ``/proc/net/tcp``,
``tcp6`` (or ``udp``, ``udp6``), the owning processes found through the socket inodes in ``/proc/*/fd``, the
user id and the first unprivileged port. Nothing is bound there, so ``bindable`` is *inferred* from the
sockets and the privileged-port rule, and the result says so. A socket that is bound but neither listening
nor connected is not listed in ``/proc/net``: only a real bind (the native path) sees it.

Both paths assume an IPv6 wildcard listener (``[::]``) also takes IPv4 (Linux's default, ``bindv6only=0``).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
import struct  # at import time: a probe run after dropping privileges may not be able to read the stdlib
import sys
from typing import Any, Literal

from envprobe.model import Text, join_text, t
from envprobe.probes.base import Facts, Probe, ProbeContext
from envprobe.probes.system import bad_input, need_text
from envprobe.record import record
from envprobe.schema import Field, Model, field_validator
from envprobe.transport.base import CommandResult, Source

Addr = ipaddress.IPv4Address | ipaddress.IPv6Address

IN_USE = "in-use"
PERMISSION = "permission"
NOT_LOCAL = "address-not-available"


class PortParams(Model):
    port: int = Field(ge=1, le=65535, description="the port number, 1-65535")
    protocol: Literal["tcp", "udp"] = Field(default="tcp", description="tcp (default) or udp")
    address: str | None = Field(
        default=None,
        description="the local IP address the service listens on or will bind "
                    "(e.g. 10.0.0.5, 127.0.0.1, ::); default: any address",
    )

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is None:
            return None
        raw = v.strip()
        if raw in ("", "*", "any"):
            return None
        try:
            ip = ipaddress.ip_address(raw.strip("[]"))
        except ValueError:
            raise ValueError("give an IP address of this host (e.g. 10.0.0.5, 0.0.0.0 or ::), "
                             "not a host name") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return str(ip)


class PortFacts(Facts):
    port: int = Field(description="the port that was checked")
    protocol: str = Field(description="tcp or udp")
    listening: bool = Field(description="a socket listens on the port and takes connections for `address` "
                                        "(any address when none is given); for udp: a socket is bound and "
                                        "unconnected")
    addresses: list[str] = Field(description="every address the port is listened on, as ip:port "
                                             "(IPv6 as [::]:port), whatever `address` is")
    process: str | None = Field(description="name of the listening process (null if unknown, e.g. another "
                                            "user's socket seen without root)")
    pid: int | None = Field(description="process id of the listener, the lowest when several share "
                                        "the socket (null if unknown)")
    bindable: bool = Field(description="our service could bind the port on `address` now: free, allowed for "
                                       "this user, and the address belongs to the host")
    bindable_checked: Literal["bind", "inferred"] = Field(
        description="bind: a socket was really bound and closed (this machine); inferred: judged from the "
                    "sockets in /proc/net and the privileged-port rule (a remote host)")
    bind_error: str | None = Field(
        description="why the port is not bindable: in-use, permission (a privileged port, or a Windows "
                    "reserved range), address-not-available, or another errno name; null when bindable")


# -- addresses ------------------------------------------------------------------------------------------
def _plain(ip: Addr) -> Addr:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def serves(listener: Addr, want: Addr | None) -> bool:
    """Does a socket listening on ``listener`` take connections addressed to ``want`` (None: any)?"""
    if want is None:
        return True
    li, w = _plain(listener), _plain(want)
    if li.is_unspecified:
        return li.version == 6 or w.version == 4  # [::] is dual-stack by default
    return li == w


def conflicts(existing: Addr, want: Addr | None) -> bool:
    """Would binding ``want`` (None: 0.0.0.0 and [::]) fail against a socket already bound to ``existing``?"""
    if want is None:
        return True
    e, w = _plain(existing), _plain(want)
    if e.version == w.version:
        return e.is_unspecified or w.is_unspecified or e == w
    if e.version == 6:
        return e.is_unspecified  # an existing dual-stack [::] holds the port for IPv4 too
    return w.is_unspecified  # binding [::] (dual-stack) needs the IPv4 port too


def fmt_addr(ip: Addr, port: int) -> str:
    if isinstance(ip, ipaddress.IPv6Address):
        text = f"::ffff:{ip.ipv4_mapped}" if ip.ipv4_mapped else ip.compressed
        return f"[{text}]:{port}"
    return f"{ip}:{port}"


def _addr_key(ip: Addr) -> tuple[int, bytes]:
    return (ip.version, ip.packed)


def decode_proc_addr(hexaddr: str) -> Addr:
    """``0100007F`` → 127.0.0.1; the 32-digit IPv6 form is four 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hexaddr)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    if len(raw) == 16:
        return ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    raise ValueError(f"not an address: {hexaddr}")


@record(frozen=True)
class Sock:
    ip: Addr
    listening: bool
    pid: int | None = None
    inode: int = 0


def assemble(params: Any, socks: list[Sock], names: dict[int, str], bind_error: str | None,
             checked: Literal["bind", "inferred"]) -> PortFacts:
    """Facts from the sockets on the port (both paths end here)."""
    want = ipaddress.ip_address(params.address) if params.address else None
    listeners = [s for s in socks if s.listening]
    addrs = sorted({s.ip for s in listeners}, key=_addr_key)
    serving = [s for s in listeners if serves(s.ip, want)]
    pids = sorted({s.pid for s in serving if s.pid is not None})
    pid = pids[0] if pids else None
    return PortFacts(
        port=params.port,
        protocol=params.protocol,
        listening=bool(serving),
        addresses=[fmt_addr(a, params.port) for a in addrs],
        process=names.get(pid) if pid is not None else None,
        pid=pid,
        bindable=bind_error is None,
        bindable_checked=checked,
        bind_error=bind_error,
    )


# -- shell path -----------------------------------------------------------------------------------------
def port_command(port: int, protocol: str, address: str | None) -> str:
    """One POSIX sh command (coreutils, grep) printing what :func:`parse_port` needs."""
    files = "/proc/net/tcp /proc/net/tcp6" if protocol == "tcp" else "/proc/net/udp /proc/net/udp6"
    state = "0A" if protocol == "tcp" else "07"  # LISTEN; for udp: unconnected
    lines = [
        f"P={port:04X} S={state}",
        f"for f in {files}; do",
        '  echo "## file $f"',
        '  [ -r "$f" ] || { echo "## unreadable $f"; continue; }',
        "  n=0",
        '  grep ":$P " "$f" | while read -r sl la ra st q tr rt u to ino rest; do',
        "    case $la in *:$P) ;; *) continue ;; esac",
        '    if [ "$st" != "$S" ]; then n=$((n+1)); [ $n -gt 20 ] && continue; fi',
        '    echo "$la $ra $st $u $ino"',
        "  done",
        "done",
        'echo "## uid $(id -u)"',
        'echo "## unpriv $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null)"',
        f'I=$(cat {files} 2>/dev/null | grep ":$P " | while read -r sl la ra st q tr rt u to ino rest; do',
        '  case "$la $st" in *:$P" "$S) [ "$ino" = 0 ] || printf "|%s" "$ino" ;; esac',
        "done)",
        'if [ -n "$I" ]; then',
        '  echo "## fds"',
        '  ls -l /proc/[0-9]*/fd 2>/dev/null | grep -E "^/proc/|socket:\\[(${I#|})\\]\\$" | '
        "while IFS= read -r l; do",
        "    case $l in /proc/*) d=${l%/fd:} ;;",
        '      *) echo "$d ${l##*socket:} $(cat "$d/comm" 2>/dev/null)" ;; esac',
        "  done",
        "fi",
    ]
    if address:
        ip = ipaddress.ip_address(address)
        if not (ip.is_unspecified or ip.is_loopback):
            if ip.version == 4:
                lines += ['echo "## local4"', "cat /proc/net/fib_trie 2>/dev/null"]
            else:
                lines += ['echo "## local6"', "cat /proc/net/if_inet6 2>/dev/null"]
    lines.append('echo "## end"')
    return "\n".join(lines)


def _lowest(pids: set[int] | None) -> int | None:
    return min(pids) if pids else None


_FD_LINE = re.compile(r"^/proc/(\d+) \[(\d+)\] ?(.*)$")
_FIB_IP = re.compile(r"^\s*\|--\s+(\d+\.\d+\.\d+\.\d+)\s*$")
_FIB_LOCAL = re.compile(r"^\s*/(\d+)\s+host\s+LOCAL\s*$")


def parse_port(params: Any, text: str) -> PortFacts:
    """Parse the output of :func:`port_command`: pure, tested on recorded outputs."""
    socks: list[Sock] = []
    inode_pids: dict[int, set[int]] = {}
    names: dict[int, str] = {}
    uid: int | None = None
    unpriv = 1024
    local_nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None
    section = ""
    fib_ip: str | None = None
    state = "0A" if params.protocol == "tcp" else "07"
    seen_end = False
    try:
        for raw in text.splitlines():
            line = raw.rstrip()
            if line.startswith("## "):
                word, _, rest = line[3:].partition(" ")
                section = word
                if word == "uid":
                    uid = int(rest) if rest.strip().isdigit() else None
                elif word == "unpriv" and rest.strip().isdigit():
                    unpriv = int(rest)
                elif word in ("local4", "local6"):
                    local_nets = []
                elif word == "end":
                    seen_end = True
                continue
            if not line.strip():
                continue
            if section == "file":
                la, _ra, st, _uid, inode = line.split()
                hexip, _, hexport = la.rpartition(":")
                if int(hexport, 16) != params.port:
                    continue
                socks.append(Sock(decode_proc_addr(hexip), st.upper() == state, inode=int(inode)))
            elif section == "fds":
                m = _FD_LINE.match(line)
                if m:
                    pid, fd_inode = int(m.group(1)), int(m.group(2))
                    inode_pids.setdefault(fd_inode, set()).add(pid)
                    if m.group(3):
                        names[pid] = m.group(3).strip()
            elif section == "local4" and local_nets is not None:
                m = _FIB_IP.match(line)
                if m:
                    fib_ip = m.group(1)
                    continue
                m = _FIB_LOCAL.match(line)
                if m and fib_ip:
                    local_nets.append(ipaddress.ip_network(f"{fib_ip}/{m.group(1)}", strict=False))
            elif section == "local6" and local_nets is not None:
                word = line.split()[0]
                if len(word) == 32:
                    local_nets.append(ipaddress.ip_network(ipaddress.IPv6Address(bytes.fromhex(word))))
    except ValueError as exc:
        raise bad_input("the socket listing from /proc/net", exc) from exc
    if not seen_end:
        raise bad_input("the socket listing from /proc/net", "the output stops early (no end marker)")

    with_pids = [Sock(s.ip, s.listening, inode=s.inode, pid=_lowest(inode_pids.get(s.inode))) for s in socks]
    want = ipaddress.ip_address(params.address) if params.address else None
    error: str | None = None
    if uid not in (None, 0) and params.port < unpriv:
        error = PERMISSION
    elif want is not None and local_nets is not None and not any(_plain(want) in n for n in local_nets):
        error = NOT_LOCAL
    elif any(conflicts(s.ip, want) for s in with_pids):
        error = IN_USE
    return assemble(params, with_pids, names, error, "inferred")


# -- native path ----------------------------------------------------------------------------------------
_ERRNO_WORDS = {
    errno.EADDRINUSE: IN_USE, 10048: IN_USE,
    errno.EACCES: PERMISSION, errno.EPERM: PERMISSION, 10013: PERMISSION,
    errno.EADDRNOTAVAIL: NOT_LOCAL, 10049: NOT_LOCAL, errno.EAFNOSUPPORT: NOT_LOCAL, 10047: NOT_LOCAL,
}


def _errword(exc: OSError) -> str:
    code = getattr(exc, "winerror", None) or exc.errno or 0
    return _ERRNO_WORDS.get(code) or _ERRNO_WORDS.get(exc.errno or 0) or errno.errorcode.get(code, str(code))


def try_bind(port: int, protocol: str, address: str | None) -> str | None:
    """Bind a socket to the port (SO_REUSEADDR off) and close it at once: None if it worked, else why not.

    No address: both 0.0.0.0 and [::] (IPv6-only, skipped when the host has no IPv6) must be free.
    """
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    if address is None:
        targets = [(socket.AF_INET, "0.0.0.0", False), (socket.AF_INET6, "::", True)]
    else:
        fam = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        targets = [(fam, address, False)]
    for fam, host, v6only in targets:
        optional = address is None and fam == socket.AF_INET6
        try:
            s = socket.socket(fam, kind)
        except OSError as exc:
            if optional:
                continue
            return _errword(exc)
        try:
            if os.name != "nt":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
            if v6only:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
        except OSError as exc:
            word = _errword(exc)
            if optional and word == NOT_LOCAL:
                continue
            return word
        finally:
            s.close()
    return None


def _all_connections(kind: str) -> list[tuple[Any, int | None]]:
    """Every socket of ``kind`` through psutil; without the right to see all (macOS as non-root), those of the
    processes we may inspect."""
    import psutil

    try:
        return [(c, c.pid) for c in psutil.net_connections(kind=kind)]
    except psutil.AccessDenied:
        conns: list[tuple[Any, int | None]] = []
        for proc in psutil.process_iter():
            try:
                conns.extend((c, proc.pid) for c in proc.net_connections(kind=kind))
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
        return conns


_SOCK_DIAG_BY_FAMILY = 20
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10


def _netlink_listeners(port: int, kind: str) -> dict[int, tuple[Addr, bool]] | None:
    """{inode: (address, True)} of the sockets listening on the port, asked of the kernel through the
    sock_diag netlink interface (as ss does): well under a millisecond, where reading /proc/net/tcp and tcp6
    makes the kernel walk its whole connection table (~3.5 ms each on a server-sized table). None when
    the interface is not available (old kernel, restricted container): the caller then reads /proc/net."""
    proto = socket.IPPROTO_TCP if kind == "tcp" else socket.IPPROTO_UDP
    states = (1 << _TCP_LISTEN) if kind == "tcp" else 0xFFFFFFFF
    found: dict[int, tuple[Addr, bool]] = {}
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4) as nl:  # 4: NETLINK_SOCK_DIAG
            nl.settimeout(2.0)
            for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
                # inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed inet_diag_sockid
                req = struct.pack("=BBBBI", family, proto, 0, 0, states) + bytes(48)
                nl.send(struct.pack("=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, 0x301, seq, 0) + req)
                done = False
                while not done:
                    data = nl.recv(65536)
                    off = 0
                    while off + 16 <= len(data):
                        length, mtype = struct.unpack_from("=IH", data, off)
                        if mtype == _NLMSG_DONE:
                            done = True
                            break
                        if mtype == _NLMSG_ERROR or length < 16:
                            return None
                        # inet_diag_msg: family, state, timer, retrans, sockid (sport, dport, src[16], ...),
                        # expires, rqueue, wqueue, uid, inode
                        body = off + 16
                        sport, dport = struct.unpack_from(">HH", data, body + 4)
                        if sport == port and (kind == "tcp" or dport == 0):
                            raw = data[body + 8: body + 24]
                            ip: Addr = (ipaddress.IPv4Address(raw[:4]) if family == socket.AF_INET
                                        else ipaddress.IPv6Address(raw))
                            (inode,) = struct.unpack_from("=I", data, body + 68)
                            found[inode] = (ip, True)
                        off += (length + 3) & ~3
    except (OSError, AttributeError, struct.error):  # AttributeError: no AF_NETLINK on this platform
        return None
    return found


def _linux_sockets(port: int, kind: str) -> list[Sock]:
    """Listening sockets on the port (Linux), through netlink or else /proc/net. Owners are looked up only
    for the sockets found, and the walk over /proc/*/fd stops once every one is placed: a free port costs
    next to nothing instead of psutil's walk over every descriptor of every process."""
    netlink = _netlink_listeners(port, kind)
    found: dict[int, tuple[Addr, bool]] = netlink if netlink is not None else {}
    for fam in ("", "6") if netlink is None else ():
        try:
            with open(f"/proc/net/{kind}{fam}", encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10:
                continue
            local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
            hexip, _, hexport = local.partition(":")
            try:
                if int(hexport, 16) != port:
                    continue
                ip = decode_proc_addr(hexip)
            except ValueError:
                continue
            listening = state == "0A" if kind == "tcp" else remote.partition(":")[2] == "0000"
            found[int(inode)] = (ip, listening)
    owners: dict[int, int] = {}
    wanted = {f"socket:[{i}]" for i in found if i}
    if wanted:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                fds = os.scandir(f"/proc/{entry.name}/fd")
            except OSError:
                continue
            with fds:
                for fd in fds:
                    try:
                        link = os.readlink(fd.path)
                    except OSError:
                        continue
                    if link in wanted:
                        owners.setdefault(int(link[8:-1]), int(entry.name))
            if len(owners) == len(wanted):
                break
    return [Sock(ip, listening, pid=owners.get(inode), inode=inode) for inode, (ip, listening) in found.items()]


def native_sockets(port: int, protocol: str, ctx: ProbeContext | None = None) -> list[Sock]:
    """Sockets on the port. Elsewhere than Linux through psutil; there, with a context, the socket table is
    read once per scan and shared by every port check on the host (it walks every process's descriptors)."""
    kind = "tcp" if protocol == "tcp" else "udp"
    if sys.platform.startswith("linux"):
        return _linux_sockets(port, kind)
    import psutil

    rows: list[tuple[str, str, int | None]] = []
    if ctx is not None:
        conns = ctx.transport.memo(f"port.connections.{kind}", lambda: _all_connections(kind))
    else:
        conns = _all_connections(kind)
    for c, pid in conns:
        if c.laddr and c.laddr.port == port:
            rows.append((c.laddr.ip, "CONNECTED" if c.raddr else c.status, pid))
    out: list[Sock] = []
    for ip, status, pid in rows:
        listening = status == psutil.CONN_LISTEN if kind == "tcp" else status != "CONNECTED"
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            continue
        out.append(Sock(addr, listening, pid=pid))
    return out


def _linux_name(pid: int) -> str | None:
    """The process name as psutil.Process(pid).name() gives it on Linux: the kernel's name from
    /proc/PID/stat (cut at 15 characters), completed from argv[0] when that starts with it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:  # gone, or hidden (hidepid)
        return None
    start, end = stat.find(b"("), stat.rfind(b")")
    if start < 0 or end < start:
        return None
    name = stat[start + 1:end].decode("utf-8", "replace")
    if len(name) >= 15:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                raw = fh.read().decode("utf-8", "replace")
        except OSError:
            raw = ""
        if raw:
            # argv as psutil splits it: NUL-separated; a process that rewrote its title may use spaces
            sep = "\0" if raw.endswith("\0") else " "
            argv = raw[:-1].split(sep) if raw.endswith(sep) else raw.split(sep)
            if sep == "\0" and len(argv) == 1 and " " in argv[0]:
                argv = argv[0].split(" ")
            base = os.path.basename(argv[0])
            if base.startswith(name):
                name = base
    return name


def _name(pid: int) -> str | None:
    if sys.platform.startswith("linux"):
        return _linux_name(pid)
    import psutil

    try:
        return psutil.Process(pid).name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


class PortProbe(Probe):
    name = "port"
    summary = t("Local port: is it listened on, by which process, and is it free for our service",
                "本机端口：是否在监听、由哪个进程监听、能否供我方服务使用")
    Params = PortParams
    Facts = PortFacts
    requires = t("remote hosts: Linux /proc, sh, coreutils and grep; root to name the process behind another "
                 "user's socket",
                 "远程主机：Linux /proc、sh、coreutils 与 grep；需 root 才能识别其他用户套接字所属的进程")
    example = """\
- id: app-port-free
  title: {zh-CN: 应用端口 8080 未被占用, en: Port 8080 is free for the application}
  probe: port
  with: {port: 8080, protocol: tcp}
  expect: {bindable: true}
"""
    advice = {
        "bindable": t("another program holds the port: find it (ss -ltnup 'sport = :PORT', or the pid and "
                      "process fields) and stop it or choose another port; ports below 1024 need root or "
                      "CAP_NET_BIND_SERVICE; on Windows check reserved ranges with "
                      "netsh interface ipv4 show excludedportrange protocol=tcp",
                      "端口被其他程序占用：用 ss -ltnup 'sport = :端口'（或结果中的 pid、process）"
                      "找到并停止它，或改用其他端口；1024 以下端口需要 root 或 CAP_NET_BIND_SERVICE；"
                      "Windows 上请用 "
                      "netsh interface ipv4 show excludedportrange protocol=tcp 查看保留端口段"),
        "listening": t("start the service and check it listens on this port and address "
                       "(ss -ltnp | grep :PORT; Windows: netstat -ano | findstr :PORT); a service bound to "
                       "127.0.0.1 cannot be reached from other hosts",
                       "请启动服务并确认其在该端口和地址上监听（ss -ltnp | grep :端口；"
                       "Windows：netstat -ano | findstr :端口）；只监听 127.0.0.1 的服务无法被其他主机访问"),
        "process": t("a different program listens on this port than expected: check the pid field and the "
                     "service configuration",
                     "监听该端口的程序与预期不符：请核对 pid 字段与服务配置"),
        "*": t("check the port plan with the customer's administrator", "请与客户管理员核对端口规划"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [Source.command(port_command(params.port, params.protocol, params.address))]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> PortFacts:
        src = self.sources(params)[0]
        return parse_port(params, need_text(data, src, f"the socket listing for port {params.port}"))

    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> PortFacts:
        socks = native_sockets(params.port, params.protocol, ctx)
        error = try_bind(params.port, params.protocol, params.address)
        names = {s.pid: n for s in socks if s.pid is not None and (n := _name(s.pid)) is not None}
        return assemble(params, socks, names, error, "bind")

    def note(self, params: Any, facts: Any) -> Text | None:
        parts: list[Text] = []
        if facts.bind_error == PERMISSION:
            parts.append(t(f"port {params.port} is privileged for this user: binding it needs root or "
                           "CAP_NET_BIND_SERVICE (on Windows the port may be in a reserved range)",
                           f"对当前用户而言端口 {params.port} 是特权端口：需要 root 或 CAP_NET_BIND_SERVICE"
                           "（Windows 上该端口可能位于系统保留段）"))
        elif facts.bind_error == NOT_LOCAL:
            parts.append(t(f"{params.address} is not an address of this host",
                           f"{params.address} 不是该主机的地址"))
        if not facts.listening and facts.addresses:
            shown = ", ".join(facts.addresses)
            parts.append(t(f"listening on {shown}, but not for {params.address or 'any address'}",
                           f"在 {shown} 上监听，但不覆盖 {params.address or '任意地址'}"))
        if facts.bindable_checked == "inferred":
            parts.append(t("bindable is inferred from the sockets in /proc/net and the privileged-port rule "
                           "(nothing was bound on the host; a socket bound without listening is not visible)",
                           "“可绑定”是根据 /proc/net 中的套接字和特权端口规则推断的（未在主机上实际绑定；"
                           "只绑定未监听的套接字无法看到）"))
        return join_text(*parts, sep="; ") if parts else None
