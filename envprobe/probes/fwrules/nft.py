"""nftables: ``nft -j list ruleset`` (JSON, nft ≥ 0.9) turned into stages, with the rule texts of
``nft -a list ruleset`` (matched to the JSON by rule handle) for reports.

Every base chain on the inbound path — hook ``ingress`` (netdev/inet), ``prerouting`` and ``input`` of the
``ip``/``inet`` (IPv4) or ``ip6``/``inet`` (IPv6) families — becomes a stage at its priority. Matches understood:
``meta l4proto|nfproto|protocol|iif|iifname|iiftype|pkttype|oif*``, ``ip protocol``, ``ip6 nexthdr``,
``ip|ip6 saddr`` (addresses, prefixes, ranges, anonymous and named sets), ``ip|ip6 daddr`` (against the host's
own addresses), ``tcp|udp|th|sctp|dccp dport`` (values, ranges, sets, named sets, concatenations), ``tcp flags``
(the first packet is a SYN), ``ct state|status|direction``, ``fib daddr type`` and the reverse-path ``fib saddr .
iif oif``; verdict maps (``vmap``). Anything else that tests the packet (``limit``, ``meta mark``, ``tcp sport``,
``quota``, ``ct count``, iptables-compat ``xt`` matches…) is unknown and followed both ways (see engine.py);
NAT and queue statements make the verdict unknown.
"""

from __future__ import annotations

import bisect
import contextlib
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from envprobe.probes.fwrules.engine import (
    PROTO_NUMBERS,
    UNKNOWN_MATCH,
    Atoms,
    Chain,
    Packet,
    Rule,
    Stage,
    State,
    Step,
    Tri,
    daddr_tri,
    effect,
    iface_match,
    match,
    parse_net,
    run_chains,
    verdict,
)


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NA = _Sentinel("NA")  # the expression does not apply to this packet (implicit dependency fails): no match
UNK = _Sentinel("UNK")  # cannot be known here

_PRIO_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100, "out": 100}
_SERVICES = {"ssh": 22, "http": 80, "https": 443, "domain": 53, "smtp": 25, "ftp": 21, "telnet": 23,
             "ntp": 123, "snmp": 161, "ldap": 389, "ldaps": 636, "mysql": 3306, "postgresql": 5432,
             "ms-sql-s": 1433, "rdp": 3389, "ms-wbt-server": 3389, "http-alt": 8080, "imap": 143, "imaps": 993,
             "pop3": 110, "pop3s": 995, "submission": 587, "bootps": 67, "bootpc": 68, "dhcpv6-client": 546,
             "dhcpv6-server": 547, "mdns": 5353, "netbios-ns": 137, "netbios-dgm": 138, "netbios-ssn": 139,
             "microsoft-ds": 445, "nfs": 2049, "sunrpc": 111, "syslog": 514, "kerberos": 88}
_TCP_FIRST = frozenset({"syn"})  # the first packet of a NEW TCP connection


# ===========================================================================================================
# the text listing (for rule texts, devices and iptables-nft's marks)
# ===========================================================================================================
@dataclass
class NftText:
    rules: dict[tuple[str, str, str, int], str] = field(default_factory=dict)
    devices: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)
    #: tables nft itself says are managed by iptables-nft ("# Warning: table ip filter is managed by …")
    iptables_managed: set[tuple[str, str]] = field(default_factory=set)


_TABLE_RE = re.compile(r'^table\s+(\S+)\s+"?([^"\s{]+)"?\s*\{')
_CHAIN_RE = re.compile(r'^\s*chain\s+"?([^"\s{]+)"?\s*\{')
_HANDLE_RE = re.compile(r"^\s*(.*?)\s+# handle (\d+)\s*$")
_MANAGED_RE = re.compile(r"#\s*Warning: table (\S+) (\S+) is managed by iptables-nft")


def parse_nft_text(text: str) -> NftText:
    """``nft -a list ruleset`` → rule texts by (family, table, chain, handle) and chains' ingress devices."""
    out = NftText()
    table: tuple[str, str] | None = None
    chain: str | None = None
    depth = 0
    for raw in text.splitlines():
        m = _MANAGED_RE.search(raw)
        if m:
            out.iptables_managed.add((m.group(1), m.group(2)))
            continue
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        hm = _HANDLE_RE.match(line)
        body = hm.group(1) if hm else line.strip()
        opens, closes = _braces(body)
        if depth == 0:
            m = _TABLE_RE.match(body)
            if m:
                table, chain = (m.group(1), m.group(2)), None
        elif depth == 1 and table is not None:
            m = _CHAIN_RE.match(body)
            if m:
                chain = m.group(1)
        elif depth == 2 and table is not None and chain is not None:
            stripped = body.strip()
            if stripped.startswith("type ") and " hook " in stripped:
                dev = re.search(r'\bdevice\s+"?([^";\s]+)"?', stripped)
                devs = re.search(r"\bdevices\s*=\s*\{([^}]*)\}", stripped)
                if dev:
                    out.devices[(table[0], table[1], chain)] = (dev.group(1),)
                elif devs:
                    out.devices[(table[0], table[1], chain)] = tuple(
                        d.strip().strip('"') for d in devs.group(1).split(",") if d.strip())
            elif hm:
                out.rules[(table[0], table[1], chain, int(hm.group(2)))] = stripped
        depth += opens - closes
        if depth <= 1:
            chain = None
        if depth <= 0:
            table, depth = None, 0
    return out


def _braces(text: str) -> tuple[int, int]:
    """Braces outside double-quoted strings."""
    opens = closes = 0
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "{":
            opens += 1
        elif not quoted and ch == "}":
            closes += 1
    return opens, closes


def parse_nft_json(text: str) -> list[dict[str, Any]]:
    """The objects of ``nft -j list ruleset``. Warnings on other lines are skipped; ValueError if no JSON."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('{"nftables"'):
            data = json.loads(line)
            objs = data.get("nftables")
            if not isinstance(objs, list):
                raise ValueError("no nftables list in the JSON")
            return [o for o in objs if isinstance(o, dict)]
    stripped = text.strip()
    if stripped.startswith("{"):
        data = json.loads(stripped)
        return [o for o in data.get("nftables", []) if isinstance(o, dict)]
    raise ValueError("no JSON ruleset in the output of nft -j list ruleset")


# ===========================================================================================================
# the ruleset
# ===========================================================================================================
@dataclass
class NftTable:
    family: str
    name: str
    chains: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)


def tables_of(objs: list[dict[str, Any]]) -> dict[tuple[str, str], NftTable]:
    tables: dict[tuple[str, str], NftTable] = {}

    def tab(fam: str, name: str) -> NftTable:
        return tables.setdefault((fam, name), NftTable(fam, name))

    for o in objs:
        if "table" in o and isinstance(o["table"], dict):
            tab(o["table"]["family"], o["table"]["name"])
        elif "chain" in o:
            c = o["chain"]
            t = tab(c["family"], c["table"])
            t.chains[c["name"]] = c
            t.rules.setdefault(c["name"], [])
        elif "rule" in o:
            r = o["rule"]
            tab(r["family"], r["table"]).rules.setdefault(r["chain"], []).append(r)
        elif "set" in o or "map" in o:
            s = o.get("set") or o.get("map")
            assert isinstance(s, dict)
            tab(s["family"], s["table"]).sets[s["name"]] = s
    return tables


_IPT_PAYLOAD = {"ip", "ip6", "tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "ah", "esp", "ether"}
_IPT_META = {"l4proto", "iifname", "oifname", "iif", "oif", "mark", "protocol", "nfproto"}
_IPT_STMTS = {"counter", "accept", "drop", "return", "jump", "goto", "xt", "limit", "log", "reject", "mangle",
              "notrack", "comment"}


def iptables_faithful(t: NftTable, save_chains: dict[str, int] | None) -> bool:
    """Can iptables-save show this table without loss? Only if every rule is made of what iptables-nft itself
    writes (payload and meta matches against plain values, counters, xt compat expressions, plain verdicts)
    and the chains and rule counts agree. A table written with nft under an iptables name (sets, maps, ct state
    …) is printed lossily by iptables-save — ``tcp dport @ports accept`` becomes ``-p tcp -j ACCEPT`` — so its
    nftables view must be used."""
    if save_chains is not None:
        counts = {name: len(t.rules.get(name, [])) for name in t.chains}
        if any(save_chains.get(name, -1) != n for name, n in counts.items()):
            return False
    for rules in t.rules.values():
        for r in rules:
            for e in r.get("expr") or []:
                if not isinstance(e, dict) or len(e) != 1:
                    return False
                (key, val), = e.items()
                if key == "match":
                    if not _ipt_match(val):
                        return False
                elif key not in _IPT_STMTS:
                    return False
    return True


def _ipt_match(m: dict[str, Any]) -> bool:
    left, right = m.get("left"), m.get("right")
    if isinstance(right, str) and right.startswith("@"):
        return False
    if isinstance(right, dict) and any(k in right for k in ("set", "concat", "map")):
        return False
    if not isinstance(left, dict) or len(left) != 1:
        return False
    (key, val), = left.items()
    if key == "&":
        return isinstance(val, list) and bool(val) and isinstance(val[0], dict) and (
            "payload" in val[0] or "meta" in val[0])
    if key == "payload":
        return val.get("protocol") in _IPT_PAYLOAD or "base" in val
    if key == "meta":
        return val.get("key") in _IPT_META
    return False


def priority_of(prio: Any) -> int:
    if isinstance(prio, bool):
        return 0
    if isinstance(prio, int):
        return prio
    text = str(prio).replace(" ", "")
    m = re.fullmatch(r"([a-z]+)([+-]\d+)?", text)
    if m and m.group(1) in _PRIO_NAMES:
        return _PRIO_NAMES[m.group(1)] + int(m.group(2) or 0)
    try:
        return int(text)
    except ValueError:
        return 0


def applies(family: str, pkt_family: int) -> bool:
    return family in ("inet", "netdev") or (family == "ip" and pkt_family == 4) or (
        family == "ip6" and pkt_family == 6)


def build_stages(tables: dict[tuple[str, str], NftTable], texts: NftText, pkt_family: int, atoms: Atoms,
                 skip: set[tuple[str, str]]) -> list[Stage]:
    """A stage per inbound base chain of the tables that apply to ``pkt_family`` (minus ``skip``)."""
    stages: list[Stage] = []
    for key, t in sorted(tables.items()):
        if key in skip or not applies(t.family, pkt_family):
            continue
        comp = _Compiler(t, texts, atoms)
        chains = {name: comp.chain(name) for name in t.chains}
        for name, c in t.chains.items():
            hook = c.get("hook")
            if hook not in ("input", "prerouting", "ingress"):
                continue
            if t.family == "netdev" and hook != "ingress":
                continue
            devs = texts.devices.get((t.family, t.name, name))
            if devs is None:
                dev = c.get("dev")
                devs = tuple(dev) if isinstance(dev, list) else ((dev,) if isinstance(dev, str) else None)
            label = f"{t.family} {t.name} {name}"
            stages.append(Stage(
                hook=hook, priority=priority_of(c.get("prio", 0)), label=label, backend="nftables",
                run=_runner(chains, name),
                filters=bool(t.rules.get(name)) or c.get("policy", "accept") != "accept",
                devices=devs if hook == "ingress" else None, chains=chains, base=name,
            ))
    return stages


def _runner(chains: dict[str, Chain], base: str) -> Callable[[Packet, State], list[Any]]:
    return lambda pkt, st: run_chains(chains, base, pkt, st, "nftables")


# ===========================================================================================================
# expressions → steps
# ===========================================================================================================
class _Compiler:
    def __init__(self, table: NftTable, texts: NftText, atoms: Atoms):
        self.t = table
        self.texts = texts
        self.atoms = atoms

    def chain(self, name: str) -> Chain:
        c = self.t.chains[name]
        label = f"{self.t.family} {self.t.name} {name}"
        policy = c.get("policy", "accept") if c.get("hook") else None
        ch = Chain(name, label, policy=policy)
        for r in self.t.rules.get(name, []):
            text = self.texts.rules.get((self.t.family, self.t.name, name, int(r.get("handle", -1))))
            exprs = r.get("expr") or []
            if text is None:
                text = render(exprs)
                if r.get("comment"):
                    text += f' comment "{r["comment"]}"'
            ch.rules.append(Rule(text, tuple(self.steps(exprs))))
        return ch

    # -- statements ---------------------------------------------------------------------------------
    def steps(self, exprs: list[Any]) -> list[Step]:
        out: list[Step] = []
        for e in exprs:
            if not isinstance(e, dict) or len(e) != 1:
                out.append(verdict("unknown", why=f"unreadable expression {json.dumps(e)[:80]}"))
                break
            (key, val), = e.items()
            if key == "match":
                out.append(self.match(val))
            elif key in ("accept", "drop", "continue", "return"):
                out.append(verdict(key))
            elif key == "reject":
                out.append(verdict("reject", reject_with=_reject_with(val)))
            elif key in ("jump", "goto"):
                out.append(verdict(key, target=(val or {}).get("target")))
            elif key == "vmap":
                out.append(self.vmap(val))
            elif key in ("counter", "log", "comment", "flow", "dup", "secmark", "ct helper", "ct timeout",
                         "ct expectation", "map", "meta", "tcp option", "exthdr", "objref", "last"):
                if key == "counter" and isinstance(val, str):
                    continue
                continue  # no effect on the verdict
            elif key in ("limit", "quota", "meter", "connlimit", "ct count", "numgen"):
                out.append(UNKNOWN_MATCH)
            elif key == "set":
                if isinstance(val, dict) and val.get("stmt"):
                    out.append(UNKNOWN_MATCH)  # add @set { … limit … }: acts as a condition
            elif key == "mangle":
                out.append(self.mangle(val))
            elif key == "notrack":
                out.append(effect(lambda st: replace(st, ct="untracked")))
            elif key in ("dnat", "snat", "masquerade", "redirect", "tproxy", "queue", "fwd", "synproxy"):
                out.append(verdict("unknown", why=key))
            elif key == "xt":
                step = _xt(val)
                if step is not None:
                    out.append(step)
            else:
                out.append(verdict("unknown", why=f"statement {key}"))
        return out

    def mangle(self, val: Any) -> Step:
        k = val.get("key", {}) if isinstance(val, dict) else {}
        v = val.get("value") if isinstance(val, dict) else None
        if isinstance(k, dict) and k.get("meta", {}).get("key") == "mark":
            mark = v if isinstance(v, int) and not isinstance(v, bool) else None

            def set_mark(st: State) -> State:
                return replace(st, mark=mark)

            return effect(set_mark)
        return effect(lambda st: st)

    def vmap(self, val: dict[str, Any]) -> Step:
        key = val.get("key")
        data = val.get("data")
        if isinstance(data, str) and data.startswith("@"):
            s = self.t.sets.get(data[1:], {})
            pairs = s.get("elem", []) or []
        elif isinstance(data, dict) and "set" in data:
            pairs = data["set"]
        else:
            pairs = []
        kind = _kind_of(key)
        entries: list[tuple[Any, Step]] = []
        for p in pairs:
            if isinstance(p, list) and len(p) == 2 and isinstance(p[1], dict) and len(p[1]) == 1:
                (vk, vv), = p[1].items()
                if vk in ("accept", "drop", "continue", "return"):
                    st = verdict(vk)
                elif vk == "reject":
                    st = verdict("reject", reject_with=_reject_with(vv))
                elif vk in ("jump", "goto"):
                    st = verdict(vk, target=(vv or {}).get("target"))
                else:
                    st = verdict("unknown", why=f"vmap verdict {vk}")
                entries.append((p[0], st))
        if kind == "saddr":
            for elem, _ in entries:
                self._atom(elem)

        def choose(pkt: Packet, st: State) -> Step | str | None:
            v = self.value(key, pkt, st)
            if v is NA:
                return None
            if v is UNK:
                return "a verdict map on a value that cannot be known here"
            for elem, step in entries:
                hit = _elem_hit(v, elem, kind, self)
                if hit is None:
                    return "a verdict map element that cannot be compared"
                if hit:
                    return step
            return None

        return Step("vmap", vmap=choose)

    # -- matches ------------------------------------------------------------------------------------------
    def match(self, m: dict[str, Any]) -> Step:
        left, right, op = m.get("left"), m.get("right"), m.get("op", "==")
        kind = _kind_of(left)
        if kind == "saddr":
            self._atom(right)
        if kind == "daddr":
            nets = self._nets(right)

            def daddr(pkt: Packet, st: State) -> Tri:
                fam = _payload_family(left)
                if fam and fam != pkt.family:
                    return False
                if nets is None:
                    return None
                r = daddr_tri(pkt, nets)
                if op == "!=":
                    return None if r is None else not r
                return r

            return match(daddr, static=True)

        elements = None
        if kind != "flags" and op in ("==", "!=", "in"):
            elems = self.elements(right)
            elements = _Elements(elems, kind, self) if elems is not None else None

        def test(pkt: Packet, st: State) -> Tri:
            v = self.value(left, pkt, st)
            if v is NA:
                return False
            if v is UNK:
                return None
            return _compare(v, op, right, kind, self, elements)

        return match(test, static=_static(left))

    def value(self, e: Any, pkt: Packet, st: State) -> Any:  # noqa: C901 - one dispatch over expression kinds
        if not isinstance(e, dict) or len(e) != 1:
            return UNK
        (key, val), = e.items()
        if key == "payload":
            proto, fld = val.get("protocol"), val.get("field")
            if proto is None:
                return UNK  # raw payload offsets
            if proto == "ip":
                if pkt.family != 4:
                    return NA
                return {"saddr": pkt.saddr, "protocol": pkt.proto_number, "version": 4}.get(fld, UNK)
            if proto == "ip6":
                if pkt.family != 6:
                    return NA
                return {"saddr": pkt.saddr, "nexthdr": pkt.proto_number, "version": 6}.get(fld, UNK)
            if proto in ("tcp", "udp", "th", "udplite", "sctp", "dccp"):
                if proto != "th" and proto != pkt.proto:
                    return NA
                if fld == "dport":
                    return pkt.dport
                if fld == "flags" and pkt.proto == "tcp":
                    return _TCP_FIRST
                return UNK  # sport, checksum, window …
            if proto in ("icmp", "icmpv6", "ah", "esp", "comp", "igmp", "arp", "ether", "vlan", "gre"):
                return NA if proto not in ("ether", "vlan") else UNK
            return UNK
        if key == "meta":
            k = val.get("key")
            if k == "l4proto":
                return pkt.proto_number
            if k == "nfproto":
                return "ipv4" if pkt.family == 4 else "ipv6"
            if k == "protocol":
                return "ip" if pkt.family == 4 else "ip6"
            if k in ("iifname", "iif"):
                return pkt.iif if pkt.iif is not None else UNK
            if k == "iiftype":
                return "loopback" if pkt.iif == "lo" else UNK
            if k == "pkttype":
                return "host"
            if k == "mark":
                return st.mark if st.mark is not None else UNK
            if k in ("oif", "oifname", "oiftype", "oifkind", "obrname", "oifgroup"):
                return NA  # no output interface on the way in
            return UNK
        if key == "ct":
            k = val.get("key")
            if val.get("dir") not in (None, "original"):
                return UNK
            if k == "state":
                return frozenset({st.ct})
            if st.ct != "new":
                return NA  # no conntrack entry (before conntrack, or notrack): the expression breaks
            if k == "status":
                return frozenset()
            if k == "direction":
                return "original"
            if k in ("l3proto",):
                return "ipv4" if pkt.family == 4 else "ipv6"
            if k in ("protocol", "proto"):
                return pkt.proto_number
            if k in ("saddr", "ip saddr", "ip6 saddr"):
                return pkt.saddr
            if k in ("proto-dst",):
                return pkt.dport
            return UNK
        if key == "fib":
            flags = set(val.get("flags") or [])
            res = val.get("result")
            if res == "type":
                if "daddr" in flags:
                    return "local"
                if "saddr" in flags:
                    return "local" if pkt.host.local(pkt.saddr) else "unicast"
                return UNK
            if res in ("oif", "oifname") and "saddr" in flags:
                if not pkt.host.known:
                    return UNK
                dev = pkt.host.route_dev(pkt.saddr)
                if "iif" in flags:
                    if pkt.iif is None:
                        return UNK
                    ok = dev is not None and dev == pkt.iif
                else:
                    ok = dev is not None
                if res == "oifname":
                    return dev if ok else ""
                return ok  # compared with true ("exists") / false ("missing")
            return UNK
        if key == "concat":
            parts = [self.value(x, pkt, st) for x in (val or [])]
            if any(p is NA for p in parts):
                return NA
            if any(p is UNK for p in parts):
                return UNK
            return tuple(parts)
        if key == "&":
            inner, mask = (val + [None, None])[:2] if isinstance(val, list) else (None, None)
            v = self.value(inner, pkt, st)
            if v is NA or v is UNK:
                return v
            if isinstance(v, frozenset):
                return v & _flags(mask)
            if isinstance(v, int) and isinstance(mask, int):
                return v & mask
            return UNK
        return UNK

    # -- sets and atoms ----------------------------------------------------------------------------------
    def elements(self, right: Any) -> list[Any] | None:
        """The elements a right-hand side stands for (None: a named set that is not in the listing)."""
        if isinstance(right, str) and right.startswith("@"):
            s = self.t.sets.get(right[1:])
            if s is None:
                return None
            return [(_unwrap(x[0]) if isinstance(x, list) else _unwrap(x)) for x in (s.get("elem") or [])]
        if isinstance(right, dict) and "set" in right:
            return [_unwrap(x) for x in right["set"]]
        if isinstance(right, list):
            return right
        return [right]

    def _atom(self, right: Any) -> None:
        for e in self.elements(right) or []:
            if isinstance(e, dict) and "concat" in e:
                for part in e["concat"]:
                    self._atom_one(part)
            else:
                self._atom_one(e)

    def _atom_one(self, e: Any) -> None:
        if isinstance(e, dict) and "prefix" in e:
            n = parse_net(f'{e["prefix"]["addr"]}/{e["prefix"]["len"]}')
            if n is not None:
                self.atoms.add_net(n)
        elif isinstance(e, dict) and "range" in e:
            try:
                lo, hi = (ipaddress.ip_address(x) for x in e["range"])
                self.atoms.add_range(lo, hi)
            except (ValueError, TypeError):
                pass
        elif isinstance(e, str):
            with contextlib.suppress(ValueError):
                self.atoms.add_addr(ipaddress.ip_address(e))

    def _nets(self, right: Any) -> list[Any] | None:
        elems = self.elements(right)
        if elems is None:
            return None
        nets: list[Any] = []
        for e in elems:
            if isinstance(e, dict) and "prefix" in e:
                n = parse_net(f'{e["prefix"]["addr"]}/{e["prefix"]["len"]}')
            elif isinstance(e, dict) and "range" in e:
                try:
                    lo, hi = (ipaddress.ip_address(x) for x in e["range"])
                    nets.extend(ipaddress.summarize_address_range(lo, hi))
                    continue
                except (ValueError, TypeError):
                    return None
            elif isinstance(e, str):
                n = parse_net(e)
            else:
                return None
            if n is None:
                return None
            nets.append(n)
        return nets


_STATIC_FIELDS = {"dport", "protocol", "nexthdr", "flags", "version"}
_STATIC_META = {"l4proto", "nfproto", "protocol", "pkttype", "oif", "oifname", "oiftype", "oifkind", "obrname",
                "oifgroup"}


def _static(e: Any) -> bool:
    """Does the expression depend only on the question (protocol, port, family), not on the source, the
    interface or the path's state?"""
    if not isinstance(e, dict) or len(e) != 1:
        return False
    (key, val), = e.items()
    if key == "payload":
        return val.get("field") in _STATIC_FIELDS and val.get("protocol") is not None
    if key == "meta":
        return val.get("key") in _STATIC_META
    if key == "concat":
        return all(_static(x) for x in (val or []))
    if key == "&":
        return isinstance(val, list) and bool(val) and _static(val[0])
    return False


def _payload_family(left: Any) -> int | None:
    if isinstance(left, dict) and "payload" in left:
        p = left["payload"].get("protocol")
        return 4 if p == "ip" else 6 if p == "ip6" else None
    return None


def _unwrap(x: Any) -> Any:
    if isinstance(x, dict) and "elem" in x and isinstance(x["elem"], dict):
        return x["elem"].get("val")
    return x


def _kind_of(left: Any) -> str:
    """What a left-hand side holds, for comparing the right-hand side's literals."""
    if not isinstance(left, dict) or len(left) != 1:
        return "any"
    (key, val), = left.items()
    if key == "payload":
        f = val.get("field")
        if f == "saddr":
            return "saddr"
        if f == "daddr":
            return "daddr"
        if f in ("dport", "sport"):
            return "port"
        if f in ("protocol", "nexthdr"):
            return "proto"
        if f == "flags":
            return "flags"
        return "any"
    if key == "meta":
        k = val.get("key")
        return {"l4proto": "proto", "iifname": "iface", "iif": "iface", "mark": "int"}.get(k, "str")
    if key == "ct":
        k = val.get("key")
        if k in ("state", "status"):
            return "flags"
        if k in ("protocol", "proto"):
            return "proto"
        if k in ("saddr", "ip saddr", "ip6 saddr"):
            return "saddr"
        if k == "proto-dst":
            return "port"
        return "str"
    if key == "&":
        return _kind_of(val[0]) if isinstance(val, list) and val else "any"
    if key == "concat":
        return "concat:" + ",".join(_kind_of(x) for x in (val or []))
    if key == "fib":
        return "str"
    return "any"


def _flags(v: Any) -> frozenset[str]:
    if v is None:
        return frozenset()
    if isinstance(v, str):
        return frozenset({v})
    if isinstance(v, list):
        out: set[str] = set()
        for x in v:
            out |= _flags(x)
        return frozenset(out)
    if isinstance(v, dict) and "|" in v:
        return _flags(v["|"])
    if isinstance(v, dict) and "set" in v:
        return _flags(v["set"])
    return frozenset()


def _scalar(x: Any, kind: str) -> Any:
    """A right-hand literal in the left side's terms; UNK if it cannot be read."""
    if kind == "port":
        if isinstance(x, bool):
            return UNK
        if isinstance(x, int):
            return x
        if isinstance(x, str):
            return int(x) if x.isdigit() else _SERVICES.get(x, UNK)
        return UNK
    if kind == "proto":
        if isinstance(x, int) and not isinstance(x, bool):
            return x
        if isinstance(x, str):
            return int(x) if x.isdigit() else PROTO_NUMBERS.get(x, UNK)
        return UNK
    if kind == "saddr":
        try:
            return ipaddress.ip_address(x)
        except (ValueError, TypeError):
            return UNK
    return x


def _elem_hit(v: Any, e: Any, kind: str, comp: _Compiler) -> Tri:
    """Does value ``v`` match set element (or literal) ``e``?"""
    if kind.startswith("concat:"):
        kinds = kind[7:].split(",")
        if not (isinstance(e, dict) and "concat" in e) or not isinstance(v, tuple):
            return None
        parts = e["concat"]
        if len(parts) != len(v) or len(kinds) != len(v):
            return None
        results = [_elem_hit(pv, pe, pk, comp) for pv, pe, pk in zip(v, parts, kinds, strict=False)]
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True
    if isinstance(e, dict) and "prefix" in e:
        n = parse_net(f'{e["prefix"]["addr"]}/{e["prefix"]["len"]}')
        if n is None or not isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return None
        return v.version == n.version and v in n
    if isinstance(e, dict) and "range" in e:
        lo, hi = (_scalar(x, kind) for x in e["range"])
        if lo is UNK or hi is UNK:
            return None
        try:
            return bool(lo <= v <= hi)
        except TypeError:
            return None
    if isinstance(e, dict):
        return None
    if isinstance(v, frozenset):
        return bool(v & _flags(e))
    if kind == "iface" and isinstance(e, str) and isinstance(v, str):
        return iface_match(e, v)
    if kind == "str" and isinstance(v, str) and isinstance(e, str):
        aliases = {"unicast": "host"}
        return aliases.get(e, e) == aliases.get(v, v)
    s = _scalar(e, kind)
    if s is UNK:
        return None
    if isinstance(v, bool) or isinstance(s, bool):
        return bool(v) == bool(s) if isinstance(v, bool) and isinstance(s, bool) else None
    try:
        return bool(v == s)
    except TypeError:
        return None


class _Elements:
    """A right-hand side compiled once: numbers and addresses become sorted, merged ranges looked up by bisection
    (a blocklist set of thousands of prefixes costs a few comparisons per packet); anything else (names,
    concatenations) is compared one by one."""

    def __init__(self, elems: list[Any], kind: str, comp: _Compiler):
        self.kind, self.comp = kind, comp
        ranges: dict[Any, list[tuple[int, int]]] = {}
        self.others: list[Any] = []
        for e in elems:
            r = self._range(e)
            if r is None:
                self.others.append(e)
            else:
                key, lo, hi = r
                ranges.setdefault(key, []).append((lo, hi))
        self.ranges: dict[Any, tuple[list[int], list[int]]] = {}
        for key, rs in ranges.items():
            merged: list[list[int]] = []
            for lo, hi in sorted(rs):
                if merged and lo <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], hi)
                else:
                    merged.append([lo, hi])
            self.ranges[key] = ([m[0] for m in merged], [m[1] for m in merged])

    def _range(self, e: Any) -> tuple[Any, int, int] | None:
        if self.kind == "saddr":
            if isinstance(e, dict) and "prefix" in e:
                n = parse_net(f'{e["prefix"]["addr"]}/{e["prefix"]["len"]}')
                return None if n is None else (n.version, int(n.network_address), int(n.broadcast_address))
            if isinstance(e, dict) and "range" in e:
                try:
                    lo, hi = (ipaddress.ip_address(x) for x in e["range"])
                except (ValueError, TypeError):
                    return None
                return (lo.version, int(lo), int(hi)) if lo.version == hi.version else None
            if isinstance(e, str):
                try:
                    ip = ipaddress.ip_address(e)
                except ValueError:
                    return None
                return ip.version, int(ip), int(ip)
            return None
        if self.kind in ("port", "proto", "int"):
            if isinstance(e, dict) and "range" in e:
                lo, hi = (_scalar(x, self.kind) for x in e["range"])
                return None if lo is UNK or hi is UNK else ("n", int(lo), int(hi))
            if isinstance(e, dict):
                return None
            v = _scalar(e, self.kind)
            return None if v is UNK or isinstance(v, bool) or not isinstance(v, int) else ("n", v, v)
        return None

    def hit(self, v: Any) -> Tri:
        if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            key: Any = v.version
            n = int(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            key, n = "n", v
        else:
            key, n = None, 0
        if key is not None and key in self.ranges:
            starts, ends = self.ranges[key]
            i = bisect.bisect_right(starts, n) - 1
            if i >= 0 and n <= ends[i]:
                return True
        unknown = False
        for e in self.others:
            h = _elem_hit(v, e, self.kind, self.comp)
            if h is True:
                return True
            if h is None:
                unknown = True
        return None if unknown else False


def _compare(v: Any, op: str, right: Any, kind: str, comp: _Compiler, elements: _Elements | None = None) -> Tri:
    if kind == "flags" or isinstance(v, frozenset):
        if not isinstance(v, frozenset):
            return None
        want = _flags(comp.elements(right) if isinstance(right, str) and right.startswith("@") else right)
        if op == "in":
            return bool(v & want)
        if op == "==":
            return v == want
        if op == "!=":
            return v != want
        return None
    if op in ("<", ">", "<=", ">="):
        s = _scalar(right, kind)
        if s is UNK:
            return None
        try:
            return bool({"<": v < s, ">": v > s, "<=": v <= s, ">=": v >= s}[op])
        except TypeError:
            return None
    if elements is None:
        elems = comp.elements(right)
        if elems is None:
            return None
        elements = _Elements(elems, kind, comp)
    hit = elements.hit(v)
    if op in ("==", "in"):
        return hit
    if op == "!=":
        return None if hit is None else not hit
    return None


def _reject_with(val: Any) -> str:
    if not isinstance(val, dict):
        return "icmp port-unreachable"
    typ = val.get("type")
    if typ == "tcp reset":
        return "tcp reset"
    expr = val.get("expr")
    return f"{typ} {expr}" if typ and expr else f"{typ or 'icmp'} port-unreachable"


_XT_NOOP_TARGETS = {"LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "TRACE", "AUDIT", "TCPMSS", "DSCP", "TOS",
                    "CHECKSUM", "CLASSIFY", "SET", "CT", "SECMARK", "CONNSECMARK", "TEE", "IDLETIMER", "LED"}


def _xt(val: Any) -> Step | None:
    """An iptables-compat expression left in an nftables table: its details are not in the JSON."""
    typ = val.get("type") if isinstance(val, dict) else None
    name = val.get("name") if isinstance(val, dict) else None
    if typ == "match":
        return None if name == "comment" else UNKNOWN_MATCH
    if typ == "target":
        if name in _XT_NOOP_TARGETS:
            return None
        if name == "REJECT":
            return verdict("reject", reject_with="REJECT")
        return verdict("unknown", why=f"iptables target {name}")
    return UNKNOWN_MATCH


# ===========================================================================================================
# a readable text when nft's own listing is missing
# ===========================================================================================================
def render(exprs: list[Any]) -> str:
    return " ".join(_render_one(e) for e in exprs if isinstance(e, dict)) or "(empty rule)"


def _rv(x: Any) -> str:
    if isinstance(x, dict):
        if "set" in x:
            return "{ " + ", ".join(_rv(e) for e in x["set"]) + " }"
        if "range" in x:
            return "-".join(_rv(e) for e in x["range"])
        if "prefix" in x:
            return f'{x["prefix"]["addr"]}/{x["prefix"]["len"]}'
        if "concat" in x:
            return " . ".join(_rv(e) for e in x["concat"])
        if len(x) == 1:
            (k, v), = x.items()
            if k == "payload":
                return f'{v.get("protocol")} {v.get("field")}'
            if k == "meta":
                return f'meta {v.get("key")}'
            if k == "ct":
                return f'ct {v.get("key")}'
            if k == "fib":
                return f'fib {" . ".join(v.get("flags") or [])} {v.get("result")}'
            if k == "&":
                return f"{_rv(v[0])} & {_rv(v[1])}"
            if k == "elem":
                return _rv(v.get("val"))
    if isinstance(x, list):
        if len(x) == 2 and isinstance(x[1], dict):
            return f"{_rv(x[0])} : {_render_one(x[1])}"
        return ",".join(_rv(e) for e in x)
    if isinstance(x, str):
        return x if x.startswith("@") or re.fullmatch(r"[\w.:/-]+", x) else json.dumps(x)
    return str(x).lower() if isinstance(x, bool) else str(x)


def _render_one(e: dict[str, Any]) -> str:
    k, v = next(iter(e.items()))
    if not isinstance(v, dict):
        v = {} if v is None or k not in ("reject",) else v
    if k == "match":
        op = v.get("op", "==")
        return f'{_rv(v.get("left"))} {"" if op in ("==", "in") else op + " "}{_rv(v.get("right"))}'.replace("  ", " ")
    if k in ("accept", "drop", "return", "continue", "notrack"):
        return k
    if k in ("jump", "goto"):
        return f'{k} {(v or {}).get("target")}'
    if k == "reject":
        return "reject" + (f" with {_reject_with(v)}" if v else "")
    if k == "vmap":
        return f'{_rv(v.get("key"))} vmap {_rv(v.get("data"))}'
    if k == "counter":
        return "counter"
    if k == "limit" and isinstance(v, dict):
        return f'limit rate {v.get("rate")}/{v.get("per")}'
    return k
