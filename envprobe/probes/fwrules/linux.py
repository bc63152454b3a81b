"""The Linux snapshot: one root shell script that prints every firewall layer in delimited sections, its parser,
and the stages built from it.

**iptables-nft and nftables — no double evaluation.** On Debian ≥ 10, Ubuntu ≥ 20.10, RHEL ≥ 8 and their
relatives ``iptables`` is iptables-nft: its rules live in nftables tables (``ip filter``, ``ip6 raw`` …) and
appear in ``nft list ruleset`` too — but there the iptables matches and targets they cannot translate show as
opaque ``xt`` expressions (``conntrack``, ``multiport``, ``REJECT`` …). So such tables are evaluated once, from
``iptables-save``, where every match is spelled out, and skipped in the nftables view. A table is taken as
iptables-nft's when ``iptables --version`` says ``nf_tables``, ``iptables-save``/``ip6tables-save`` list a
table of that name and family, and its nftables rules are all of the kinds iptables-nft writes (plain payload
and meta matches, counters, ``xt`` expressions, plain verdicts) with the same chains and rule counts
(nft.iptables_faithful). Otherwise the table was written with ``nft`` under an iptables name and stays in the
nftables view: iptables-save either calls it incompatible or — worse — prints it lossily without a warning
(``tcp dport @ports accept`` comes out as ``-p tcp -j ACCEPT``; seen with iptables 1.8.9). With
iptables-legacy (``(legacy)``) the two are separate kernel subsystems and both are evaluated; legacy tables next
to iptables-nft are read with ``iptables-legacy-save`` only when ``/proc/net/ip_tables_names`` shows they exist
(reading them never loads a module). The backend reported is the one whose rule decided.

**firewalld and ufw.** When firewalld is running, its nftables table (``inet firewalld``) is replaced by the
zone model (firewalld.py) at its priority (filter + 10); with firewalld's iptables backend its zone chains are
(in the filter table the model runs where INPUT jumps to the zones; the PREROUTING zone chains of raw, mangle and
nat are skipped, the model covering forward ports). When ufw is active, its ``ufw-*`` chains are replaced by
the ufw model (ufw.py). Everything else (Docker's chains, an admin's own nftables table, direct rules) is
evaluated as it is.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from envprobe.probes.fwrules import firewalld as fwd
from envprobe.probes.fwrules import iptables as ipt
from envprobe.probes.fwrules import nft
from envprobe.probes.fwrules import ufw as ufwmod
from envprobe.probes.fwrules.engine import Atoms, Ending, HostInfo, Packet, Route, Stage, State

MARK = "@@envprobe-fw"

#: One POSIX sh script, run as root. Read-only: it lists rules, it changes nothing and loads no module.
SCRIPT = r"""m() { echo "@@envprobe-fw $*"; }
m begin 1
m uid
id -u
m tools
for c in nft iptables ip6tables iptables-save ip6tables-save iptables-legacy-save ip6tables-legacy-save \
    firewall-cmd ufw ip; do
  command -v "$c" 2>/dev/null
done
if command -v iptables >/dev/null 2>&1; then m iptables-version; iptables --version 2>&1; fi
if command -v nft >/dev/null 2>&1; then
  m nft-json; nft -j list ruleset 2>&1; m rc $?
  m nft-text; nft -a list ruleset 2>&1; m rc $?
fi
if command -v iptables-save >/dev/null 2>&1; then m iptables-save; iptables-save 2>&1; m rc $?; fi
if command -v ip6tables-save >/dev/null 2>&1; then m ip6tables-save; ip6tables-save 2>&1; m rc $?; fi
if iptables --version 2>/dev/null | grep -q nf_tables; then
  if [ -s /proc/net/ip_tables_names ] && command -v iptables-legacy-save >/dev/null 2>&1; then
    m iptables-legacy-save; iptables-legacy-save 2>&1; m rc $?
  fi
  if [ -s /proc/net/ip6_tables_names ] && command -v ip6tables-legacy-save >/dev/null 2>&1; then
    m ip6tables-legacy-save; ip6tables-legacy-save 2>&1; m rc $?
  fi
fi
if command -v firewall-cmd >/dev/null 2>&1; then
  S=$(firewall-cmd --state 2>&1); r=$?
  m firewalld-state; printf '%s\n' "$S"; m rc $r
  if [ "$r" = 0 ]; then
    m firewalld-default; firewall-cmd --get-default-zone 2>&1
    m firewalld-active; firewall-cmd --get-active-zones 2>&1
    Z=$(firewall-cmd --list-all-zones 2>&1); m firewalld-zones; printf '%s\n' "$Z"
    P=$(firewall-cmd --list-all-policies 2>/dev/null) && { m firewalld-policies; printf '%s\n' "$P"; }
    m firewalld-conf; grep -E '^[[:space:]]*FirewallBackend' /etc/firewalld/firewalld.conf 2>/dev/null
    svc() {
      for d in /etc/firewalld/services /usr/lib/firewalld/services /usr/local/lib/firewalld/services; do
        if [ -r "$d/$1.xml" ]; then
          m firewalld-service "$1"; cat "$d/$1.xml"; echo
          INC="$INC $(sed -n 's/.*<include service="\([^"]*\)".*/\1/p' "$d/$1.xml")"
          return
        fi
      done
      m firewalld-service-missing "$1"
    }
    PENDING=$(printf '%s\n%s\n' "$Z" "$P" | sed -n -e 's/^  services: //p' -e 's/.*service name="\([^"]*\)".*/\1/p')
    SEEN=" "
    for pass in 1 2 3 4; do
      INC=""
      for s in $PENDING; do
        case "$SEEN" in *" $s "*) ;; *) SEEN="$SEEN$s "; svc "$s" ;; esac
      done
      PENDING=$INC
    done
  fi
fi
if command -v ufw >/dev/null 2>&1; then
  m ufw-status; ufw status verbose 2>&1; m rc $?
  for f in /etc/ufw/user.rules /etc/ufw/user6.rules /lib/ufw/user.rules /lib/ufw/user6.rules; do
    if [ -r "$f" ]; then m ufw-file "$f"; grep '^### tuple ###' "$f"; fi
  done
fi
if command -v ip >/dev/null 2>&1; then
  m addr; ip -o addr show 2>&1
  m route4; ip -o -4 route show table main 2>&1
  m route6; ip -o -6 route show table main 2>&1
fi
m end
"""


@dataclass
class Section:
    text: str = ""
    rc: int | None = None

    @property
    def ok(self) -> bool:
        return self.rc in (None, 0)


@dataclass
class Snapshot:
    sections: dict[str, Section] = field(default_factory=dict)
    complete: bool = False

    def get(self, name: str) -> Section | None:
        return self.sections.get(name)

    def text(self, name: str) -> str:
        s = self.sections.get(name)
        return s.text if s else ""

    def tools(self) -> set[str]:
        return {line.rsplit("/", 1)[-1] for line in self.text("tools").split() if line}

    def uid(self) -> int | None:
        t = self.text("uid").strip()
        return int(t) if t.isdigit() else None


def parse_snapshot(text: str) -> Snapshot:
    snap = Snapshot()
    cur: str | None = None
    buf: list[str] = []

    def close() -> None:
        if cur is not None:
            snap.sections.setdefault(cur, Section()).text = "\n".join(buf)

    for line in text.splitlines():
        if line.startswith(MARK + " "):
            word = line[len(MARK) + 1:].strip()
            if word.startswith("rc "):
                close()
                if cur is not None:
                    rc = word[3:].strip()
                    snap.sections[cur].rc = int(rc) if rc.lstrip("-").isdigit() else None
                cur, buf = None, []
                continue
            close()
            if word == "end":
                snap.complete = True
                cur, buf = None, []
                continue
            cur, buf = word, []
            snap.sections.setdefault(cur, Section())
            continue
        if cur is not None:
            buf.append(line)
    close()
    return snap


# ===========================================================================================================
# privilege
# ===========================================================================================================
_DENIED = re.compile(r"Operation not permitted|Permission denied|you must be root|You need to be root|"
                     r"Authorization failed|Could not fetch rule set generation id", re.I)


def privilege_problem(snap: Snapshot) -> str | None:
    """"not-root" when the script ran without root, "no-capability" when root was refused anyway (a container
    without CAP_NET_ADMIN), None when the rules could be read."""
    denied = []
    for name in ("nft-json", "iptables-save", "ip6tables-save", "firewalld-zones", "ufw-status"):
        s = snap.get(name)
        if s is not None and _DENIED.search(s.text) and (not s.ok or name in ("firewalld-zones",)):
            denied.append(name)
    if not denied:
        return None
    return "not-root" if snap.uid() not in (0, None) else "no-capability"


# ===========================================================================================================
# host facts: interfaces and routes
# ===========================================================================================================
_ADDR_RE = re.compile(r"^\d+:\s+(\S+?)(?:@\S+)?\s+inet6?\s+(\S+)")


def parse_host(snap: Snapshot) -> HostInfo:
    if snap.get("addr") is None:
        return HostInfo(known=False)
    addrs: dict[str, list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]] = {}
    for line in snap.text("addr").splitlines():
        m = _ADDR_RE.match(line.strip())
        if not m:
            continue
        try:
            iface = ipaddress.ip_interface(m.group(2))
        except ValueError:
            continue
        addrs.setdefault(m.group(1), []).append(iface)
    routes: list[Route] = []
    for name in ("route4", "route6"):
        for line in snap.text(name).splitlines():
            words = line.split()
            if not words or "dev" not in words:
                continue
            dest = words[0]
            if dest in ("unreachable", "blackhole", "prohibit", "throw", "local", "broadcast", "multicast"):
                continue
            if dest == "default":
                dest = "0.0.0.0/0" if name == "route4" else "::/0"
            try:
                net = ipaddress.ip_network(dest, strict=False)
            except ValueError:
                continue
            dev = words[words.index("dev") + 1] if words.index("dev") + 1 < len(words) else ""
            metric = 0
            if "metric" in words and words.index("metric") + 1 < len(words):
                try:
                    metric = int(words[words.index("metric") + 1])
                except ValueError:
                    metric = 0
            routes.append(Route(net, dev, metric))
    return HostInfo({k: tuple(v) for k, v in addrs.items()}, tuple(routes), known=bool(addrs))


# ===========================================================================================================
# the layers
# ===========================================================================================================
@dataclass
class Layers:
    stages: list[Stage] = field(default_factory=list)
    #: backends that filter inbound traffic: firewalld, ufw, iptables, nftables
    present: list[str] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (code, detail)
    firewalld: fwd.Firewalld | None = None
    ufw: ufwmod.Ufw | None = None


def iptables_variant(snap: Snapshot) -> str | None:
    v = snap.text("iptables-version")
    if "nf_tables" in v:
        return "nf_tables"
    if "legacy" in v:
        return "legacy"
    return None


def load_firewalld(snap: Snapshot) -> fwd.Firewalld | None:
    state = snap.get("firewalld-state")
    if state is None:
        return None
    running = state.ok and state.text.strip().startswith("running")
    fw = fwd.Firewalld(running=running, state=state.text.strip().splitlines()[0] if state.text.strip() else "")
    if not running:
        return fw
    fw.default_zone = snap.text("firewalld-default").strip().split()[0] if snap.text("firewalld-default").strip() \
        else None
    fw.zones = fwd.parse_zones(snap.text("firewalld-zones"))
    fwd.merge_active(fw, fwd.parse_active_zones(snap.text("firewalld-active")))
    if fw.default_zone is None:
        fw.default_zone = next((z.name for z in fw.zones.values() if z.default), "public")
    fw.policies = fwd.parse_zones(snap.text("firewalld-policies"))
    conf = snap.text("firewalld-conf")
    if re.search(r"FirewallBackend\s*=\s*iptables", conf):
        fw.backend = "iptables"
    for name, sec in snap.sections.items():
        if name.startswith("firewalld-service "):
            svc = name.split(" ", 1)[1]
            try:
                fw.services[svc] = fwd.parse_service(svc, sec.text)
            except ValueError:
                continue
    return fw


def build_layers(snap: Snapshot, family: int, atoms: Atoms) -> Layers:
    out = Layers()
    tools = snap.tools()
    if not tools & {"nft", "iptables-save", "ip6tables-save", "iptables"}:
        out.notes.append(("no-tools", ""))
    variant = iptables_variant(snap)
    save_name = "iptables-save" if family == 4 else "ip6tables-save"
    save_sec = snap.get(save_name)
    save = ipt.parse_iptables_save(save_sec.text) if save_sec is not None and save_sec.ok else None
    if save is not None and variant is None:
        variant = save.variant
    other_sec = snap.get("ip6tables-save" if family == 4 else "iptables-save")
    other = ipt.parse_iptables_save(other_sec.text) if other_sec is not None and other_sec.ok else None
    if save_sec is not None and not save_sec.ok:
        out.notes.append(("iptables-unreadable", save_sec.text.strip()[:200]))

    # firewalld and ufw first: they decide what replaces what
    fw = load_firewalld(snap)
    out.firewalld = fw
    fw_running = fw is not None and fw.running
    if fw is not None and fw_running and save is not None and "filter" in save.tables and (
            "INPUT_ZONES" in save.tables["filter"].chains or "INPUT_ZONES_SOURCE" in save.tables["filter"].chains):
        fw.backend = "iptables"
    ufw_state: ufwmod.Ufw | None = None
    us = snap.get("ufw-status")
    if us is not None and us.ok:
        tuples: dict[str, str] = {}
        for name, sec in snap.sections.items():
            if name.startswith("ufw-file "):
                tuples.update(ufwmod.parse_user_rules(sec.text))
        ufw_state = ufwmod.parse_status(us.text, tuples)
    out.ufw = ufw_state
    ufw_active = ufw_state is not None and ufw_state.active

    fw_eval: Callable[[Packet, State], list[Ending]] | None = None
    if fw is not None and fw_running:
        fw_eval = fwd.build_model(fw, atoms)
        out.present.append("firewalld")
    if ufw_active and ufw_state is not None:
        ufwmod.add_atoms(ufw_state, atoms)
        out.present.append("ufw")

    # nftables
    nft_sec = snap.get("nft-json")
    tables: dict[tuple[str, str], nft.NftTable] = {}
    texts = nft.parse_nft_text(snap.text("nft-text")) if snap.get("nft-text") else nft.NftText()
    if nft_sec is not None:
        if nft_sec.ok:
            try:
                tables = nft.tables_of(nft.parse_nft_json(nft_sec.text))
            except ValueError as exc:
                out.notes.append(("nft-json-unreadable", str(exc)[:200]))
                out.stages += _opaque_nft(snap.text("nft-text"))
        else:
            out.notes.append(("nft-unreadable", nft_sec.text.strip()[:200]))
            out.stages += _opaque_nft(snap.text("nft-text"))
    skip: set[tuple[str, str]] = set()
    if variant == "nf_tables":
        for fam, s in (("ip" if family == 4 else "ip6", save), ("ip6" if family == 4 else "ip", other)):
            if s is None:
                continue
            for tname, itable in s.tables.items():
                if tname in s.incompatible:
                    continue
                t = tables.get((fam, tname))
                counts = {c.name: len(c.rules) for c in itable.chains.values()}
                if t is not None and not nft.iptables_faithful(t, counts):
                    s.incompatible.add(tname)  # iptables-save's view of it is lossy: use nft's
                    out.notes.append(("iptables-lossy", f"{fam} {tname}"))
                    continue
                skip.add((fam, tname))
    if fw_running:
        skip |= {k for k in tables if k[1] == "firewalld"}
    nft_stages = nft.build_stages(tables, texts, family, atoms, skip)
    out.stages += nft_stages
    if any(s.filters for s in nft_stages):
        out.present.append("nftables")

    # iptables (nf_tables or legacy), with firewalld's and ufw's chains replaced by their models
    overrides: dict[str, dict[str, Callable[[Packet, State], list[Ending]]]] = {}
    if fw_eval is not None and fw is not None and fw.backend == "iptables":
        overrides = _firewalld_overrides(fw_eval)
    if ufw_active and ufw_state is not None:
        overrides.setdefault("filter", {}).update(_ufw_overrides(ufw_state, family))
    ipt_stages: list[Stage] = []
    if save is not None:
        ipt_stages += ipt.build_stages(save, family, atoms, overrides=overrides)
    legacy_sec = snap.get("iptables-legacy-save" if family == 4 else "ip6tables-legacy-save")
    if legacy_sec is not None and legacy_sec.ok and legacy_sec.text.strip():
        legacy = ipt.parse_iptables_save(legacy_sec.text)
        ipt_stages += ipt.build_stages(legacy, family, atoms, overrides=overrides, tag=" (legacy)")
        out.notes.append(("legacy-tables", ""))
    out.stages += ipt_stages
    if any(s.filters for s in ipt_stages) and not (fw is not None and fw.backend == "iptables" and fw_running
                                                    and _only_managed(save, "firewalld")) and not (
            ufw_active and _only_managed(save, "ufw")):
        out.present.append("iptables")

    if fw_eval is not None and fw is not None and fw.backend == "nftables":
        out.stages.append(Stage("input", 10, "firewalld", "firewalld", fw_eval))
    return out


def _opaque_nft(text: str) -> list[Stage]:
    """nft without JSON (older than 0.9): if its text listing shows inbound base chains, say the answer is
    unknown instead of guessing."""
    if not re.search(r"hook (input|prerouting|ingress)", text):
        return []

    def unknown(pkt: Packet, st: State) -> list[Ending]:
        return [Ending("unknown", None, "nftables", "nftables", None, "nftables", st,
                       why="nft -j (JSON) is not available on this host, so its nftables rules cannot be read")]

    return [Stage("input", 0, "nftables", "nftables", unknown)]


def _only_managed(save: ipt.IptSave | None, by: str) -> bool:
    """Are the filtering iptables chains all the manager's own?"""
    if save is None or "filter" not in save.tables:
        return True
    chain = save.tables["filter"].chains.get("INPUT")
    if chain is None:
        return True
    if by == "ufw":
        return all(" -j ufw" in r or " -j ufw6" in r for r in chain.rules)
    names = ("INPUT_direct", "INPUT_ZONES", "INPUT_ZONES_SOURCE", "INPUT_POLICIES")
    return all(any(n in r for n in names) or "--ctstate" in r or "-i lo" in r or "REJECT" in r
               or "DROP" in r for r in chain.rules)


def _firewalld_overrides(fw_eval: Callable[[Packet, State], list[Ending]]) -> dict[
        str, dict[str, Callable[[Packet, State], list[Ending]]]]:
    """firewalld's iptables backend: in the filter table the first zone chain jumped to runs the zone model
    (which always decides) and the others are skipped; the zone chains of the raw, mangle and nat tables are
    skipped too (the model covers forward ports). Direct rules (``*_direct``) stay as they are."""
    def first(pkt: Packet, st: State) -> list[Ending]:
        if "firewalld" in st.flags:
            return [Ending("continue", None, "firewalld", "firewalld", None, "firewalld", st)]
        return fw_eval(pkt, State(st.ct, st.mark, st.assumed, st.rules, st.flags | {"firewalld"}))

    def skip(pkt: Packet, st: State) -> list[Ending]:
        return [Ending("continue", None, "firewalld", "firewalld", None, "firewalld", st)]

    names = ("PREROUTING_ZONES_SOURCE", "PREROUTING_ZONES", "PREROUTING_POLICIES_pre", "PREROUTING_POLICIES_post")
    pre: dict[str, Callable[[Packet, State], list[Ending]]] = {name: skip for name in names}
    return {"filter": {name: first for name in ("INPUT_ZONES_SOURCE", "INPUT_POLICIES_pre", "INPUT_ZONES",
                                                "INPUT_POLICIES_post")},
            "raw": pre, "mangle": dict(pre), "nat": dict(pre)}


def _ufw_overrides(u: ufwmod.Ufw, family: int) -> dict[str, Callable[[Packet, State], list[Ending]]]:
    pre = "ufw" if family == 4 else "ufw6"

    def model(pkt: Packet, st: State) -> list[Ending]:
        return ufwmod.evaluate(u, pkt, st)

    def skip(pkt: Packet, st: State) -> list[Ending]:
        return [Ending("continue", None, "ufw", "ufw", None, "ufw", st)]

    out: dict[str, Callable[[Packet, State], list[Ending]]] = {f"{pre}-before-input": model}
    for name in ("before-logging-input", "after-input", "after-logging-input", "reject-input", "track-input",
                 "logging-deny", "logging-allow", "user-input", "not-local", "skip-to-policy-input"):
        out[f"{pre}-{name}"] = skip
    return out
