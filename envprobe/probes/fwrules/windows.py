"""Windows Defender Firewall: recorded outputs of ``netsh`` or of a PowerShell pipeline, and the evaluation.

**Inputs** (English output; the probe runs the PowerShell form, ``netsh`` is the fallback for hosts without the
NetSecurity module and the form people paste):

* ``netsh advfirewall firewall show rule name=all dir=in verbose`` — blocks of ``Key:   value`` lines, one per
  rule (``Rule Name``, ``Enabled``, ``Direction``, ``Profiles``, ``LocalIP``, ``RemoteIP``, ``Protocol``,
  ``LocalPort``, ``Program``, ``Service``, ``InterfaceTypes``, ``Action`` …); without ``verbose`` the program and
  service restrictions are missing and such rules would look port-wide, so the probe always asks for it;
* ``netsh advfirewall show allprofiles`` (state and ``Firewall Policy`` per profile) and ``netsh advfirewall
  show currentprofile`` (which profiles are active);
* the JSON of :data:`POWERSHELL` — ``{"rules": [...], "profiles": [...], "connections": [...]}`` built from
  ``Get-NetFirewallRule`` joined with its port, address, application, service and interface-type filters
  (``-All``, joined by InstanceID: one query per filter type instead of one per rule), ``Get-NetFirewallProfile``
  and ``Get-NetConnectionProfile``, all from the ActiveStore (local rules merged with Group Policy). Enum values are
  cast to strings; the parser also accepts the numbers ConvertTo-Json writes for enums in Windows PowerShell 5.1.

**Evaluation** for an inbound TCP/UDP connection, per active network profile: a profile whose firewall is off
accepts; with ``AllowInboundRules`` false (“block all incoming connections”) everything is blocked; otherwise
every enabled inbound rule whose profiles, protocol, local port (numbers, ranges, lists; keywords such as RPC
are unknown), remote address (Any, addresses, ranges, subnets; keywords such as LocalSubnet are unknown) and
interface type match applies, and **block beats allow**; no rule → the profile's default inbound action. Windows
drops blocked packets silently (the client times out): the action is ``drop``. A rule bound to a program or a
service applies only when that program listens on the port: unless the check names the program, the answer
then depends on it (``depends-on-program``). Authenticated bypass (IPsec “override block rules”) is not modelled.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from envprobe.probes.fwrules.engine import (
    PROTO_NUMBERS,
    Atoms,
    Ending,
    Packet,
    State,
    Tri,
)

#: The PowerShell the probe runs on a Windows host (documented format of the JSON it prints).
POWERSHELL = r"""
$ErrorActionPreference = 'Stop'
$s = 'ActiveStore'
function Index($items) { $h = @{}; foreach ($i in $items) { $h[$i.InstanceID] = $i }; $h }
$pf = Index (Get-NetFirewallPortFilter -All -PolicyStore $s)
$af = Index (Get-NetFirewallAddressFilter -All -PolicyStore $s)
$ap = Index (Get-NetFirewallApplicationFilter -All -PolicyStore $s)
$sv = Index (Get-NetFirewallServiceFilter -All -PolicyStore $s)
$it = Index (Get-NetFirewallInterfaceTypeFilter -All -PolicyStore $s)
$rules = foreach ($r in Get-NetFirewallRule -PolicyStore $s -Direction Inbound) {
  $id = $r.InstanceID; $p = $pf[$id]; $a = $af[$id]
  [ordered]@{ Name = $r.Name; DisplayName = $r.DisplayName; Enabled = [string]$r.Enabled;
    Direction = [string]$r.Direction; Action = [string]$r.Action; Profile = [string]$r.Profile;
    Protocol = [string]$p.Protocol; LocalPort = @($p.LocalPort | ForEach-Object { [string]$_ });
    RemoteAddress = @($a.RemoteAddress | ForEach-Object { [string]$_ });
    LocalAddress = @($a.LocalAddress | ForEach-Object { [string]$_ });
    Program = [string]$ap[$id].Program; Service = [string]$sv[$id].Service;
    InterfaceType = [string]$it[$id].InterfaceType }
}
$profiles = foreach ($f in Get-NetFirewallProfile -PolicyStore $s) {
  [ordered]@{ Name = [string]$f.Name; Enabled = [string]$f.Enabled;
    DefaultInboundAction = [string]$f.DefaultInboundAction; AllowInboundRules = [string]$f.AllowInboundRules }
}
$conns = foreach ($c in Get-NetConnectionProfile) {
  [ordered]@{ InterfaceAlias = [string]$c.InterfaceAlias; NetworkCategory = [string]$c.NetworkCategory }
}
[ordered]@{ rules = @($rules); profiles = @($profiles); connections = @($conns) } | ConvertTo-Json -Depth 4 -Compress
"""

NETSH_RULES = "netsh advfirewall firewall show rule name=all dir=in verbose"
NETSH_PROFILES = "netsh advfirewall show allprofiles"
NETSH_CURRENT = "netsh advfirewall show currentprofile"

PROFILES = ("Domain", "Private", "Public")


@dataclass
class WinRule:
    name: str
    enabled: bool
    direction: str  # in | out
    action: str  # allow | block | bypass
    profiles: set[str]  # subset of PROFILES
    protocol: str  # any | tcp | udp | a number | icmpv4 …
    local_ports: list[str]  # "Any", "80", "5000-5010", "RPC" …
    remote_addresses: list[str]
    local_addresses: list[str] = field(default_factory=lambda: ["Any"])
    program: str = "Any"
    service: str = "Any"
    interface_types: str = "Any"
    display: str = ""

    @property
    def text(self) -> str:
        return self.display or self.name


@dataclass
class WinProfile:
    name: str
    enabled: bool = True
    default_inbound: str = "block"  # block | allow
    allow_inbound_rules: bool = True


@dataclass
class WinFirewall:
    rules: list[WinRule] = field(default_factory=list)
    profiles: dict[str, WinProfile] = field(default_factory=dict)
    #: interface alias → profile name (Domain/Private/Public); empty: the active profiles without interfaces
    connections: dict[str, str] = field(default_factory=dict)
    active: list[str] = field(default_factory=list)


# ===========================================================================================================
# netsh
# ===========================================================================================================
def parse_netsh_rules(text: str) -> list[WinRule]:
    rules: list[WinRule] = []
    cur: dict[str, str] = {}

    def flush() -> None:
        if cur.get("Rule Name"):
            rules.append(_rule_from_netsh(cur))

    for raw in text.splitlines():
        line = raw.rstrip("\r").rstrip()
        if not line.strip() or set(line.strip()) == {"-"} or line.strip() == "Ok.":
            continue
        m = re.match(r"^([A-Za-z][A-Za-z ]*?):\s*(.*)$", line)
        if not m:
            continue
        key, value = m.group(1).strip(), m.group(2).strip()
        if key == "Rule Name":
            flush()
            cur = {}
        cur[key] = value
    flush()
    return rules


def _rule_from_netsh(d: dict[str, str]) -> WinRule:
    return WinRule(
        name=d.get("Rule Name", ""),
        enabled=d.get("Enabled", "Yes").lower() == "yes",
        direction=d.get("Direction", "In").lower(),
        action=d.get("Action", "Allow").lower(),
        profiles=_profiles(d.get("Profiles", "Domain,Private,Public")),
        protocol=d.get("Protocol", "Any").lower(),
        local_ports=_list(d.get("LocalPort", "Any")),
        remote_addresses=_list(d.get("RemoteIP", "Any")),
        local_addresses=_list(d.get("LocalIP", "Any")),
        program=d.get("Program", "Any") or "Any",
        service=d.get("Service", "Any") or "Any",
        interface_types=d.get("InterfaceTypes", "Any") or "Any",
    )


def _list(value: str) -> list[str]:
    return [x.strip() for x in value.split(",") if x.strip()] or ["Any"]


def _profiles(value: str) -> set[str]:
    words = {w.strip().capitalize() for w in re.split(r"[,\s]+", value) if w.strip()}
    if not words or "Any" in words or "All" in words:
        return set(PROFILES)
    return words & set(PROFILES)


def parse_netsh_profiles(text: str) -> dict[str, WinProfile]:
    """``netsh advfirewall show allprofiles`` → state and default inbound action per profile."""
    out: dict[str, WinProfile] = {}
    cur: WinProfile | None = None
    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r"^(Domain|Private|Public) Profile Settings:", line)
        if m:
            cur = out.setdefault(m.group(1), WinProfile(m.group(1)))
            continue
        if cur is None:
            continue
        if line.startswith("State"):
            cur.enabled = line.split()[-1].upper() == "ON"
        elif line.startswith("Firewall Policy"):
            policy = line.split(None, 2)[-1]
            inbound = policy.split(",")[0].strip().lower()
            cur.default_inbound = "allow" if inbound == "allowinbound" else "block"
            cur.allow_inbound_rules = inbound != "blockinboundalways"
    return out


def parse_netsh_current(text: str) -> list[str]:
    """``netsh advfirewall show currentprofile`` → the active profiles."""
    return re.findall(r"^\s*(Domain|Private|Public) Profile Settings:", text, flags=re.M)


# ===========================================================================================================
# PowerShell JSON
# ===========================================================================================================
_ACTION_NUM = {"2": "allow", "3": "allowbypass", "4": "block"}
_DIRECTION_NUM = {"1": "in", "2": "out"}
_ENABLED_NUM = {"1": True, "2": False}
_PROFILE_BITS = {1: "Domain", 2: "Private", 4: "Public"}
_CATEGORY_NUM = {"0": "Public", "1": "Private", "2": "Domain"}
_GPOBOOL = {"true": True, "false": False, "1": True, "0": False, "2": None, "notconfigured": None}


def parse_powershell(text: str) -> WinFirewall:
    """The JSON printed by :data:`POWERSHELL`. ValueError when it is not that."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the PowerShell output")
    data = json.loads(text[start:])
    if not isinstance(data, dict) or "rules" not in data:
        raise ValueError("the JSON has no rules list")
    fw = WinFirewall()
    for r in _as_list(data.get("rules")):
        if isinstance(r, dict):
            fw.rules.append(_rule_from_ps(r))
    for p in _as_list(data.get("profiles")):
        if not isinstance(p, dict):
            continue
        name = str(p.get("Name", "")).capitalize()
        enabled = _GPOBOOL.get(str(p.get("Enabled", "True")).lower())
        inbound = str(p.get("DefaultInboundAction", "Block")).lower()
        allow_rules = _GPOBOOL.get(str(p.get("AllowInboundRules", "True")).lower())
        fw.profiles[name] = WinProfile(
            name, enabled=True if enabled is None else enabled,
            default_inbound="allow" if inbound in ("allow", "2") else "block",
            allow_inbound_rules=True if allow_rules is None else allow_rules)
    for c in _as_list(data.get("connections")):
        if isinstance(c, dict) and c.get("InterfaceAlias"):
            cat = str(c.get("NetworkCategory", "Public"))
            cat = _CATEGORY_NUM.get(cat, cat)
            fw.connections[str(c["InterfaceAlias"])] = "Domain" if cat.startswith("Domain") else cat.capitalize()
    fw.active = sorted(set(fw.connections.values())) or ["Public"]
    return fw


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _rule_from_ps(r: dict[str, Any]) -> WinRule:
    enabled = str(r.get("Enabled", "True"))
    action = str(r.get("Action", "Allow"))
    direction = str(r.get("Direction", "Inbound"))
    profile = str(r.get("Profile", "Any"))
    if profile.isdigit():
        bits = int(profile)
        profs = {n for b, n in _PROFILE_BITS.items() if bits & b} if bits else set(PROFILES)
    else:
        profs = _profiles(profile)
    return WinRule(
        name=str(r.get("Name", "")),
        display=str(r.get("DisplayName", "") or ""),
        enabled=_ENABLED_NUM.get(enabled, enabled.lower() == "true"),
        direction=_DIRECTION_NUM.get(direction, "in" if direction.lower().startswith("in") else "out"),
        action=_ACTION_NUM.get(action, action.lower()),
        profiles=profs,
        protocol=str(r.get("Protocol") or "Any").lower(),
        local_ports=[str(x) for x in _as_list(r.get("LocalPort"))] or ["Any"],
        remote_addresses=[str(x) for x in _as_list(r.get("RemoteAddress"))] or ["Any"],
        local_addresses=[str(x) for x in _as_list(r.get("LocalAddress"))] or ["Any"],
        program=str(r.get("Program") or "Any"),
        service=str(r.get("Service") or "Any"),
        interface_types=str(r.get("InterfaceType") or "Any"),
    )


# ===========================================================================================================
# evaluation
# ===========================================================================================================
def _is_any(values: list[str]) -> bool:
    return not values or any(v.lower() in ("any", "*") for v in values)


def _port_tri(rule: WinRule, port: int) -> Tri:
    if _is_any(rule.local_ports):
        return True
    unknown = False
    for v in rule.local_ports:
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", v.strip())
        if m:
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if lo <= port <= hi:
                return True
        else:
            unknown = True  # RPC, RPC-EPMap, IPHTTPS, Teredo, PlayToDiscovery, mDNS …
    return None if unknown else False


def _proto_tri(rule: WinRule, pkt: Packet) -> Tri:
    p = rule.protocol.lower()
    if p in ("any", "256", ""):
        return True
    if p.isdigit():
        return int(p) == pkt.proto_number
    return PROTO_NUMBERS.get(p) == pkt.proto_number


def _address_tri(values: list[str], ip: Any) -> Tri:
    if _is_any(values):
        return True
    unknown = False
    for v in values:
        v = v.strip()
        if "-" in v and not v.startswith("-"):
            a, _, b = v.partition("-")
            try:
                lo, hi = ipaddress.ip_address(a), ipaddress.ip_address(b)
            except ValueError:
                unknown = True
                continue
            if lo.version == ip.version and int(lo) <= int(ip) <= int(hi):
                return True
            continue
        try:
            net = ipaddress.ip_network(v, strict=False)
        except ValueError:
            unknown = True  # LocalSubnet, DNS, DHCP, DefaultGateway, Internet, Intranet …
            continue
        if net.version == ip.version and ip in net:
            return True
    return None if unknown else False


def remote_atoms(fw: WinFirewall, atoms: Atoms) -> None:
    for r in fw.rules:
        for v in r.remote_addresses:
            if "-" in v:
                a, _, b = v.partition("-")
                with contextlib.suppress(ValueError):
                    atoms.add_range(ipaddress.ip_address(a), ipaddress.ip_address(b))
                continue
            with contextlib.suppress(ValueError):
                atoms.add_net(ipaddress.ip_network(v, strict=False))


def _listener_tri(rule: WinRule, program: str | None) -> Tri:
    restricted = [x for x in (rule.program, rule.service) if x and x.lower() not in ("any", "*")]
    if not restricted:
        return True
    if program is None:
        return None
    want = program.strip().lower()
    return any(_norm_path(x) == _norm_path(want) or x.lower() == want for x in restricted)


def _norm_path(p: str) -> str:
    p = p.lower().replace("/", "\\")
    for var, real in (("%systemroot%", "c:\\windows"), ("%windir%", "c:\\windows"),
                      ("%programfiles%", "c:\\program files"), ("%programfiles(x86)%", "c:\\program files (x86)"),
                      ("%systemdrive%", "c:")):
        p = p.replace(var, real)
    return p


def rule_tri(rule: WinRule, pkt: Packet, profile: str) -> tuple[Tri, str]:
    """Does the rule apply? (tri-state, and the kind of doubt: "rule" or "program")."""
    if not rule.enabled or rule.direction != "in" or profile not in rule.profiles:
        return False, "rule"
    checks: list[tuple[Tri, str]] = [
        (_proto_tri(rule, pkt), "rule"),
        (_port_tri(rule, pkt.dport) if rule.protocol.lower() in ("tcp", "udp", "6", "17") else True, "rule"),
        (_address_tri(rule.remote_addresses, pkt.saddr), "rule"),
        (True if _is_any(rule.local_addresses) else None, "rule"),
        (True if rule.interface_types.lower() in ("any", "") else None, "rule"),
        (_listener_tri(rule, pkt.program), "program"),
    ]
    if any(c is False for c, _ in checks):
        return False, "rule"
    doubts = [k for c, k in checks if c is None]
    if not doubts:
        return True, "rule"
    return None, "rule" if "rule" in doubts else "program"


def profile_for(fw: WinFirewall, iif: str | None) -> list[str]:
    if iif is not None and iif in fw.connections:
        return [fw.connections[iif]]
    return fw.active or ["Public"]


def evaluate(fw: WinFirewall, pkt: Packet, st: State) -> list[Ending]:
    out: list[Ending] = []
    for prof_name in profile_for(fw, pkt.iif):
        prof = fw.profiles.get(prof_name, WinProfile(prof_name))
        label = f"Windows Firewall ({prof_name} profile)"
        policy = f"{prof.default_inbound}" + ("" if prof.enabled else " (firewall off)")
        if not prof.enabled:
            out.append(Ending("accept", None, label, label, "off", "windows", st, final=True))
            continue
        if not prof.allow_inbound_rules:
            out.append(Ending("drop", None, label, label, "block all incoming connections", "windows", st,
                              final=True))
            continue
        cur = replace(st, rules=st.rules + len(fw.rules))
        blocks: list[tuple[WinRule, Tri, str]] = []
        allows: list[tuple[WinRule, Tri, str]] = []
        for r in fw.rules:
            if r.action not in ("block", "allow", "allowbypass", "bypass"):
                continue
            hit, kind = rule_tri(r, pkt, prof_name)
            if hit is False:
                continue
            (blocks if r.action == "block" else allows).append((r, hit, kind))
        default = Ending("accept" if prof.default_inbound == "allow" else "drop", None, label, label, policy,
                         "windows", cur, final=True)
        sure_block = next((r for r, h, _ in blocks if h), None)
        if sure_block is not None:
            out.append(Ending("drop", sure_block.text, label, label, policy, "windows", cur, final=True))
            continue
        # no certain block: each doubtful block may or may not apply
        path = cur
        for r, _, kind in blocks:
            out.append(Ending("drop", r.text, label, label, policy, "windows", path.assume(kind, r.text, True),
                              final=True))
            path = path.assume(kind, r.text, False)
        sure_allow = next((r for r, h, _ in allows if h), None)
        if sure_allow is not None:
            out.append(Ending("accept", sure_allow.text, label, label, policy, "windows", path, final=True))
            continue
        for r, _, kind in allows:
            out.append(Ending("accept", r.text, label, label, policy, "windows", path.assume(kind, r.text, True),
                              final=True))
            path = path.assume(kind, r.text, False)
        out.append(replace(default, state=path))
    return out
