"""The rule machine shared by every firewall backend: a packet, chains of rules, and an evaluator that follows
the kernel's order for one NEW inbound connection to this host.

A rule is a list of *steps*, as nftables writes them: matches (true, false or *unknown*), effects (set a mark,
``notrack``) and one verdict (accept, drop, reject, jump, goto, return, or *unknown* — a NAT or queue statement
whose effect cannot be known here). iptables rules, firewalld zones, ufw rules and Windows rules are turned into
the same steps by their modules.

**Unknown matches are never guessed.** When a match cannot be evaluated (``limit rate``, ``meta mark``, a
source port, an ipset), the evaluator follows *both* branches — the rule matched, the rule did not — and keeps
the assumption on each path. If every path ends with the same verdict, the unevaluable rule did not matter (a
``limit rate … log`` rule, say) and the answer is definite; if the paths disagree, the answer is unknown and
the first rule where they parted is reported.

**Base chains in kernel order.** A :class:`Stage` is one base chain (or a whole backend such as firewalld's zone
model) on a hook, with a priority. Stages run hook by hook (``ingress``, ``prerouting``, ``input``) and by
priority within a hook; ``accept`` ends only the stage (the packet goes on to the next one), ``drop`` and
``reject`` are final. Before conntrack (prerouting, priority < -200) ``ct state`` is ``invalid``; afterwards a
new connection's first packet is ``new`` (``untracked`` after a ``notrack``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

Addr = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Tri = bool | None

#: how many evaluation paths (forks at unevaluable rules) one packet may take before we give up
MAX_PATHS = 256
#: how deep jump/goto may nest (the kernel allows 16 in iptables-nft, more in nftables)
MAX_DEPTH = 64

PROTO_NUMBERS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58,
                 "ipv6-icmp": 58, "sctp": 132, "dccp": 33, "udplite": 136}
HOOK_ORDER = {"ingress": 0, "prerouting": 1, "input": 2}


# ===========================================================================================================
# the host and the packet
# ===========================================================================================================
@dataclass(frozen=True)
class Route:
    network: Net
    dev: str
    metric: int = 0


@dataclass(frozen=True)
class HostInfo:
    """What the packet meets on the host: its interfaces and addresses, and its routes (main table)."""

    #: interface name → its addresses (with prefix length)
    addresses: Mapping[str, tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...]] = field(
        default_factory=dict)
    routes: tuple[Route, ...] = ()
    #: False when the host's interfaces could not be read (``ip`` missing): interface matches become unknown
    known: bool = True

    def local(self, ip: Addr) -> bool:
        if ip.is_loopback:
            return True
        return any(a.ip == ip for addrs in self.addresses.values() for a in addrs)

    def local_addresses(self, family: int) -> list[Addr]:
        return [a.ip for addrs in self.addresses.values() for a in addrs if a.version == family]

    def route_dev(self, ip: Addr) -> str | None:
        """The interface the host would send to ``ip`` through (longest prefix, then lowest metric): where a
        packet from ``ip`` arrives on a host with symmetric routing (and where strict rp_filter wants it)."""
        if self.local(ip):
            return "lo"
        best: Route | None = None
        for r in self.routes:
            if r.network.version != ip.version or ip not in r.network:
                continue
            if best is None or (r.network.prefixlen, -r.metric) > (best.network.prefixlen, -best.metric):
                best = r
        return best.dev if best else None

    def inbound_interfaces(self, family: int) -> list[str]:
        """Interfaces a packet from another host can arrive on: every one with an address, except loopback."""
        names = [n for n, addrs in self.addresses.items() if n != "lo" and any(a.version == family for a in addrs)]
        return names or [n for n in self.addresses if n != "lo"]


@dataclass(frozen=True)
class Packet:
    """The first packet of a NEW inbound connection to this host."""

    family: int  # 4 or 6
    proto: str  # tcp | udp
    dport: int
    saddr: Addr
    iif: str | None  # None: not known (interface matches are then unknown)
    host: HostInfo
    #: Windows: the program or service listening on the port, when the check names it
    program: str | None = None

    @property
    def proto_number(self) -> int:
        return PROTO_NUMBERS[self.proto]


# ===========================================================================================================
# rules
# ===========================================================================================================
@dataclass(frozen=True)
class State:
    """What the path has learned or assumed so far."""

    ct: str = "new"  # new | invalid | untracked
    mark: int | None = None  # None: not known (tc, other tools may set it)
    #: (kind, rule text, assumed truth): unevaluable matches taken one way on this path; kind is "rule" or
    #: "program" (a Windows rule bound to a program or service)
    assumed: tuple[tuple[str, str, bool], ...] = ()
    rules: int = 0  # rules looked at
    flags: frozenset[str] = frozenset()

    def assume(self, kind: str, text: str, truth: bool) -> State:
        return replace(self, assumed=(*self.assumed, (kind, text, truth)))


MatchFn = Callable[[Packet, State], Tri]


@dataclass(frozen=True)
class Step:
    """One part of a rule. ``kind``: match | effect | verdict | vmap."""

    kind: str
    match: MatchFn | None = None
    effect: Callable[[State], State] | None = None
    #: for verdicts: accept | drop | reject | jump | goto | return | continue | unknown
    verdict: str = ""
    target: str | None = None
    reject_with: str | None = None
    #: why a verdict is unknown (e.g. "dnat"), or what an unknown match is ("limit rate")
    why: str = ""
    #: for vmaps: key → the verdict step to apply, None when no element matches, or "unknown"
    vmap: Callable[[Packet, State], Step | str | None] | None = None
    #: the kind of assumption an unknown match makes ("rule", or "program" for Windows program rules)
    assume_kind: str = "rule"
    #: the match looks only at what is fixed for one question (family, protocol, port, the host's addresses),
    #: not at the source, the interface or the path's state: it can be decided once per question (prune)
    static: bool = False


def match(fn: MatchFn, assume_kind: str = "rule", static: bool = False) -> Step:
    return Step("match", match=fn, assume_kind=assume_kind, static=static)


def effect(fn: Callable[[State], State]) -> Step:
    return Step("effect", effect=fn)


def verdict(kind: str, target: str | None = None, reject_with: str | None = None, why: str = "") -> Step:
    return Step("verdict", verdict=kind, target=target, reject_with=reject_with, why=why)


UNKNOWN_MATCH = Step("match", match=lambda p, s: None)


@dataclass(frozen=True)
class Rule:
    text: str
    steps: tuple[Step, ...]

    @property
    def decides(self) -> bool:
        """Does the rule do anything (a verdict, an effect)? If not, it need not even be evaluated."""
        return any(s.kind != "match" for s in self.steps)


@dataclass
class Chain:
    name: str
    #: how reports name it: "inet filter input", "filter INPUT", "zone public"
    label: str
    rules: list[Rule] = field(default_factory=list)
    #: for base chains: accept | drop (what happens at the end); None for regular chains
    policy: str | None = None
    #: a chain evaluated by another model (firewalld's zones, ufw's rules inside iptables)
    delegate: Callable[[Packet, State], list[Ending]] | None = None
    #: after prune(): for each rule index, the index of the next rule that can match this question
    next_live: list[int] | None = None

    def live(self) -> list[Rule]:
        if self.next_live is None:
            return list(self.rules)
        return [r for i, r in enumerate(self.rules) if self.next_live[i] == i]


def reachable_live_rules(chains: Mapping[str, Chain], base: str) -> int:
    """Rules that can still match, in the chains the base chain can reach through them (for the work bound)."""
    seen, todo, count = {base}, [base], 0
    while todo:
        chain = chains.get(todo.pop())
        if chain is None:
            continue
        for rule in chain.live():
            count += 1
            targets = [s.target for s in rule.steps if s.kind == "verdict" and s.verdict in ("jump", "goto")]
            if any(s.kind == "vmap" for s in rule.steps):
                targets = list(chains)  # a verdict map may jump anywhere
            for t in targets:
                if t and t not in seen:
                    seen.add(t)
                    todo.append(t)
    return count


def prune(chains: Mapping[str, Chain], pkt: Packet) -> None:
    """Mark the rules a static match rules out for this question (another port, another protocol), so that
    evaluating thousands of sources does not walk them again and again. They still count as looked at."""
    st = State()
    for chain in chains.values():
        live = [not any(s.kind == "match" and s.static and s.match is not None and s.match(pkt, st) is False
                        for s in r.steps) for r in chain.rules]
        nxt = len(chain.rules)
        chain.next_live = [0] * len(chain.rules)
        for i in range(len(chain.rules) - 1, -1, -1):
            if live[i]:
                nxt = i
            chain.next_live[i] = nxt


@dataclass(frozen=True)
class Ending:
    """Where one evaluation path ended."""

    verdict: str  # accept | drop | reject | unknown | continue (a delegate that did not decide)
    rule: str | None  # the deciding rule's text; None: the policy / default decided
    chain: str  # label of the chain holding the deciding rule (or the base chain, for its policy)
    base: str  # label of the base chain (stage)
    policy: str | None  # the base chain's policy, zone target, ufw / Windows default
    backend: str
    state: State
    reject_with: str | None = None
    why: str = ""
    zone: str | None = None
    #: a decision (a rule, a drop/reject policy, a zone target, a default of a model), as opposed to an accept
    #: policy the packet merely fell through
    final: bool = False


def run_chains(chains: Mapping[str, Chain], base: str, pkt: Packet, state: State, backend: str,
               policy_label: str | None = None) -> list[Ending]:
    """Evaluate base chain ``base`` (jumping into regular chains) for ``pkt``; every path's ending.

    accept / drop / reject end the base chain; at its end the policy applies. ``continue`` is returned only
    when the base chain has no policy (a delegate's inner model that fell through)."""
    root = chains[base]
    pol = root.policy
    plabel = policy_label if policy_label is not None else pol
    out: list[Ending] = []

    def end(verdict_: str, st: State, rule: Rule | None, chain: Chain, step: Step | None = None) -> None:
        out.append(Ending(verdict_, rule.text if rule else None, chain.label, root.label, plabel, backend, st,
                          reject_with=step.reject_with if step else None, why=step.why if step else "",
                          final=rule is not None or verdict_ != "accept"))

    # a branch: call stack of (chain name, rule index), step index in the current rule, state
    todo: list[tuple[tuple[tuple[str, int], ...], int, State]] = [(((base, 0),), 0, state)]
    while todo:
        if len(out) + len(todo) > MAX_PATHS:
            out.append(Ending("unknown", None, root.label, root.label, plabel, backend, todo[0][2],
                              why="too many unevaluable rules to follow every case"))
            return out
        stack, step_i, st = todo.pop()
        while True:
            cname, ri = stack[-1]
            chain = chains[cname]
            if chain.delegate is not None and ri == 0 and step_i == 0:
                # a delegated chain: its model decides, or falls through back to the caller
                results = chain.delegate(pkt, st)
                cont = [e for e in results if e.verdict == "continue"]
                out.extend(e for e in results if e.verdict != "continue")
                if not cont:
                    break
                # follow the first fall-through here and queue the others
                for e in cont[1:]:
                    todo.append((_pop(stack), 0, e.state))
                st = cont[0].state
                if len(stack) == 1:
                    end(pol or "continue", st, None, root)
                    break
                stack = _pop(stack)
                step_i = 0
                continue
            if chain.next_live is not None and ri < len(chain.rules) and step_i == 0:
                live = chain.next_live[ri]
                if live != ri:  # rules that cannot match this question: looked at, skipped
                    st = replace(st, rules=st.rules + (live - ri))
                    stack = (*stack[:-1], (cname, live))
                    ri = live
            if ri >= len(chain.rules):  # end of chain: implicit return
                if len(stack) == 1:
                    end(pol or "continue", st, None, root)
                    break
                stack = _pop(stack)
                step_i = 0
                continue
            rule = chain.rules[ri]
            if step_i == 0:
                st = replace(st, rules=st.rules + 1)
                if not rule.decides:  # counters, LOG …: whether it matches changes nothing
                    stack = _next(stack)
                    continue
            if step_i >= len(rule.steps):  # matched, no verdict: next rule
                stack = _next(stack)
                step_i = 0
                continue
            s = rule.steps[step_i]
            if s.kind == "match":
                # consecutive matches are one conjunction without side effects: a definite false among them
                # settles the rule, whatever the unknown ones would say
                j = step_i
                tris: list[Tri] = []
                kinds: list[str] = []
                while j < len(rule.steps) and rule.steps[j].kind == "match":
                    m = rule.steps[j].match
                    assert m is not None
                    tris.append(m(pkt, st))
                    kinds.append(rule.steps[j].assume_kind)
                    j += 1
                if any(r is False for r in tris):
                    stack, step_i = _next(stack), 0
                    continue
                if any(r is None for r in tris):  # unevaluable: follow both ways
                    doubt = [k for k, r in zip(kinds, tris, strict=True) if r is None]
                    kind = "rule" if "rule" in doubt else doubt[0]
                    todo.append((_next(stack), 0, st.assume(kind, rule.text, False)))
                    st = st.assume(kind, rule.text, True)
                step_i = j
                continue
            if s.kind == "effect":
                assert s.effect is not None
                st = s.effect(st)
                step_i += 1
                continue
            if s.kind == "vmap":
                assert s.vmap is not None
                chosen = s.vmap(pkt, st)
                if chosen is None:
                    stack, step_i = _next(stack), 0
                    continue
                if isinstance(chosen, str):
                    end("unknown", st, rule, chain, Step("verdict", verdict="unknown", why=chosen))
                    break
                s = chosen
            v = s.verdict
            if v in ("accept", "drop", "reject", "unknown"):
                end(v, st, rule, chain, s)
                break
            if v == "continue":
                stack, step_i = _next(stack), 0
                continue
            if v == "return":
                if len(stack) == 1:
                    end(pol or "continue", st, None, root)
                    break
                stack, step_i = _pop(stack), 0
                continue
            if v in ("jump", "goto"):
                target = s.target or ""
                if target not in chains or len(stack) >= MAX_DEPTH:
                    end("unknown", st, rule, chain, Step("verdict", verdict="unknown",
                                                         why=f"{v} to a chain that cannot be followed: {target}"))
                    break
                stack = (stack[:-1] + ((cname, ri),) + ((target, 0),)) if v == "jump" else (
                    stack[:-1] + ((target, 0),))
                # goto: returning from the target goes back to our caller (we replaced our own frame)
                step_i = 0
                continue
            end("unknown", st, rule, chain, Step("verdict", verdict="unknown", why=f"unsupported verdict {v}"))
            break
    return out


def _next(stack: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    name, ri = stack[-1]
    return (*stack[:-1], (name, ri + 1))


def _pop(stack: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """Return from the current chain to the rule after the jump in the caller."""
    return _next(stack[:-1])


# ===========================================================================================================
# stages and the pipeline
# ===========================================================================================================
@dataclass
class Stage:
    """One base chain (or a whole model) on the inbound path."""

    hook: str  # ingress | prerouting | input
    priority: int
    label: str
    backend: str
    run: Callable[[Packet, State], list[Ending]]
    #: has rules or a non-accept policy: it filters (for ``active``)
    filters: bool = True
    #: ingress chains bound to devices: the stage applies only to packets arriving on them (None: all)
    devices: tuple[str, ...] | None = None
    #: the chains it runs and its base chain, for prune()
    chains: Mapping[str, Chain] | None = None
    base: str | None = None

    @property
    def order(self) -> tuple[int, int]:
        return (HOOK_ORDER.get(self.hook, 9), self.priority)


def pipeline(stages: Sequence[Stage], pkt: Packet) -> list[Ending]:
    """Every stage in kernel order; the final ending of each path."""
    flows: list[tuple[State, Ending | None]] = [(State(), None)]
    finals: list[Ending] = []
    for stage in sorted(stages, key=lambda s: s.order):
        if stage.devices is not None and pkt.iif is not None and pkt.iif not in stage.devices:
            continue
        nxt: list[tuple[State, Ending | None]] = []
        for st, last in flows:
            ct = st.ct
            if ct != "untracked":
                ct = "invalid" if stage.hook in ("ingress", "prerouting") and stage.priority < -200 else "new"
            for e in stage.run(pkt, replace(st, ct=ct)):
                if e.verdict in ("accept", "continue"):
                    # the representative accept: the last decision, else the first fall-through
                    keep = e if (last is None or e.final) else last
                    nxt.append((e.state, keep))
                else:
                    finals.append(e)
            if len(nxt) + len(finals) > MAX_PATHS:
                finals.append(Ending("unknown", None, stage.label, stage.label, None, stage.backend, st,
                                     why="too many unevaluable rules to follow every case"))
                return finals
        flows = nxt
    for st, last in flows:
        if last is None:
            finals.append(Ending("accept", None, "", "", None, "none", st))
        else:
            finals.append(replace(last, verdict="accept", state=st))
    return finals


# ===========================================================================================================
# one packet's verdict
# ===========================================================================================================
@dataclass(frozen=True)
class Judgement:
    allowed: bool | None
    action: str  # accept | drop | reject | unknown
    ending: Ending  # the representative path
    #: when unknown: the rule the paths parted at (or the unknown statement), and what kind it is
    unknown_rule: str | None = None
    unknown_kind: str | None = None  # rule | program
    unevaluable: tuple[str, ...] = ()


def judge(endings: Sequence[Ending]) -> Judgement:
    verdicts = [e.verdict for e in endings]
    seen: list[str] = []
    for e in endings:
        for _kind, text, _truth in e.state.assumed:
            if text not in seen:
                seen.append(text)
    for e in endings:
        if e.verdict == "unknown" and e.rule and e.rule not in seen:
            seen.append(e.rule)
    # the representative: a path that assumed no unevaluable rule held (it needs nothing unknown), else the first
    rep = next((e for e in endings if not any(truth for _k, _t, truth in e.state.assumed)), endings[0])
    if all(v == "accept" for v in verdicts):
        return Judgement(True, "accept", rep, unevaluable=tuple(seen))
    if "accept" not in verdicts and "unknown" not in verdicts:
        acts = set(verdicts)
        return Judgement(False, acts.pop() if len(acts) == 1 else "unknown", rep, unevaluable=tuple(seen))
    # the paths disagree, or one met something unknowable: find where
    unknown = next((e for e in endings if e.verdict == "unknown"), None)
    truths: dict[str, set[bool]] = {}
    kinds: dict[str, str] = {}
    order: list[str] = []
    for e in endings:
        for kind, text, truth in e.state.assumed:
            truths.setdefault(text, set()).add(truth)
            kinds.setdefault(text, kind)
            if text not in order:
                order.append(text)
    def outcomes(text: str, truth: bool) -> set[str]:
        return {e.verdict for e in endings if (kinds.get(text), text, truth) in e.state.assumed}

    both = [t for t in order if len(truths[t]) == 2]
    # the rule that matters: the first whose two ways lead to different verdicts
    parted = next((t for t in both if outcomes(t, True) != outcomes(t, False)), both[0] if both else None)
    if unknown is not None and (parted is None or not unknown.state.assumed):
        return Judgement(None, "unknown", unknown, unknown_rule=unknown.rule or unknown.why, unknown_kind="rule",
                         unevaluable=tuple(seen))
    if parted is None:  # cannot happen with consistent paths; stay honest
        return Judgement(None, "unknown", rep, unknown_rule=rep.rule, unknown_kind="rule", unevaluable=tuple(seen))
    return Judgement(None, "unknown", rep, unknown_rule=parted, unknown_kind=kinds[parted],
                     unevaluable=tuple(seen))


# ===========================================================================================================
# "any source": the address space cut where the rules cut it
# ===========================================================================================================
class Atoms:
    """Collects every source address range the rules test, so that "any source" can be evaluated exactly:
    between two consecutive boundaries every rule sees the same thing."""

    def __init__(self) -> None:
        self.ranges: dict[int, set[tuple[int, int]]] = {4: set(), 6: set()}

    def add_net(self, net: Net) -> None:
        self.ranges[net.version].add((int(net.network_address), int(net.broadcast_address)))

    def add_range(self, lo: Addr, hi: Addr) -> None:
        if lo.version == hi.version and int(lo) <= int(hi):
            self.ranges[lo.version].add((int(lo), int(hi)))

    def add_addr(self, ip: Addr) -> None:
        self.ranges[ip.version].add((int(ip), int(ip)))


#: sources that never open a connection from another host: "this network", loopback, multicast, broadcast
_EXCLUDED = {
    4: [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3")],
    6: [ipaddress.ip_network(n) for n in ("::/127", "::ffff:0:0/96", "ff00::/8")],
}


@dataclass(frozen=True)
class Interval:
    lo: int
    hi: int
    family: int

    @property
    def sample(self) -> Addr:
        return ipaddress.ip_address(self.lo) if self.family == 4 else ipaddress.IPv6Address(self.lo)

    def cidrs(self) -> list[Net]:
        mk = ipaddress.IPv4Address if self.family == 4 else ipaddress.IPv6Address
        return list(ipaddress.summarize_address_range(mk(self.lo), mk(self.hi)))


def source_intervals(atoms: Atoms, family: int, host: HostInfo, limit: int = 20000) -> list[Interval] | None:
    """The address space of ``family`` cut at every boundary the rules use, minus sources that cannot come
    from another host (loopback, multicast, this host's own addresses). None when there are too many pieces."""
    top = (1 << (32 if family == 4 else 128)) - 1
    cuts = {0, top + 1}
    excluded = [(int(n.network_address), int(n.broadcast_address)) for n in _EXCLUDED[family]]
    excluded += [(int(a), int(a)) for a in host.local_addresses(family)]
    for lo, hi in list(atoms.ranges[family]) + excluded:
        cuts.add(lo)
        cuts.add(hi + 1)
    if len(cuts) > limit:
        return None
    points = sorted(cuts)
    out: list[Interval] = []
    for lo, nxt in zip(points, points[1:], strict=False):
        hi = nxt - 1
        if any(elo <= lo and hi <= ehi for elo, ehi in excluded):
            continue
        out.append(Interval(lo, hi, family))
    return out


def merge_intervals(parts: Iterable[Interval], family: int, host: HostInfo) -> list[str]:
    """CIDRs covering ``parts``, joined across excluded gaps (so "everything" reads 0.0.0.0/0)."""
    chosen = sorted(parts, key=lambda i: i.lo)
    if not chosen:
        return []
    excluded = [(int(n.network_address), int(n.broadcast_address)) for n in _EXCLUDED[family]]
    excluded += [(int(a), int(a)) for a in host.local_addresses(family)]

    def gap_excluded(a: int, b: int) -> bool:  # every address in [a, b] is excluded
        pos = a
        for lo, hi in sorted(excluded):
            if lo <= pos <= hi:
                pos = hi + 1
            if pos > b:
                return True
        return pos > b

    merged: list[list[int]] = []
    top = (1 << (32 if family == 4 else 128)) - 1
    for i in chosen:
        if merged and (i.lo == merged[-1][1] + 1 or gap_excluded(merged[-1][1] + 1, i.lo - 1)):
            merged[-1][1] = i.hi
        else:
            merged.append([i.lo, i.hi])
    # stretch to the edges across excluded ranges when that says it shorter (everything reads 0.0.0.0/0)
    def count(lo: int, hi: int) -> int:
        return len(Interval(lo, hi, family).cidrs())

    if merged[0][0] > 0 and gap_excluded(0, merged[0][0] - 1) and count(0, merged[0][1]) < count(*merged[0]):
        merged[0][0] = 0
    last = merged[-1]
    if last[1] < top and gap_excluded(last[1] + 1, top) and count(last[0], top) < count(*last):
        last[1] = top
    out: list[str] = []
    for lo, hi in merged:
        out.extend(str(n) for n in Interval(lo, hi, family).cidrs())
    return out


# ===========================================================================================================
# small helpers the parsers share
# ===========================================================================================================
def iface_match(pattern: str, name: str) -> bool:
    """iptables ``eth+`` / nftables ``eth*`` wildcards (a trailing one), else exact."""
    if pattern.endswith(("+", "*")) and not pattern.endswith("\\*"):
        return name.startswith(pattern[:-1])
    return name == pattern.replace("\\*", "*")


def iface_tri(pkt: Packet, patterns: Sequence[str]) -> Tri:
    if pkt.iif is None:
        return None
    return any(iface_match(p, pkt.iif) for p in patterns)


def daddr_tri(pkt: Packet, nets: Sequence[Net], assume_multicast_false: bool = True) -> Tri:
    """Does the packet's destination (one of this host's unicast addresses) fall in ``nets``? False when no
    address of the host is in them, True when all are, else unknown (which address was used is not known)."""
    mine = [a for a in pkt.host.local_addresses(pkt.family) if pkt.iif == "lo" or not a.is_loopback]
    if not mine:
        if assume_multicast_false and all(n.is_multicast or _is_broadcastish(n) for n in nets if
                                          n.version == pkt.family):
            return False
        return None
    hits = [any(ip in n for n in nets if n.version == ip.version) for ip in mine]
    if not any(hits):
        return False
    if all(hits):
        return True
    return None


def _is_broadcastish(n: Net) -> bool:
    return n.version == 4 and n.prefixlen == 32 and int(n.network_address) & 0xFF == 0xFF


def parse_net(text: str) -> Net | None:
    """``10.0.0.0/8``, ``10.0.0.1``, ``10.0.0.0/255.0.0.0`` → network (host bits cleared); None if not one."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None

