"""ufw: ``ufw status verbose`` (and, for application profiles, the ``### tuple ###`` lines of
``/etc/ufw/user.rules`` / ``user6.rules``).

ufw checks its rules in order and the first one that matches decides; incoming rules for IPv4 and IPv6 are
separate lists (the ``(v6)`` lines). ALLOW accepts, DENY drops, REJECT rejects (TCP reset for TCP, ICMP port
unreachable otherwise), LIMIT accepts a new connection unless the source opened 6 in the last 30 s (the first
one is always accepted: reported as accept, with a note). Then the default incoming policy (``deny`` drops,
``reject`` rejects, ``allow`` accepts).

ufw's own rules live in iptables chains named ``ufw-*``; the probe evaluates the ufw model in their place (so
the rule reported is the line ``ufw status`` prints) and the rest of iptables as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from envprobe.probes.fwrules.engine import (
    PROTO_NUMBERS,
    Atoms,
    Ending,
    Net,
    Packet,
    State,
    Tri,
    daddr_tri,
    iface_match,
    parse_net,
)


@dataclass
class UfwRule:
    text: str
    action: str  # allow | deny | reject | limit
    direction: str  # in | out | fwd
    v6: bool
    proto: str | None = None  # tcp | udp | … | None: any
    ports: list[tuple[int, int]] | None = None  # None: any port
    to_net: Net | None = None  # None: any address of this host
    from_net: Net | None = None  # None: anywhere
    from_ports: bool = False
    iface: str | None = None
    unreadable: str = ""


@dataclass
class Ufw:
    active: bool
    default_in: str = "deny"  # deny | reject | allow
    rules: list[UfwRule] = field(default_factory=list)
    logging: str = ""


_RULE_RE = re.compile(
    r"^(?P<to>.+?)\s+(?P<action>ALLOW|DENY|REJECT|LIMIT)(?: (?P<dir>IN|OUT|FWD))?\s+(?P<from>.+?)"
    r"(?P<attr>\s+\((?:log|log-all)[^)]*\))?(?:\s+#\s?(?P<comment>.*))?$")


def parse_status(text: str, tuples: dict[str, str] | None = None) -> Ufw:
    """``ufw status verbose`` → the ufw model. ``tuples``: application name → ports, from user.rules."""
    ufw = Ufw(active=False)
    in_rules = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("Status:"):
            ufw.active = line.split(":", 1)[1].strip() == "active"
            continue
        if line.startswith("Logging:"):
            ufw.logging = line.split(":", 1)[1].strip()
            continue
        if line.startswith("Default:"):
            m = re.search(r"(\w+) \(incoming\)", line)
            if m:
                ufw.default_in = m.group(1)
            continue
        if re.match(r"^To\s+Action\s+From\s*$", line):
            in_rules = True
            continue
        if not in_rules or not line.strip() or set(line.strip()) <= {"-", " "}:
            continue
        rule = parse_rule_line(line, tuples or {})
        if rule is not None:
            ufw.rules.append(rule)
    return ufw


def parse_rule_line(line: str, tuples: dict[str, str]) -> UfwRule | None:
    m = _RULE_RE.match(line.strip())
    if not m:
        return None
    to, frm = m.group("to").strip(), m.group("from").strip()
    direction = (m.group("dir") or "IN").lower()
    v6 = "(v6)" in to or "(v6)" in frm
    rule = UfwRule(line.strip(), m.group("action").lower(), direction, v6)
    to_loc = _location(to, tuples)
    from_loc = _location(frm, tuples)
    if to_loc is None or from_loc is None:
        rule.unreadable = "a To or From that cannot be read"
        return rule
    rule.to_net, to_ports, to_proto, rule.iface = to_loc
    rule.from_net, from_ports, from_proto, _out_iface = from_loc
    rule.ports = to_ports
    rule.proto = to_proto or from_proto
    rule.from_ports = from_ports is not None
    if rule.to_net is not None and rule.to_net.version == 6 or rule.from_net is not None and rule.from_net.version == 6:
        rule.v6 = True
    return rule


def _location(text: str, tuples: dict[str, str]) -> tuple[Net | None, list[tuple[int, int]] | None, str | None,
                                                          str | None] | None:
    """``10.0.0.5 5432/tcp on eth0`` → (address, ports, protocol, interface); None when unreadable."""
    iface = None
    m = re.search(r"\s+on\s+(\S+)$", text)
    if m:
        iface, text = m.group(1), text[:m.start()]
    text = re.sub(r"\s*\(v6\)$", "", text.strip())
    app = None
    m = re.search(r"\s*\((.+)\)$", text)
    if m:  # verbose: "80,443/tcp (Apache Full)"
        app, text = re.sub(r"\s*\(v6\)$", "", m.group(1)), text[:m.start()]
    words = text.split()
    net: Net | None = None
    ports: list[tuple[int, int]] | None = None
    proto: str | None = None
    for w in words:
        if w.startswith("Anywhere"):
            _, _, p = w.partition("/")
            proto = p or proto
            continue
        body, slash, p = w.rpartition("/")
        if slash and p.isalpha():
            w, proto = body, p.lower()
        if all(re.fullmatch(r"\d+(?::\d+)?", x) for x in w.split(",")):
            ports = []
            for x in w.split(","):
                lo, _, hi = x.partition(":")
                ports.append((int(lo), int(hi or lo)))
            continue
        n = parse_net(w)
        if n is None:
            if app is None and tuples.get(text.strip()):  # non-verbose application name
                return _location(tuples[text.strip()], {})
            return None
        net = n
    if app and ports is None and app in tuples:
        return _location(tuples[app], {})
    return net, ports, proto, iface


def parse_user_rules(text: str) -> dict[str, str]:
    """``### tuple ### allow tcp 80,443 0.0.0.0/0 any 0.0.0.0/0 Apache%20Full - in`` → {"Apache Full": "80,443/tcp"}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("### tuple ###"):
            continue
        parts = line.split()[3:]
        if len(parts) >= 9:  # action proto dport dst sport src dapp sapp direction
            _action, proto, dport, _dst, _sport, _src = parts[:6]
            dapp = parts[6]
            if dapp not in ("-", "") and dport != "any":
                name = dapp.replace("%20", " ")
                out[name] = f"{dport}/{proto}" if proto != "any" else dport
    return out


def rule_applies(r: UfwRule, pkt: Packet) -> Tri:
    if r.direction != "in" or r.v6 != (pkt.family == 6):
        return False
    if r.unreadable:
        return None
    if r.proto and r.proto != pkt.proto and PROTO_NUMBERS.get(r.proto) != pkt.proto_number:
        return False
    if r.ports is not None and not any(lo <= pkt.dport <= hi for lo, hi in r.ports):
        return False
    if r.from_net is not None and (r.from_net.version != pkt.saddr.version or pkt.saddr not in r.from_net):
        return False
    checks: list[Tri] = []
    if r.iface is not None:
        checks.append(None if pkt.iif is None else iface_match(r.iface.replace("+", "*"), pkt.iif))
    if r.to_net is not None:
        checks.append(daddr_tri(pkt, [r.to_net]))
    if r.from_ports:
        checks.append(None)  # a source port: not known for a new connection
    if any(c is False for c in checks):
        return False
    return None if any(c is None for c in checks) else True


def add_atoms(ufw: Ufw, atoms: Atoms) -> None:
    for r in ufw.rules:
        if r.from_net is not None:
            atoms.add_net(r.from_net)


def evaluate(ufw: Ufw, pkt: Packet, st: State) -> list[Ending]:
    """First match wins; then the default incoming policy. Unknown matches are followed both ways."""
    if pkt.iif == "lo":  # before.rules: -A ufw-before-input -i lo -j ACCEPT
        return [Ending("accept", "-A ufw-before-input -i lo -j ACCEPT", "ufw", "ufw", ufw.default_in, "ufw", st,
                       final=True)]
    out: list[Ending] = []
    todo: list[tuple[int, State]] = [(0, st)]
    while todo:
        start, cur = todo.pop()
        decided = False
        for i in range(start, len(ufw.rules)):
            r = ufw.rules[i]
            cur = replace(cur, rules=cur.rules + 1)
            hit = rule_applies(r, pkt)
            if hit is False:
                continue
            if hit is None:
                todo.append((i + 1, cur.assume("rule", r.text, False)))
                cur = cur.assume("rule", r.text, True)
            out.append(_ending(r, pkt, cur, ufw))
            decided = True
            break
        if not decided:
            v = {"allow": "accept", "deny": "drop", "reject": "reject"}.get(ufw.default_in, "drop")
            out.append(Ending(v, None, "ufw", "ufw", ufw.default_in, "ufw", cur, final=True,
                              reject_with=_reject_with(pkt) if v == "reject" else None))
        if len(out) + len(todo) > 256:
            break
    return out


def _reject_with(pkt: Packet) -> str:
    return "tcp-reset" if pkt.proto == "tcp" else (
        "icmp-port-unreachable" if pkt.family == 4 else "icmp6-port-unreachable")


def _ending(r: UfwRule, pkt: Packet, st: State, ufw: Ufw) -> Ending:
    if r.unreadable:
        return Ending("unknown", r.text, "ufw", "ufw", ufw.default_in, "ufw", st, why=r.unreadable, final=True)
    v = {"allow": "accept", "limit": "accept", "deny": "drop", "reject": "reject"}[r.action]
    return Ending(v, r.text, "ufw", "ufw", ufw.default_in, "ufw", st, final=True,
                  reject_with=_reject_with(pkt) if v == "reject" else None,
                  why="rate-limited (LIMIT): a source that opened 6 connections in 30 s is refused"
                  if r.action == "limit" else "")
