"""``net_interface``: network interfaces — state, MTU, speed, MAC, addresses, kind, bonds and their slaves.

Shell path (any Linux host, all in the host's one batch):

* ``/sys/class/net`` in one ``grep -H`` over every interface's ``operstate``, ``flags``, ``mtu``, ``speed``,
  ``address``, ``type``, ``uevent`` (``DEVTYPE``) and ``bonding/*`` files, plus a shell loop (builtins only)
  noting the ``device``, ``bridge``, ``bonding``, ``wireless``, ``tun_flags`` and ``master`` entries;
* ``ip -o addr show`` for addresses and ``ip -o -d link show`` for the link kind (veth, vlan, tun …);
  without ``ip`` (minimal or very old systems) ``ifconfig -a`` for IPv4 and ``/proc/net/if_inet6`` for IPv6;
* ``/proc/net/bonding/*`` for bond mode, active slave and slave order.

Native path (this machine): ``psutil.net_if_stats`` / ``net_if_addrs`` for state, MTU, speed, MAC and
addresses; on Linux the kind, operstate, master and bond details come from the same sysfs and /proc files.

``state``: ``up`` when the interface is administratively up and its operational state is up (or ``unknown``,
which loopback and some virtual drivers report while working — the kernel's own IFF_RUNNING rule), ``down``
otherwise, ``unknown`` when the host says neither.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from typing import Any

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.probes.system import maybe_text
from envprobe.schema import Field, Model, field_validator
from envprobe.transport.base import CommandResult, Source

SYSFS = Source.command(
    "cd /sys/class/net 2>/dev/null || exit 3; "
    'for i in *; do [ -e "$i" ] || continue; echo "@@if $i"; '
    '[ -e "$i/device" ] && echo device=1; [ -d "$i/bridge" ] && echo bridge=1; '
    '[ -d "$i/bonding" ] && echo bonding=1; [ -d "$i/wireless" ] && echo wireless=1; '
    '[ -e "$i/tun_flags" ] && echo tun=1; '
    '[ -e "$i/master" ] && m=$(readlink "$i/master") && echo "master=${m##*/}"; '
    "done; echo @@values; "
    "grep -s -H '' */operstate */flags */mtu */speed */address */type */carrier */tun_flags */uevent "
    "*/bonding/mode */bonding/slaves */bonding/active_slave; true"
)
IP_ADDR = Source.command("ip -o addr show")
IP_LINK = Source.command("ip -o -d link show")
IFCONFIG = Source.command("command -v ip >/dev/null 2>&1 && exit 0; ifconfig -a")
IF_INET6 = Source.file("/proc/net/if_inet6")
BONDING = Source.command('for f in /proc/net/bonding/*; do [ -r "$f" ] || continue; echo "@@bond ${f##*/}"; '
                         'cat "$f"; done; true')

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_TUN_TAP = 0x0002  # tun_flags: IFF_TAP
ARPHRD_LOOPBACK = 772

#: /proc/net/bonding's words for a mode → the mode's name as sysfs, ifcfg and nmcli write it.
BOND_MODES = {
    "load balancing (round-robin)": "balance-rr",
    "fault-tolerance (active-backup)": "active-backup",
    "load balancing (xor)": "balance-xor",
    "fault-tolerance (broadcast)": "broadcast",
    "ieee 802.3ad dynamic link aggregation": "802.3ad",
    "transmit load balancing": "balance-tlb",
    "adaptive load balancing": "balance-alb",
}
_NOT_KINDS = {"altname", "alias", "prop", "link-netnsid"}


class NetInterfaceParams(Model):
    name: str | None = Field(default=None, description="interface name, e.g. eth0, ens192, bond0; omit for "
                             "every interface (the interfaces list and counts)")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or len(v) > 15 or re.search(r"[/:\s]", v)):
            raise ValueError("an interface name is 1-15 characters without '/', ':' or spaces")
        return v


class NetInterfaceFacts(Facts):
    exists: bool = Field(description="the named interface exists (without name: the host has interfaces)")
    name: str | None = Field(description="the interface's name (null when listing all)")
    kind: str | None = Field(description="what it is: physical, wireless, loopback, bridge, bond, team, vlan, "
                                         "veth, tun, tap, macvlan, vxlan, dummy … as the kernel tells; virtual "
                                         "when only that is known; null off Linux (except loopback)")
    state: str | None = Field(description="up, down or unknown (administratively up and operationally "
                                          "up/unknown → up)")
    operstate: str | None = Field(description="the kernel's operational state as it says it: up, down, "
                                              "lowerlayerdown, dormant, unknown …")
    admin_up: bool | None = Field(description="administratively up (ip link set NAME up)")
    mtu: int | None = Field(description="MTU in bytes")
    speed_mbps: int | None = Field(description="link speed in Mb/s; null when unknown (virtual interfaces, "
                                               "a link that is down)")
    mac: str | None = Field(description="hardware address, lower case (null when the interface has none)")
    addresses: list[str] | None = Field(description="IPv4 and IPv6 addresses in CIDR form, e.g. 10.0.0.5/24, "
                                                    "fe80::1/64")
    ipv4: list[str] | None = Field(description="IPv4 addresses without prefix, e.g. 10.0.0.5")
    ipv6: list[str] | None = Field(description="IPv6 addresses without prefix (link-local included)")
    master: str | None = Field(description="the bond, team or bridge this interface is enslaved to")
    slaves: list[str] | None = Field(description="member interfaces: a bond's or team's slaves, a bridge's "
                                                 "ports (empty when none)")
    bond_mode: str | None = Field(description="bonding mode as sysfs names it: balance-rr, active-backup, "
                                              "balance-xor, broadcast, 802.3ad, balance-tlb, balance-alb "
                                              "(null when not a bond)")
    bond_active_slave: str | None = Field(description="the active slave of an active-backup bond")
    interfaces: list[dict[str, Any]] | None = Field(description="without name: every interface, each with the "
                                                                "fields above")
    count: int | None = Field(description="without name: number of interfaces")
    up_count: int | None = Field(description="without name: interfaces whose state is up")
    physical_count: int | None = Field(description="without name: physical (and wireless) interfaces")


IFACE_KEYS = ("name", "kind", "state", "operstate", "admin_up", "mtu", "speed_mbps", "mac", "addresses", "ipv4",
              "ipv6", "master", "slaves", "bond_mode", "bond_active_slave")


# -- parsers ---------------------------------------------------------------------------------------------
def parse_sysfs(text: str) -> dict[str, dict[str, str]]:
    """The output of :data:`SYSFS` → {interface: {key: value}} (keys: device, bridge, bonding, wireless, tun,
    master, operstate, flags, mtu, speed, address, type, carrier, tun_flags, DEVTYPE, bonding/mode …)."""
    out: dict[str, dict[str, str]] = {}
    head, _, values = text.partition("@@values\n")
    cur: dict[str, str] | None = None
    for line in head.splitlines():
        if line.startswith("@@if "):
            cur = out.setdefault(line[5:].strip(), {})
        elif cur is not None and "=" in line:
            k, _, v = line.partition("=")
            cur[k] = v.strip()
    for line in values.splitlines():
        path, sep, value = line.partition(":")
        if not sep or "/" not in path:
            continue
        iface, _, key = path.partition("/")
        entry = out.setdefault(iface, {})
        if key == "uevent":
            k, _, v = value.partition("=")
            if k == "DEVTYPE":
                entry["DEVTYPE"] = v.strip()
        else:
            entry[key] = value.strip()
    return out


def _hex_or_int(v: str | None) -> int | None:
    if not v:
        return None
    try:
        return int(v, 0)
    except ValueError:
        return None


def parse_ip_addr(text: str) -> dict[str, list[str]]:
    """``ip -o addr show`` → {interface: [CIDR, …]} in the order ip prints them. A point-to-point address
    (``inet A peer B/32``) is reported as A with the peer's prefix length."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^\d+:\s+(\S+?)(?:@\S+)?\s+(inet6?)\s+(\S+)(?:\s+peer\s+(\S+))?", line)
        if not m:
            continue
        iface, addr, peer = m.group(1), m.group(3), m.group(4)
        if "/" not in addr:
            plen = peer.split("/", 1)[1] if peer and "/" in peer else ("32" if m.group(2) == "inet" else "128")
            addr = f"{addr}/{plen}"
        out.setdefault(iface, []).append(_canon_cidr(addr))
    return out


def _canon_cidr(cidr: str) -> str:
    addr, _, plen = cidr.partition("/")
    addr = addr.split("%", 1)[0]
    try:
        return f"{ipaddress.ip_address(addr).compressed}/{int(plen)}"
    except ValueError:
        return cidr


def parse_ip_link_kinds(text: str) -> dict[str, str]:
    """``ip -o -d link show`` → {interface: kind} for interfaces whose details name a kind (veth, vlan,
    bridge, bond, tun/tap, macvlan, vxlan, dummy, ifb …)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\d+:\s+([^:@\s]+)(?:@[^:\s]+)?:", line)
        if not m:
            continue
        segments = line.split("\\")
        for seg in segments[2:]:
            words = seg.split()
            if not words:
                continue
            word = words[0]
            if word in _NOT_KINDS or word.endswith("_slave") or not re.fullmatch(r"[a-z][a-z0-9_]*", word):
                continue
            if word == "tun" and len(words) >= 3 and words[1] == "type":
                word = words[2]  # tun or tap
            out[m.group(1)] = word
            break
    return out


def parse_ifconfig_v4(text: str) -> dict[str, list[str]]:
    """``ifconfig -a`` (net-tools 2.x ``inet A  netmask M``; net-tools 1.60 and BusyBox ``inet addr:A …
    Mask:M``) → {interface: [IPv4 CIDR, …]}. Alias labels (eth0:1) count for their interface."""
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        if line and not line[0].isspace():
            # "eth0      Link encap…", "eth0: flags=…", alias "eth0:1    Link…" / "eth0:1: flags=…" → eth0
            cur = re.split(r"[:\s]", line.strip(), maxsplit=1)[0]
            continue
        if cur is None:
            continue
        m = re.search(r"\binet (?:addr:)?(\d+\.\d+\.\d+\.\d+)\b.*?(?:netmask |Mask:)(\d+\.\d+\.\d+\.\d+)", line)
        if m:
            plen = ipaddress.IPv4Network(f"0.0.0.0/{m.group(2)}").prefixlen
            out.setdefault(cur, []).append(f"{m.group(1)}/{plen}")
    return out


def parse_if_inet6(text: str) -> dict[str, list[str]]:
    """``/proc/net/if_inet6`` (address, ifindex, prefix length and scope in hex, flags, name) → {iface: [CIDR]}."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6 or len(parts[0]) != 32:
            continue
        try:
            addr = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
            plen = int(parts[2], 16)
        except ValueError:
            continue
        out.setdefault(parts[5], []).append(f"{addr.compressed}/{plen}")
    return out


def parse_bonding(text: str) -> dict[str, dict[str, Any]]:
    """``/proc/net/bonding/*`` (each after an ``@@bond NAME`` line) → {bond: {mode, active_slave, slaves}}."""
    out: dict[str, dict[str, Any]] = {}
    cur: dict[str, Any] | None = None
    for line in text.splitlines():
        if line.startswith("@@bond "):
            cur = out.setdefault(line[7:].strip(), {"mode": None, "active_slave": None, "slaves": []})
            continue
        if cur is None:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "bonding mode":
            low = value.lower()
            cur["mode"] = BOND_MODES.get(low) or next((v for k, v in BOND_MODES.items() if k in low), low)
        elif key == "currently active slave":
            cur["active_slave"] = None if value.lower() == "none" else value
        elif key == "slave interface":
            cur["slaves"].append(value)
    return out


# -- building the facts ---------------------------------------------------------------------------------
def _kind(name: str, sys_info: dict[str, str], ip_kind: str | None) -> str | None:
    flags = _hex_or_int(sys_info.get("flags")) or 0
    if sys_info.get("type") == str(ARPHRD_LOOPBACK) or flags & IFF_LOOPBACK or ip_kind == "loopback":
        return "loopback"
    if ip_kind:
        return ip_kind
    devtype = sys_info.get("DEVTYPE", "")
    if sys_info.get("bonding") or devtype == "bond":
        return "bond"
    if sys_info.get("bridge") or devtype == "bridge":
        return "bridge"
    if devtype in ("wlan",) or sys_info.get("wireless"):
        return "wireless"
    if devtype:
        return devtype
    if sys_info.get("tun"):
        tf = _hex_or_int(sys_info.get("tun_flags")) or 0
        return "tap" if tf & IFF_TUN_TAP else "tun"
    if sys_info.get("device"):
        return "physical"
    if "type" not in sys_info:  # no sysfs (Windows, macOS): nothing says what it is
        return None
    return "virtual"


def _natural(name: str) -> list[Any]:
    """eth2 before eth10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _state(admin_up: bool | None, operstate: str | None) -> str:
    if admin_up is False:
        return "down"
    if operstate in ("up", "unknown"):
        return "up" if admin_up is not False else "down"
    if operstate:
        return "down"
    return "unknown"


def build_interfaces(sysfs: dict[str, dict[str, str]], addrs: dict[str, list[str]], kinds: dict[str, str],
                     bonds: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per interface (keys :data:`IFACE_KEYS`), sorted by name."""
    rows: list[dict[str, Any]] = []
    names = sorted(set(sysfs) | set(addrs), key=_natural)
    members: dict[str, list[str]] = {}
    for n in names:
        m = sysfs.get(n, {}).get("master")
        if m:
            members.setdefault(m, []).append(n)
    for n in names:
        info = sysfs.get(n, {})
        flags = _hex_or_int(info.get("flags"))
        admin_up = bool(flags & IFF_UP) if flags is not None else None
        operstate = info.get("operstate") or None
        speed = _hex_or_int(info.get("speed"))
        mac = (info.get("address") or "").lower() or None
        kind = _kind(n, info, kinds.get(n))
        cidrs = addrs.get(n, [])
        bond = bonds.get(n)
        sys_mode = (info.get("bonding/mode") or "").split()
        bond_mode = (bond or {}).get("mode") or (sys_mode[0] if sys_mode else None)
        slaves = list((bond or {}).get("slaves") or (info.get("bonding/slaves") or "").split())
        for extra in sorted(members.get(n, []), key=_natural):
            if extra not in slaves:
                slaves.append(extra)
        active = (bond or {}).get("active_slave") or info.get("bonding/active_slave") or None
        if bond_mode and kind != "bond":
            kind = "bond"
        rows.append({
            "name": n, "kind": kind, "state": _state(admin_up, operstate), "operstate": operstate,
            "admin_up": admin_up, "mtu": _hex_or_int(info.get("mtu")),
            "speed_mbps": speed if speed is not None and speed > 0 else None,
            "mac": mac,
            "addresses": cidrs, "ipv4": [c.split("/")[0] for c in cidrs if ":" not in c],
            "ipv6": [c.split("/")[0] for c in cidrs if ":" in c],
            "master": info.get("master") or None, "slaves": slaves,
            "bond_mode": bond_mode or None, "bond_active_slave": active if bond_mode else None,
        })
    return rows


def facts_for(params: Any, rows: list[dict[str, Any]]) -> NetInterfaceFacts:
    empty: dict[str, Any] = {k: None for k in IFACE_KEYS}
    if params.name is None:
        return NetInterfaceFacts(
            exists=bool(rows), **{**empty, "name": None}, interfaces=rows, count=len(rows),
            up_count=sum(1 for r in rows if r["state"] == "up"),
            physical_count=sum(1 for r in rows if r["kind"] in ("physical", "wireless")),
        )
    row = next((r for r in rows if r["name"] == params.name), None)
    if row is None:
        return NetInterfaceFacts(exists=False, **{**empty, "name": params.name}, interfaces=None, count=None,
                                 up_count=None, physical_count=None)
    return NetInterfaceFacts(exists=True, **row, interfaces=None, count=None, up_count=None, physical_count=None)


# -- native helpers ----------------------------------------------------------------------------------------
def _prefixlen(netmask: str | None, v6: bool) -> int:
    if not netmask:
        return 128 if v6 else 32
    try:
        packed = ipaddress.ip_address(netmask).packed
    except ValueError:
        return 128 if v6 else 32
    return bin(int.from_bytes(packed, "big")).count("1")


def native_sysfs() -> dict[str, dict[str, str]]:
    """This machine's /sys/class/net, in the shape :func:`parse_sysfs` returns (Linux; empty elsewhere)."""
    base = "/sys/class/net"
    out: dict[str, dict[str, str]] = {}
    if not os.path.isdir(base):
        return out
    for n in sorted(os.listdir(base)):
        d = os.path.join(base, n)
        info: dict[str, str] = {}
        for flag, entry in (("device", "device"), ("bridge", "bridge"), ("bonding", "bonding"),
                            ("wireless", "wireless"), ("tun", "tun_flags")):
            if os.path.exists(os.path.join(d, entry)):
                info[flag] = "1"
        if os.path.islink(os.path.join(d, "master")):
            info["master"] = os.path.basename(os.readlink(os.path.join(d, "master")))
        for key in ("operstate", "flags", "mtu", "speed", "address", "type", "carrier", "tun_flags",
                    "bonding/mode", "bonding/slaves", "bonding/active_slave"):
            try:
                with open(os.path.join(d, key), encoding="ascii", errors="replace") as fh:
                    value = fh.read().strip()
            except OSError:
                continue
            if value:
                info[key] = value
        try:
            with open(os.path.join(d, "uevent"), encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("DEVTYPE="):
                        info["DEVTYPE"] = line.split("=", 1)[1].strip()
        except OSError:
            pass
        out[n] = info
    return out


def native_rows(ctx: ProbeContext) -> list[dict[str, Any]]:
    import psutil  # imported here, not at module top: a scan without interface checks never pays for it

    stats = psutil.net_if_stats()
    raw_addrs = psutil.net_if_addrs()
    linux = sys.platform.startswith("linux")
    sysfs = native_sysfs() if linux else {}
    bonds: dict[str, dict[str, Any]] = {}
    if linux and os.path.isdir("/proc/net/bonding"):
        text = ""
        for b in sorted(os.listdir("/proc/net/bonding")):
            try:
                with open(f"/proc/net/bonding/{b}", encoding="utf-8", errors="replace") as fh:
                    text += f"@@bond {b}\n{fh.read()}"
            except OSError:
                continue
        bonds = parse_bonding(text)
    kinds: dict[str, str] = {}
    if linux:  # the kind words (veth, vlan …) only ip knows; absent ip, sysfs decides
        res = ctx.run(["ip", "-o", "-d", "link", "show"], timeout=5)
        if res.ok:
            kinds = parse_ip_link_kinds(res.stdout)
    addrs: dict[str, list[str]] = {}
    macs: dict[str, str] = {}
    link_family = getattr(psutil, "AF_LINK", None)
    for n, entries in raw_addrs.items():
        for a in entries:
            if a.family.name in ("AF_INET", "AF_INET6"):
                v6 = a.family.name == "AF_INET6"
                addr = a.address.split("%", 1)[0]
                addrs.setdefault(n, []).append(_canon_cidr(f"{addr}/{_prefixlen(a.netmask, v6)}"))
            elif a.family == link_family or a.family.name in ("AF_PACKET", "AF_LINK"):
                macs[n] = a.address.replace("-", ":").lower()
    merged: dict[str, dict[str, str]] = {}
    for n in sorted(set(stats) | set(raw_addrs) | set(sysfs)):
        info = dict(sysfs.get(n, {}))
        st = stats.get(n)
        if st is not None:
            info["mtu"] = str(st.mtu)
            info["speed"] = str(st.speed) if st.speed else ""
            if "flags" not in info:  # not Linux: psutil's view of the flags
                words = set(filter(None, (getattr(st, "flags", "") or "").split(",")))
                up = "up" in words if words else st.isup
                running = "running" in words if words else st.isup
                info["flags"] = hex((IFF_UP if up else 0) | (IFF_LOOPBACK if "loopback" in words else 0))
                info["operstate"] = "up" if up and running else "down"
        if n in macs:
            info["address"] = macs[n]
        merged[n] = info
    return build_interfaces(merged, addrs, kinds, bonds)


class NetInterfaceProbe(Probe):
    name = "net_interface"
    summary = t("Network interfaces: state, MTU, speed, MAC, addresses, kind, bond mode and slaves",
                "网络接口：状态、MTU、速率、MAC、地址、类型、绑定模式与成员")
    Params = NetInterfaceParams
    Facts = NetInterfaceFacts
    requires = t("no privileges; reads /sys/class/net and /proc/net/bonding, runs ip (or ifconfig)",
                 "无需特权；读取 /sys/class/net 与 /proc/net/bonding，运行 ip（或 ifconfig）")
    example = """\
- id: mes-nic
  title: {zh-CN: 生产网卡绑定与 MTU, en: Production NIC bond and MTU}
  probe: net_interface
  with: {name: bond0}
  expect: {exists: true, state: up, bond_mode: active-backup, mtu: 1500, speed_mbps: ">= 1000"}
"""
    advice = {
        "exists": t("the interface is missing: check its name (ip -br link) and the network configuration "
                    "(nmcli con show, /etc/sysconfig/network-scripts, /etc/netplan)",
                    "接口不存在：核对名称（ip -br link）与网络配置（nmcli con show、"
                    "/etc/sysconfig/network-scripts、/etc/netplan）"),
        "state": t("bring it up (ip link set NAME up / nmcli con up NAME) and check the cable or the virtual "
                   "switch port", "启用该接口（ip link set 名称 up / nmcli con up 名称），并检查网线或虚拟交换机端口"),
        "mtu": t("set the MTU in the connection profile (nmcli con mod NAME 802-3-ethernet.mtu N, MTU= in "
                 "ifcfg, mtu: in netplan) — the switch path must carry it too",
                 "在连接配置中设置 MTU（nmcli con mod 名称 802-3-ethernet.mtu N、ifcfg 中 MTU=、netplan 中 mtu:）"
                 "——交换机链路也须支持该 MTU"),
        "speed_mbps": t("the link negotiated a lower speed: check the cable, the switch port and ethtool NAME",
                        "链路协商速率偏低：检查网线、交换机端口，并用 ethtool 名称 查看"),
        "bond_mode": t("set the bond mode the site's network design asks for (nmcli con mod BOND "
                       "bond.options mode=active-backup,miimon=100) and agree it with the switch side "
                       "(802.3ad needs LACP on the switch)",
                       "按现场网络设计设置绑定模式（nmcli con mod 绑定名 bond.options "
                       "mode=active-backup,miimon=100），并与交换机侧一致（802.3ad 需交换机开启 LACP）"),
        "slaves": t("add the missing member interfaces to the bond (nmcli con add type ethernet ifname NIC "
                    "master BOND) and check each slave's link",
                    "将缺少的成员网卡加入绑定（nmcli con add type ethernet ifname 网卡 master 绑定名），"
                    "并检查各成员链路"),
        "addresses": t("configure the expected address on the interface (nmcli con mod NAME ipv4.addresses …)",
                       "在该接口上配置期望的地址（nmcli con mod 名称 ipv4.addresses …）"),
        "*": t("inspect the interfaces with ip -d addr and cat /proc/net/bonding/*",
               "用 ip -d addr 与 cat /proc/net/bonding/* 查看接口"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [SYSFS, IP_ADDR, IP_LINK, IFCONFIG, IF_INET6, BONDING]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> NetInterfaceFacts:
        sysfs = parse_sysfs(maybe_text(data, SYSFS) or "")
        ip_addr = maybe_text(data, IP_ADDR)
        if ip_addr is not None:
            addrs = parse_ip_addr(ip_addr)
        else:
            addrs = parse_ifconfig_v4(maybe_text(data, IFCONFIG) or "")
            for iface, v6 in parse_if_inet6(maybe_text(data, IF_INET6) or "").items():
                addrs.setdefault(iface, []).extend(v6)
        kinds = parse_ip_link_kinds(maybe_text(data, IP_LINK) or "")
        bonds = parse_bonding(maybe_text(data, BONDING) or "")
        if not sysfs and not addrs:
            res = data.get(SYSFS)
            why = (res.stderr.strip().splitlines() or [""])[0] if res is not None else ""
            raise ProbeError(t(f"no network interfaces could be read on the host (/sys/class/net, ip, "
                               f"ifconfig){': ' + why if why else ''}",
                               f"无法读取主机的网络接口（/sys/class/net、ip、ifconfig）{'：' + why if why else ''}"),
                             hint=t("check that /sys is mounted and ip (iproute2) or ifconfig is installed",
                                    "请确认 /sys 已挂载，且已安装 ip（iproute2）或 ifconfig"))
        return facts_for(params, build_interfaces(sysfs, addrs, kinds, bonds))

    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> NetInterfaceFacts:
        return facts_for(params, native_rows(ctx))

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, NetInterfaceFacts)
        if params.name and not facts.exists:
            return t(f"there is no interface named {params.name} on the host",
                     f"主机上没有名为 {params.name} 的接口")
        return None
