"""One question — is a NEW inbound connection to this port allowed? — answered over every case that matters.

With a ``source``, the packet is concrete: it arrives on the interface the host routes that source through
(``lo`` for the host's own addresses; every inbound interface when no route leads back — the answer then says
if the interface matters). Without one, the address space is cut wherever a rule or a route cuts it
(engine.Atoms) and one packet per piece is evaluated, so "any source" is answered exactly: allowed from
everywhere, from nowhere, or from the listed networks only (``depends-on-source``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from envprobe.probes.fwrules.engine import (
    Addr,
    Atoms,
    Ending,
    HostInfo,
    Interval,
    Judgement,
    Packet,
    Stage,
    judge,
    merge_intervals,
    pipeline,
    prune,
    reachable_live_rules,
    source_intervals,
)

_PRIMARY = ("windows", "firewalld", "ufw", "iptables", "nftables")
#: source ranges × rules that may match: above this, "any source" is not evaluated case by case (a few seconds)
WORK_LIMIT = 3_000_000


@dataclass(frozen=True)
class Query:
    port: int
    proto: str  # tcp | udp
    family: int  # 4 | 6
    source: Addr | None = None
    interface: str | None = None
    program: str | None = None


@dataclass
class Analysis:
    allowed: bool | None
    action: str
    decided_by: str
    backend: str
    active: bool
    present: list[str]
    matched_rule: str | None = None
    chain: str | None = None
    policy: str | None = None
    zone: str | None = None
    reject_with: str | None = None
    interface: str | None = None
    allowed_from: list[str] | None = None
    denied_from: list[str] | None = None
    rules_evaluated: int = 0
    unevaluable_rules: list[str] = field(default_factory=list)
    unknown_reason: str | None = None
    #: for depends-on-*: the ending of an allowed case and of a refused one (what the note shows)
    allowed_example: Ending | None = None
    refused_example: Ending | None = None
    limited: bool = False


def evaluate(stages: list[Stage], host: HostInfo, q: Query, atoms: Atoms, present: list[str],
             active: bool) -> Analysis:
    cases: list[tuple[str | None, Interval]] = []
    if q.source is not None:
        src = q.source
        if q.interface:
            ifaces: list[str | None] = [q.interface]
        elif not host.known:
            ifaces = [None]
        else:
            dev = host.route_dev(src)
            ifaces = [dev] if dev else list(host.inbound_interfaces(q.family)) or [None]
        cases = [(i, Interval(int(src), int(src), q.family)) for i in ifaces]
    else:
        for r in host.routes:
            if r.network.version == q.family:
                atoms.add_net(r.network)
        intervals = source_intervals(atoms, q.family, host)
        if intervals is None:
            return Analysis(None, "unknown", "depends-on-source", _primary(present), active, present,
                            unknown_reason="the rules test too many source ranges to evaluate them all: "
                                           "give the source address")
        for iv in intervals:
            if q.interface:
                iifs: list[str | None] = [q.interface]
            elif not host.known:
                iifs = [None]
            else:
                dev = host.route_dev(iv.sample)
                iifs = [dev] if dev and dev != "lo" else list(host.inbound_interfaces(q.family)) or [None]
            cases += [(i, iv) for i in iifs]
    # rules another port or protocol rules out are skipped for every case; then a bound on the work
    probe = Packet(q.family, q.proto, q.port, ipaddress.ip_address("0.0.0.0" if q.family == 4 else "::"), None, host)
    pruned: set[int] = set()
    live = 0
    for stage in stages:
        if stage.chains is None:
            live += 20  # a model (firewalld, ufw, Windows): a handful of rules per case
            continue
        if id(stage.chains) not in pruned:
            pruned.add(id(stage.chains))
            prune(stage.chains, probe)
        live += reachable_live_rules(stage.chains, stage.base) if stage.base else 0
    if q.source is None and len(cases) * max(live, 1) > WORK_LIMIT:
        return Analysis(None, "unknown", "depends-on-source", _primary(present), active, present,
                        unknown_reason=f"the rules test {len(cases)} source ranges, too many to evaluate each one: "
                                       "give the source address")
    results: list[tuple[str | None, Interval, Judgement]] = []
    for iif, iv in cases:
        pkt = Packet(q.family, q.proto, q.port, q.source or iv.sample, iif, host, q.program)
        results.append((iif, iv, judge(pipeline(stages, pkt))))
    return _summarize(results, q, host, present, active)


def _primary(present: list[str]) -> str:
    return next((b for b in _PRIMARY if b in present), "none")


def _summarize(results: list[tuple[str | None, Interval, Judgement]], q: Query, host: HostInfo,
               present: list[str], active: bool) -> Analysis:
    uneval: list[str] = []
    for _, _, j in results:
        for t in j.unevaluable:
            if t not in uneval:
                uneval.append(t)
    ifaces = {i for i, _, _ in results}
    iface = next(iter(ifaces)) if len(ifaces) == 1 else None
    unknown = [r for r in results if r[2].allowed is None]
    outcomes = {(j.allowed, j.action) for _, _, j in results}
    first = results[0][2]

    def base(j: Judgement, decided_by: str, allowed: bool | None, action: str) -> Analysis:
        e = j.ending
        backend = e.backend if e.backend not in ("none", "") else _primary(present)
        if not active:
            backend = "none"
            if decided_by == "policy" and allowed:
                decided_by = "no-firewall"
        return Analysis(
            allowed, action, decided_by, backend, active, present, matched_rule=e.rule,
            chain=(e.chain or e.base or None), policy=e.policy, zone=e.zone,
            reject_with=e.reject_with if action == "reject" else None, interface=iface,
            rules_evaluated=e.state.rules, unevaluable_rules=uneval[:20],
            limited=bool(e.why and "LIMIT" in e.why))

    if not unknown and len(outcomes) == 1:
        allowed, action = first.allowed, first.action
        a = base(first, "rule" if first.ending.rule else "policy", allowed, action)
        if a.decided_by == "policy" and first.ending.backend == "none":
            a.decided_by, a.backend, a.chain = "no-firewall", "none", None
        if q.source is None:
            everything = merge_intervals([iv for _, iv, _ in results], q.family, host)
            a.allowed_from, a.denied_from = (everything, []) if allowed else ([], everything)
        return a
    if unknown:
        _, _, j = unknown[0]
        kind = "depends-on-program" if j.unknown_kind == "program" else "unevaluable-rule"
        a = base(j, kind, None, "unknown")
        a.matched_rule = j.unknown_rule
        a.unknown_reason = (j.ending.why or None) if j.ending.verdict == "unknown" else None
        if j.ending.verdict == "unknown" and j.ending.rule == j.unknown_rule:
            a.chain = j.ending.chain
        if q.source is None:
            a.allowed_from, a.denied_from = _sides(results, q, host)
        return a
    # every case is known, and they differ
    by_iif: dict[str | None, set[tuple[bool | None, str]]] = {}
    for i, _, j in results:
        by_iif.setdefault(i, set()).add((j.allowed, j.action))
    kind = "depends-on-source" if any(len(v) > 1 for v in by_iif.values()) else "depends-on-interface"
    allowed_case = next((j for _, _, j in results if j.allowed), None)
    refused_case = next((j for _, _, j in results if not j.allowed), None)
    rep = allowed_case or first
    a = base(rep, kind, None, "unknown")
    a.allowed_example = allowed_case.ending if allowed_case else None
    a.refused_example = refused_case.ending if refused_case else None
    if q.source is None:
        a.allowed_from, a.denied_from = _sides(results, q, host)
    return a


def _sides(results: list[tuple[str | None, Interval, Judgement]], q: Query, host: HostInfo) -> tuple[
        list[str], list[str]]:
    """The networks allowed, and those refused (unknown ones in neither)."""
    return (_networks(results, q, host, True), _networks(results, q, host, False))


def _networks(results: list[tuple[str | None, Interval, Judgement]], q: Query, host: HostInfo,
              allowed: bool) -> list[str]:
    groups: dict[str | None, list[Interval]] = {}
    for i, iv, j in results:
        groups.setdefault(i, [])
        if j.allowed is allowed:
            groups[i].append(iv)
    merged = {i: merge_intervals(ivs, q.family, host) for i, ivs in groups.items()}
    values = list(merged.values())
    if all(v == values[0] for v in values):
        return values[0][:50]
    out: list[str] = []
    for i, nets in merged.items():
        out += [f"{n} on {i}" for n in nets]
    return out[:50]
