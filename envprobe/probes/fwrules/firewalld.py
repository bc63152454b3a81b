"""firewalld: the zone model, from ``firewall-cmd --get-default-zone``, ``--get-active-zones``,
``--list-all-zones``, ``--list-all-policies`` and the service definitions (``/etc/firewalld/services`` before
``/usr/lib/firewalld/services``).

Evaluation for a NEW connection to this host, as firewalld's own chains do it:

1. loopback traffic is accepted;
2. **zone selection**: the zone whose ``sources`` hold the packet's source (zones with sources first, by
   ingress priority then name); else the zone bound to the incoming interface; else the default zone;
3. in the zone: policies with a negative priority whose ingress zones include the zone (or ANY) and whose egress
   zones include HOST; rich rules with a negative priority (by priority); rich rules that reject or drop; then the
   allow part — services (ports and protocols from their definitions, includes followed), ports, protocols and
   accepting rich rules; rich rules with a positive priority; policies with a positive priority;
4. the zone's **target**: ``default``, ``REJECT`` and ``%%REJECT%%`` reject (ICMP admin-prohibited with the
   nftables backend, host-prohibited with the iptables one), ``DROP`` drops, ``ACCEPT`` accepts.

Rich rules evaluated: ``family``, ``priority``, ``source [not] address``, ``destination [not] address`` (against
the host's addresses), ``service``, ``port``, ``protocol``, ``icmp-*`` (never our packet), ``accept`` /
``reject [type]`` / ``drop``; ``log``, ``audit``, ``nflog`` and ``mark`` do not decide. ``source mac`` /
``ipset``, ``source-port`` and an action ``limit`` are unknown and followed both ways; a ``forward-port`` on
the port (DNAT) makes the answer unknown.
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from envprobe.probes.fwrules.engine import (
    PROTO_NUMBERS,
    UNKNOWN_MATCH,
    Atoms,
    Chain,
    Ending,
    Packet,
    Rule,
    State,
    Step,
    Tri,
    daddr_tri,
    iface_match,
    match,
    parse_net,
    run_chains,
    verdict,
)


@dataclass
class Zone:
    name: str
    target: str = "default"
    interfaces: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)
    forward_ports: list[str] = field(default_factory=list)
    source_ports: list[str] = field(default_factory=list)
    rich_rules: list[str] = field(default_factory=list)
    ingress_priority: int = 0
    priority: int = 0  # policies
    ingress_zones: list[str] = field(default_factory=list)
    egress_zones: list[str] = field(default_factory=list)
    disabled: bool = False
    default: bool = False
    active: bool = False


@dataclass
class Service:
    name: str
    ports: list[tuple[int, int, str]] = field(default_factory=list)  # (lo, hi, proto)
    protocols: list[str] = field(default_factory=list)
    destinations: dict[str, str] = field(default_factory=dict)  # ipv4/ipv6 → address
    includes: list[str] = field(default_factory=list)
    source_ports: list[tuple[int, int, str]] = field(default_factory=list)


@dataclass
class Firewalld:
    running: bool
    state: str = ""
    default_zone: str | None = None
    zones: dict[str, Zone] = field(default_factory=dict)
    policies: dict[str, Zone] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    #: "nftables" or "iptables": decides the reject message of the default target
    backend: str = "nftables"


# ===========================================================================================================
# parsing
# ===========================================================================================================
_KEY_RE = re.compile(r"^  ([a-z][a-z -]*[a-z]):\s?(.*)$")


def parse_zones(text: str) -> dict[str, Zone]:
    """``firewall-cmd --list-all-zones`` (or ``--list-all-policies``: the same layout) → zones by name."""
    zones: dict[str, Zone] = {}
    cur: Zone | None = None
    last_key = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            m = re.match(r"^(\S+)(?:\s+\(([^)]*)\))?\s*$", line)
            if not m:
                cur = None
                continue
            attrs = {a.strip() for a in (m.group(2) or "").split(",")}
            cur = zones.setdefault(m.group(1), Zone(m.group(1)))
            cur.default = "default" in attrs
            cur.active = "active" in attrs
            cur.disabled = "disabled" in attrs
            last_key = ""
            continue
        if cur is None:
            continue
        if line.startswith("\t") or line.startswith("        "):  # a continuation: forward-ports, rich rules
            _add(cur, last_key, line.strip(), whole=True)
            continue
        m = _KEY_RE.match(line)
        if not m:
            continue
        last_key, value = m.group(1), m.group(2).strip()
        _add(cur, last_key, value, whole=False)
    return zones


def _add(z: Zone, key: str, value: str, whole: bool) -> None:
    if not value:
        return
    words = [value] if whole else value.split()
    if key in _WORD_LISTS:
        getattr(z, _WORD_LISTS[key]).extend(words)
    elif key == "target":
        z.target = value
    elif key == "rich rules":
        z.rich_rules.append(value)
    elif key == "ingress-priority":
        z.ingress_priority = _int(value)
    elif key == "priority":
        z.priority = _int(value)
    elif key == "disable":
        z.disabled = value == "yes"


#: Listing keys whose value is a space-separated list, and the Zone attribute that collects it.
_WORD_LISTS = {
    "interfaces": "interfaces", "sources": "sources", "services": "services", "ports": "ports",
    "protocols": "protocols", "forward-ports": "forward_ports", "source-ports": "source_ports",
    "ingress-zones": "ingress_zones", "egress-zones": "egress_zones",
}


def _int(v: str) -> int:
    try:
        return int(v)
    except ValueError:
        return 0


def parse_active_zones(text: str) -> dict[str, dict[str, list[str]]]:
    """``firewall-cmd --get-active-zones`` → {zone: {"interfaces": [...], "sources": [...]}}."""
    out: dict[str, dict[str, list[str]]] = {}
    cur: str | None = None
    for raw in text.splitlines():
        if not raw.strip():
            continue
        if not raw[0].isspace():
            cur = raw.split()[0]
            out.setdefault(cur, {"interfaces": [], "sources": []})
            continue
        m = re.match(r"^\s+(interfaces|sources):\s*(.*)$", raw)
        if m and cur is not None:
            out[cur][m.group(1)] += m.group(2).split()
    return out


def parse_service(name: str, xml: str) -> Service:
    """A firewalld service definition (XML). ValueError when it does not parse."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"service {name}: {exc}") from exc
    svc = Service(name)
    for el in root:
        if el.tag == "port":
            rng = _port_range(el.get("port", ""))
            if rng:
                svc.ports.append((rng[0], rng[1], el.get("protocol", "").lower()))
            elif el.get("protocol"):
                svc.protocols.append(el.get("protocol", "").lower())
        elif el.tag == "protocol" and el.get("value"):
            svc.protocols.append(el.get("value", "").lower())
        elif el.tag == "include" and el.get("service"):
            svc.includes.append(el.get("service", ""))
        elif el.tag == "destination":
            for fam in ("ipv4", "ipv6"):
                if el.get(fam):
                    svc.destinations[fam] = el.get(fam, "")
        elif el.tag == "source-port":
            rng = _port_range(el.get("port", ""))
            if rng:
                svc.source_ports.append((rng[0], rng[1], el.get("protocol", "").lower()))
    return svc


def _port_range(text: str) -> tuple[int, int] | None:
    text = text.strip()
    m = re.fullmatch(r"(\d+)(?:[-:](\d+))?", text)
    if not m:
        return None
    lo = int(m.group(1))
    return lo, int(m.group(2) or lo)


# ===========================================================================================================
# rich rules
# ===========================================================================================================
@dataclass
class RichRule:
    text: str
    family: str | None = None
    priority: int = 0
    source: tuple[str, str, bool] | None = None  # (kind: address|mac|ipset, value, inverted)
    destination: tuple[str, str, bool] | None = None
    element: tuple[str, dict[str, str]] | None = None  # (service|port|protocol|icmp-block|…, attributes)
    action: str | None = None  # accept | reject | drop | mark
    reject_type: str | None = None
    action_limited: bool = False


def parse_rich_rule(text: str) -> RichRule | None:
    """One rich rule (firewalld's language). None when it does not parse."""
    try:
        tokens = shlex.split(text)
    except ValueError:
        return None
    if not tokens or tokens[0] != "rule":
        return None
    r = RichRule(text)
    i = 1
    last = ""
    while i < len(tokens):
        tok = tokens[i]
        key, eq, val = tok.partition("=")
        if eq and key == "family":
            r.family = val
        elif eq and key == "priority":
            r.priority = _int(val)
        elif tok in ("source", "destination"):
            inverted = i + 1 < len(tokens) and tokens[i + 1] == "not"
            if inverted:
                i += 1
            attr = tokens[i + 1] if i + 1 < len(tokens) else ""
            akey, _, aval = attr.partition("=")
            spec = (akey, aval, inverted)
            if tok == "source":
                r.source = spec
            else:
                r.destination = spec
            i += 1
        elif tok in ("service", "port", "protocol", "icmp-block", "icmp-type", "masquerade", "forward-port",
                     "source-port", "tcp-mss-clamp", "icmp-block-inversion"):
            attrs: dict[str, str] = {}
            while i + 1 < len(tokens) and "=" in tokens[i + 1] and tokens[i + 1].split("=")[0] in (
                    "name", "port", "protocol", "value", "to-port", "to-addr"):
                k, _, v = tokens[i + 1].partition("=")
                attrs[k] = v
                i += 1
            r.element = (tok, attrs)
        elif tok in ("log", "audit", "nflog"):
            last = tok
            while i + 1 < len(tokens) and "=" in tokens[i + 1] and tokens[i + 1].split("=")[0] in (
                    "prefix", "level", "group", "queue-size"):
                i += 1
        elif tok in ("accept", "reject", "drop", "mark"):
            r.action = tok
            last = tok
            while i + 1 < len(tokens) and "=" in tokens[i + 1] and tokens[i + 1].split("=")[0] in ("type", "set"):
                k, _, v = tokens[i + 1].partition("=")
                if k == "type":
                    r.reject_type = v
                i += 1
        elif tok == "limit":
            if last in ("accept", "reject", "drop", "mark"):
                r.action_limited = True
            if i + 1 < len(tokens) and tokens[i + 1].startswith("value="):
                i += 1
        i += 1
    return r


# ===========================================================================================================
# the model as chains
# ===========================================================================================================
class Model:
    def __init__(self, fw: Firewalld, atoms: Atoms):
        self.fw = fw
        self.atoms = atoms
        self.chains: dict[str, Chain] = {}
        for z in fw.zones.values():
            for s in z.sources:
                n = parse_net(s)
                if n is not None:
                    atoms.add_net(n)
        for z in list(fw.zones.values()) + list(fw.policies.values()):
            for rr in z.rich_rules:
                p = parse_rich_rule(rr)
                if p and p.source and p.source[0] == "address":
                    n = parse_net(p.source[1])
                    if n is not None:
                        atoms.add_net(n)
        for name, z in fw.zones.items():
            self.chains[f"zone {name}"] = self._zone_chain(z)
        for name, pol in fw.policies.items():
            self.chains[f"policy {name}"] = self._policy_chain(pol)

    # -- zone selection -------------------------------------------------------------------------------
    def evaluate(self, pkt: Packet, st: State) -> list[Ending]:
        if pkt.iif == "lo":
            return [Ending("accept", 'iifname "lo" accept', "firewalld", "firewalld", None, "firewalld", st,
                           final=True)]
        out: list[Ending] = []
        todo: list[State] = [st]
        source_zones = sorted((z for z in self.fw.zones.values() if z.sources),
                              key=lambda z: (z.ingress_priority, z.name))
        iface_zones = sorted((z for z in self.fw.zones.values() if z.interfaces),
                             key=lambda z: (z.ingress_priority, z.name))

        def pick(zones: list[Zone], hit_of: Callable[[Zone], bool | None], what: str,
                 cur: State) -> tuple[Zone | None, State]:
            """The first zone whose sources (or interfaces) take the packet; a match that cannot be decided
            is followed both ways (the 'no' branch goes back on the to-do list)."""
            for z in zones:
                hit = hit_of(z)
                if hit is None:
                    text = f"zone {z.name} {what}: {' '.join(getattr(z, what))}"
                    todo.append(cur.assume("rule", text, False))
                    cur = cur.assume("rule", text, True)
                    hit = True
                if hit:
                    return z, cur
            return None, cur

        for s in todo:
            chosen, cur = pick(source_zones, lambda z: _source_hit(pkt, z.sources), "sources", s)
            if chosen is None:
                chosen, cur = pick(iface_zones, lambda z: _iface_hit(pkt, z.interfaces), "interfaces", cur)
            if chosen is None:
                name = self.fw.default_zone or "public"
                chosen = self.fw.zones.get(name) or Zone(name)
                if name not in self.fw.zones:
                    out.append(Ending("unknown", None, f"zone {name}", "firewalld", None, "firewalld", cur,
                                      why=f"the default zone {name} is not in the zone listing"))
                    continue
            out.extend(self._run_zone(chosen, pkt, cur))
            if len(todo) > 64:
                break
        return out

    def _run_zone(self, z: Zone, pkt: Packet, st: State) -> list[Ending]:
        ends = run_chains(self.chains, f"zone {z.name}", pkt, st, "firewalld", policy_label=z.target)
        rw = self._target_reject()
        return [replace(e, zone=z.name, base=f"zone {z.name}", final=True,
                        reject_with=e.reject_with or (rw if e.verdict == "reject" else None)) for e in ends]

    def _target_reject(self) -> str:
        return "icmpx admin-prohibited" if self.fw.backend == "nftables" else "icmp-host-prohibited"

    # -- chains -----------------------------------------------------------------------------------------
    def _policies(self, zone: str, negative: bool) -> list[Zone]:
        chosen = [p for p in self.fw.policies.values()
                  if not p.disabled and "HOST" in p.egress_zones
                  and ("ANY" in p.ingress_zones or zone in p.ingress_zones)
                  and ((p.priority < 0) if negative else (p.priority > 0))]
        return sorted(chosen, key=lambda p: (p.priority, p.name))

    def _zone_chain(self, z: Zone) -> Chain:
        target = z.target.upper().strip("%")
        pol = {"ACCEPT": "accept", "DROP": "drop"}.get(target, "reject")
        ch = Chain(f"zone {z.name}", f"zone {z.name}", policy=pol)
        for p in self._policies(z.name, True):
            ch.rules.append(Rule(f"policy {p.name} (priority {p.priority})", (verdict("jump",
                                                                                      target=f"policy {p.name}"),)))
        ch.rules += self._rules(z, z.name)
        for p in self._policies(z.name, False):
            ch.rules.append(Rule(f"policy {p.name} (priority {p.priority})", (verdict("jump",
                                                                                      target=f"policy {p.name}"),)))
        return ch

    def _policy_chain(self, p: Zone) -> Chain:
        ch = Chain(f"policy {p.name}", f"policy {p.name}", policy=None)
        ch.rules += self._rules(p, p.name)
        target = p.target.upper().strip("%")
        if target in ("ACCEPT", "DROP", "REJECT"):
            v = {"ACCEPT": verdict("accept"), "DROP": verdict("drop"),
                 "REJECT": verdict("reject", reject_with=self._target_reject())}[target]
            ch.rules.append(Rule(f"policy {p.name} target: {p.target}", (v,)))
        return ch

    def _rules(self, z: Zone, owner: str) -> list[Rule]:
        rich = [(parse_rich_rule(t), t) for t in z.rich_rules]
        pre = sorted((r for r in rich if r[0] and r[0].priority < 0), key=lambda r: r[0].priority if r[0] else 0)
        post = sorted((r for r in rich if r[0] and r[0].priority > 0), key=lambda r: r[0].priority if r[0] else 0)
        zero = [r for r in rich if not r[0] or r[0].priority == 0]
        deny = [r for r in zero if r[0] is None or r[0].action in ("reject", "drop")]
        allow = [r for r in zero if r[0] is not None and r[0].action not in ("reject", "drop")]
        rules: list[Rule] = []
        rules += [self._rich(r, t) for r, t in pre]
        for fp in z.forward_ports:
            rules.append(self._forward_port(fp))
        rules += [self._rich(r, t) for r, t in deny]
        for name in z.services:
            rules.append(self._service(name))
        for spec in z.ports:
            rules.append(self._port(spec))
        for proto in z.protocols:
            num = PROTO_NUMBERS.get(proto.lower())
            rules.append(Rule(f"protocol {proto}", (_proto_match(num), verdict("accept"))))
        for spec in z.source_ports:
            rules.append(Rule(f"source-port {spec}", (UNKNOWN_MATCH, verdict("accept"))))
        rules += [self._rich(r, t) for r, t in allow]
        rules += [self._rich(r, t) for r, t in post]
        return rules

    def _service(self, name: str) -> Rule:
        ports, protos, dests, ok = self._service_parts(name, set())
        shown = " ".join(f"{lo}/{p}" if lo == hi else f"{lo}-{hi}/{p}" for lo, hi, p in ports) + (
            " " + " ".join(protos) if protos else "")
        text = f"service {name}" + (f" ({shown.strip()})" if shown.strip() else "")
        if not ok:
            return Rule(text, (UNKNOWN_MATCH, verdict("accept")))
        steps: list[Step] = [match(lambda p, s: any(_proto_ok(p, pr) and lo <= p.dport <= hi for lo, hi, pr in ports)
                                   or any(_proto_ok(p, pr) for pr in protos))]
        if dests:
            steps.append(match(lambda p, s: _dest_hit(p, dests)))
        return Rule(text, (*steps, verdict("accept")))

    def _service_parts(self, name: str, seen: set[str]) -> tuple[list[tuple[int, int, str]], list[str],
                                                                 dict[str, str], bool]:
        svc = self.fw.services.get(name)
        if svc is None or name in seen:
            return [], [], {}, svc is not None
        seen.add(name)
        ports, protos, dests = list(svc.ports), list(svc.protocols), dict(svc.destinations)
        ok = True
        for inc in svc.includes:
            p2, pr2, _d2, ok2 = self._service_parts(inc, seen)
            ports += p2
            protos += pr2
            ok = ok and ok2
        return ports, protos, dests, ok

    def _port(self, spec: str) -> Rule:
        port, _, proto = spec.partition("/")
        rng = _port_range(port)
        if rng is None:
            return Rule(f"port {spec}", (UNKNOWN_MATCH, verdict("accept")))
        lo, hi = rng
        return Rule(f"port {spec}", (match(lambda p, s: _proto_ok(p, proto) and lo <= p.dport <= hi),
                                     verdict("accept")))

    def _forward_port(self, spec: str) -> Rule:
        kv = dict(part.partition("=")[::2] for part in spec.split(":"))
        rng = _port_range(kv.get("port", ""))
        proto = kv.get("proto", "")
        if rng is None:
            return Rule(f"forward-port {spec}", (UNKNOWN_MATCH, verdict("unknown", why="forward-port")))
        lo, hi = rng
        return Rule(f"forward-port {spec}", (
            match(lambda p, s: _proto_ok(p, proto) and lo <= p.dport <= hi),
            verdict("unknown", why="forward-port (DNAT): the connection is sent elsewhere")))

    def _rich(self, r: RichRule | None, text: str) -> Rule:
        if r is None:
            return Rule(text, (UNKNOWN_MATCH, verdict("unknown", why="a rich rule that could not be read")))
        steps: list[Step] = []
        if r.family:
            fam = 4 if r.family == "ipv4" else 6
            steps.append(match(lambda p, s: p.family == fam))
        if r.source:
            kind, value, inv = r.source
            if kind == "address" and parse_net(value) is not None:
                net = parse_net(value)
                assert net is not None
                steps.append(match(lambda p, s: (p.saddr in net) != inv if p.saddr.version == net.version
                                   else inv))
            else:
                steps.append(UNKNOWN_MATCH)
        if r.destination:
            kind, value, inv = r.destination
            dnet = parse_net(value) if kind == "address" else None
            if dnet is not None:
                steps.append(match(lambda p, s: _inv(daddr_tri(p, [dnet]), inv)))
            else:
                steps.append(UNKNOWN_MATCH)
        if r.element:
            el, attrs = r.element
            if el == "service":
                svc_rule = self._service(attrs.get("name", ""))
                steps += [x for x in svc_rule.steps if x.kind == "match"]
            elif el == "port":
                rng = _port_range(attrs.get("port", ""))
                proto = attrs.get("protocol", "")
                if rng is None:
                    steps.append(UNKNOWN_MATCH)
                else:
                    lo, hi = rng
                    steps.append(match(lambda p, s: _proto_ok(p, proto) and lo <= p.dport <= hi))
            elif el == "protocol":
                value = attrs.get("value", "").lower()
                num = int(value) if value.isdigit() else PROTO_NUMBERS.get(value)
                steps.append(match(lambda p, s: p.proto_number == num) if num is not None else UNKNOWN_MATCH)
            elif el == "forward-port":
                rng = _port_range(attrs.get("port", ""))
                proto = attrs.get("protocol", "")
                if rng is None:
                    steps.append(UNKNOWN_MATCH)
                else:
                    lo, hi = rng
                    steps.append(match(lambda p, s: _proto_ok(p, proto) and lo <= p.dport <= hi))
                return Rule(text, (*steps, verdict("unknown", why="forward-port (DNAT)")))
            elif el == "source-port":
                steps.append(UNKNOWN_MATCH)
            elif el in ("icmp-block", "icmp-type", "masquerade", "icmp-block-inversion"):
                steps.append(match(lambda p, s: False))
            # tcp-mss-clamp: no match of its own
        if r.action_limited:
            steps.append(UNKNOWN_MATCH)
        if r.action == "accept":
            steps.append(verdict("accept"))
        elif r.action == "drop":
            steps.append(verdict("drop"))
        elif r.action == "reject":
            steps.append(verdict("reject", reject_with=r.reject_type or "icmp port-unreachable"))
        return Rule(text, tuple(steps))


def _proto_match(num: int | None) -> Step:
    if num is None:
        return UNKNOWN_MATCH
    return match(lambda p, s: p.proto_number == num)


def _inv(r: Tri, inv: bool) -> Tri:
    return r if r is None or not inv else not r


def _proto_ok(p: Packet, proto: str) -> bool:
    proto = proto.lower()
    return proto == p.proto or (proto.isdigit() and int(proto) == p.proto_number)


def _dest_hit(p: Packet, dests: dict[str, str]) -> Tri:
    fam = "ipv4" if p.family == 4 else "ipv6"
    if fam not in dests:
        return False  # a service bound to destinations of the other family only
    net = parse_net(dests[fam])
    return None if net is None else daddr_tri(p, [net])


def _source_hit(p: Packet, sources: list[str]) -> Tri:
    unknown = False
    for s in sources:
        net = parse_net(s)
        if net is None:  # MAC address or ipset:NAME
            unknown = True
            continue
        if net.version == p.saddr.version and p.saddr in net:
            return True
    return None if unknown else False


def _iface_hit(p: Packet, names: list[str]) -> Tri:
    if p.iif is None:
        return None
    return any(iface_match(n, p.iif) for n in names)


def build_model(fw: Firewalld, atoms: Atoms) -> Callable[[Packet, State], list[Ending]]:
    return Model(fw, atoms).evaluate


def merge_active(fw: Firewalld, active: dict[str, dict[str, list[str]]]) -> None:
    """Interfaces and sources bound at runtime (NetworkManager, --zone=…) as --get-active-zones shows them."""
    for name, parts in active.items():
        z = fw.zones.setdefault(name, Zone(name))
        z.active = True
        for i in parts.get("interfaces", []):
            if i not in z.interfaces:
                z.interfaces.append(i)
        for s in parts.get("sources", []):
            if s not in z.sources:
                z.sources.append(s)
