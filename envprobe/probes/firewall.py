"""``firewall``: would this host's firewall let a NEW inbound connection to a port through — from a given source,
or from anywhere? The rules are read and evaluated the way the kernel walks them; nothing is sent and nothing is
changed.

**Collection.** Linux: one root shell script per host and scan (``ProbeContext.run(privileged=True)``: as root,
or through the inventory's sudo; shared by every firewall check on the host) prints the tools present,
``nft -j list ruleset`` and ``nft -a list ruleset``, ``iptables-save``/``ip6tables-save`` (and the legacy tables
when both kinds exist), firewalld's state, default and active zones, ``--list-all-zones``, ``--list-all-policies``
and the service definitions its zones use, ``ufw status verbose`` with the tuples of ``user.rules``, and the
host's addresses and routes (fwrules/linux.py). Without root the script cannot read the rules: iptables exits
4 ("you must be root"), nft 1 ("Operation not permitted"); that is reported as missing privilege — never as
"no firewall" — and so is root without CAP_NET_ADMIN (a container). Windows (this machine only, when envprobe
itself runs on Windows; the transports reach remote hosts through a POSIX shell, so a remote Windows host is
not covered yet): one PowerShell pipeline (fwrules/windows.py), ``netsh advfirewall`` as the fallback.

**Evaluation** (fwrules/engine.py and one module per backend): every base chain on the inbound path in hook and
priority order, rules in order, ``accept`` ending only its base chain, ``drop``/``reject`` final, jumps, gotos,
returns and policies; iptables-nft tables once, from ``iptables-save`` (see linux.py for how double evaluation
is avoided); firewalld's zones and ufw's rules through their own models; Windows rules with block-beats-allow.
A rule that tests something that cannot be known here (``limit rate``, ``meta mark``, a source port, an ipset…)
is followed both ways: if the answer does not depend on it the answer stands, otherwise ``allowed`` is null,
``action`` unknown and the rule is named — never a guess.

**Sources.** With ``source``, the packet comes from that address on the interface the host routes it through.
Without it every source range the rules distinguish is evaluated: ``allowed`` is true or false when all agree,
null with ``decided_by: depends-on-source`` and ``allowed_from`` listing the networks when they do not.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Any, Literal

from envprobe.model import Text, join_text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.probes.fwrules import windows as win
from envprobe.probes.fwrules.analyze import Analysis, Query, evaluate
from envprobe.probes.fwrules.engine import Atoms, HostInfo, Stage
from envprobe.probes.fwrules.linux import SCRIPT, Snapshot, build_layers, parse_host, parse_snapshot, privilege_problem
from envprobe.schema import Field, Model, field_validator, model_validator

Backend = Literal["nftables", "iptables", "firewalld", "ufw", "windows", "none"]
DecidedBy = Literal["rule", "policy", "no-firewall", "unevaluable-rule", "depends-on-source",
                    "depends-on-interface", "depends-on-program"]


class FirewallParams(Model):
    port: int = Field(ge=1, le=65535, description="the port that must be reachable on this host, 1-65535")
    protocol: Literal["tcp", "udp"] = Field(default="tcp", description="tcp (default) or udp")
    source: str | None = Field(default=None, description="the IP address the connections come from (e.g. the "
                                                          "application server); default: any source — the "
                                                          "result then says when the answer depends on it")
    family: Literal["ipv4", "ipv6"] | None = Field(default=None, description="ipv4 (default) or ipv6; implied by "
                                                                             "an IPv6 source")
    interface: str | None = Field(default=None, description="the interface the connections arrive on (e.g. eth0); "
                                                            "default: the one the host routes the source "
                                                            "through, or every inbound interface")
    program: str | None = Field(default=None, description="Windows only: the program path or service name that "
                                                          "listens on the port, for rules bound to a program")

    @field_validator("source")
    @classmethod
    def _source(cls, v: str | None) -> str | None:
        if v is None or not str(v).strip() or str(v).strip() in ("any", "*"):
            return None
        try:
            ip = ipaddress.ip_address(str(v).strip().strip("[]"))
        except ValueError:
            raise ValueError("give the source as an IP address (e.g. 10.0.0.10), not a host name") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return str(ip)

    @model_validator(mode="after")
    def _family_matches(self) -> FirewallParams:
        if self.source is not None and self.family is not None:
            version = ipaddress.ip_address(self.source).version
            if (version == 4) != (self.family == "ipv4"):
                raise ValueError(f"source {self.source} is not an {self.family} address")
        return self

    @property
    def ip_family(self) -> int:
        if self.family is not None:
            return 4 if self.family == "ipv4" else 6
        if self.source is not None:
            return ipaddress.ip_address(self.source).version
        return 4


class FirewallFacts(Facts):
    port: int = Field(description="the port that was checked")
    protocol: str = Field(description="tcp or udp")
    family: str = Field(description="ipv4 or ipv6")
    source: str | None = Field(description="the source address evaluated; null: every source")
    interface: str | None = Field(description="the inbound interface assumed: given, or where the host routes "
                                              "the source; null when several were evaluated")
    backend: Backend = Field(description="the firewall that decided (nftables, iptables, firewalld, ufw, windows), "
                                         "or the main one present when none had to; none: no filtering at all")
    backends: list[str] = Field(description="every firewall layer found filtering inbound traffic")
    active: bool = Field(description="some layer filters inbound traffic (rules, or a policy other than accept)")
    allowed: bool | None = Field(description="a NEW connection to the port gets through; null when it cannot be "
                                             "decided (see decided_by)")
    action: Literal["accept", "drop", "reject", "unknown"] = Field(
        description="what happens to it: accept, drop (the client times out), reject (the client is refused at "
                    "once), unknown")
    reject_with: str | None = Field(description="for reject: the answer sent, e.g. tcp reset, icmp "
                                                "port-unreachable (client: connection refused), icmpx "
                                                "admin-prohibited / icmp-host-prohibited (client: no route to "
                                                "host)")
    decided_by: DecidedBy = Field(
        description="rule: a rule decided; policy: the chain policy, zone target or default action; no-firewall; "
                    "unevaluable-rule: a rule that cannot be evaluated here could change the answer; "
                    "depends-on-source / depends-on-interface / depends-on-program: the answer differs by "
                    "source, inbound interface, or (Windows) the listening program")
    matched_rule: str | None = Field(description="the deciding rule as the tool prints it (or the unevaluable "
                                                 "rule); null when a policy or default decided")
    chain: str | None = Field(description="where the decision was made: e.g. 'inet filter input', 'filter INPUT', "
                                          "'zone public', 'ufw', 'Windows Firewall (Domain profile)'")
    policy: str | None = Field(description="the default of the deciding chain or zone: drop/accept, the zone "
                                           "target (default, %%REJECT%%, DROP, ACCEPT), ufw's incoming default, "
                                           "Windows' default inbound action")
    zone: str | None = Field(description="firewalld: the zone the connection falls into")
    allowed_from: list[str] | None = Field(description="without source: the networks allowed to connect "
                                                       "(0.0.0.0/0 or ::/0 when every source is; empty when none "
                                                       "is; at most 50 networks); null with a source")
    denied_from: list[str] | None = Field(description="without source: the networks refused (the complement of "
                                                      "allowed_from, less sources whose answer is unknown; at "
                                                      "most 50 networks); null with a source")
    rules_evaluated: int = Field(description="rules looked at on the way to the decision")
    unevaluable_rules: list[str] = Field(description="rules met that could not be evaluated (whether or not they "
                                                     "changed the answer)")
    unknown_reason: str | None = Field(description="why the answer is unknown, when a statement rather than a "
                                                   "match is the cause (e.g. dnat, queue)")


def query_of(params: Any) -> Query:
    src = ipaddress.ip_address(params.source) if params.source else None
    return Query(params.port, params.protocol, params.ip_family, src, params.interface, params.program)


def facts_of(params: Any, a: Analysis) -> FirewallFacts:
    return FirewallFacts(
        port=params.port, protocol=params.protocol, family="ipv4" if params.ip_family == 4 else "ipv6",
        source=params.source, interface=a.interface if params.interface is None else params.interface,
        backend=a.backend, backends=list(a.present), active=a.active, allowed=a.allowed, action=a.action,
        reject_with=a.reject_with, decided_by=a.decided_by, matched_rule=a.matched_rule, chain=a.chain,
        policy=a.policy, zone=a.zone, allowed_from=a.allowed_from, denied_from=a.denied_from,
        rules_evaluated=a.rules_evaluated, unevaluable_rules=a.unevaluable_rules, unknown_reason=a.unknown_reason)


def analyze_linux(snap: Snapshot, q: Query) -> tuple[Analysis, list[tuple[str, str]]]:
    """Evaluate a parsed Linux snapshot (pure: used by the probe and by the tests on recorded outputs)."""
    host = parse_host(snap)
    atoms = Atoms()
    layers = build_layers(snap, q.family, atoms)
    active = any(s.filters for s in layers.stages) or bool({"firewalld", "ufw"} & set(layers.present))
    return evaluate(layers.stages, host, q, atoms, layers.present, active), layers.notes


def analyze_windows(fw: win.WinFirewall, q: Query) -> Analysis:
    """Evaluate Windows Firewall rules (parsed from the PowerShell JSON or from netsh output)."""
    atoms = Atoms()
    win.remote_atoms(fw, atoms)
    # the interfaces are the connections' aliases (each with its network profile); netsh gives none
    host = HostInfo({alias: () for alias in fw.connections}, (), known=bool(fw.connections))
    stage = Stage("input", 0, "Windows Firewall", "windows", lambda pkt, st: win.evaluate(fw, pkt, st))
    on = [p for p in (fw.active or ["Public"]) if fw.profiles.get(p, win.WinProfile(p)).enabled]
    present = ["windows"] if on else []
    return evaluate([stage], host, q, atoms, present, bool(on))


_NOTE_TEXT: dict[str, Text] = {
    "legacy-tables": t("legacy iptables tables exist next to iptables-nft ones; both were evaluated",
                       "主机同时存在 iptables-legacy 与 iptables-nft 规则表，已一并评估"),
    "nft-json-unreadable": t("nft -j (JSON output) is not available here, so nftables rules could not be read "
                             "(nft older than 0.9?)",
                             "该主机的 nft 不支持 -j（JSON 输出），无法读取 nftables 规则（nft 版本低于 0.9？）"),
    "nft-unreadable": t("nft list ruleset failed", "nft list ruleset 执行失败"),
    "iptables-unreadable": t("iptables-save failed", "iptables-save 执行失败"),
    "no-tools": t("neither nft nor iptables is installed: rules loaded into the kernel by other means cannot be "
                  "seen", "主机未安装 nft 与 iptables：以其他方式加载到内核的规则无法查看"),
    "iptables-lossy": t("a table with an iptables name holds nftables rules iptables-save cannot show; it was "
                        "read with nft", "某个以 iptables 命名的表中含有 iptables-save 无法显示的 nftables 规则，"
                                     "已改用 nft 读取"),
}


class FirewallProbe(Probe):
    name = "firewall"
    summary = t("Host firewall: would it let a new inbound connection to a port through (nftables, iptables, "
                "firewalld, ufw, Windows Firewall)",
                "主机防火墙：是否放行到某端口的新入站连接（nftables、iptables、firewalld、ufw、Windows 防火墙）")
    Params = FirewallParams
    Facts = FirewallFacts
    requires = t("root or sudo on Linux (the rules cannot be read otherwise); nft ≥ 0.9 for nftables rules; "
                 "on Windows, envprobe running on that host",
                 "Linux 上需要 root 或 sudo（否则无法读取规则）；读取 nftables 规则需 nft ≥ 0.9；"
                 "Windows 需在该主机本机运行 envprobe")
    example = """\
- id: db-port-open-for-app
  title: {zh-CN: 防火墙放行应用服务器访问数据库端口, en: The firewall lets the app server reach the database port}
  probe: firewall
  with: {port: 5432, protocol: tcp, source: 10.0.0.10}
  expect: {allowed: true}
"""
    advice = {
        "allowed": t("open the port for the source on the host's firewall — firewalld: firewall-cmd --permanent "
                     "--zone=ZONE --add-rich-rule='rule family=\"ipv4\" source address=\"SOURCE\" port "
                     "port=\"PORT\" protocol=\"tcp\" accept' && firewall-cmd --reload; ufw: ufw allow from SOURCE "
                     "to any port PORT proto tcp; iptables: iptables -I INPUT -s SOURCE -p tcp --dport PORT -j "
                     "ACCEPT (and save the rules); nftables: add an accept rule before the one that refuses (nft "
                     "insert rule …); Windows: New-NetFirewallRule -Direction Inbound -Protocol TCP -LocalPort PORT "
                     "-RemoteAddress SOURCE -Action Allow. The change is the customer administrator's to make.",
                     "请在主机防火墙上为该来源放行端口——firewalld：firewall-cmd --permanent --zone=区域 "
                     "--add-rich-rule='rule family=\"ipv4\" source address=\"来源\" port port=\"端口\" "
                     "protocol=\"tcp\" accept' && firewall-cmd --reload；ufw：ufw allow from 来源 to any port 端口 "
                     "proto tcp；iptables：iptables -I INPUT -s 来源 -p tcp --dport 端口 -j ACCEPT（并保存规则）；"
                     "nftables：在拒绝规则之前插入放行规则（nft insert rule …）；Windows：New-NetFirewallRule "
                     "-Direction Inbound -Protocol TCP -LocalPort 端口 -RemoteAddress 来源 -Action Allow。"
                     "变更须由客户管理员执行。"),
        "active": t("compare with the security baseline: a server facing other networks usually must run a "
                    "firewall", "请对照安全基线：面向其他网络的服务器通常要求启用防火墙"),
        "*": t("review the rule named in the result with the customer's administrator (nft list ruleset, "
               "iptables-save, firewall-cmd --list-all, ufw status verbose, or wf.msc on Windows)",
               "请与客户管理员核对结果中给出的规则（nft list ruleset、iptables-save、firewall-cmd --list-all、"
               "ufw status verbose，Windows 上用 wf.msc）"),
    }

    def __init__(self) -> None:
        self._notes: list[tuple[str, str]] = []
        self._limited = False

    # -- collection ---------------------------------------------------------------------------------------
    def collect(self, ctx: ProbeContext, params: Any) -> FirewallFacts:
        q = query_of(params)
        if ctx.transport.is_local and sys.platform == "win32":  # pragma: no cover - no Windows host here
            a = analyze_windows(self._windows(ctx), q)
        else:
            snap = ctx.transport.memo("firewall.snapshot", lambda: self._snapshot(ctx))
            a, self._notes = analyze_linux(snap, q)
        self._limited = a.limited
        return facts_of(params, a)

    def _snapshot(self, ctx: ProbeContext) -> Snapshot:
        res = ctx.run(SCRIPT, privileged=True)
        if res.timed_out:
            raise ProbeError(t(f"reading the firewall rules did not finish within {ctx.timeout:g} s",
                               f"读取防火墙规则未在 {ctx.timeout:g} 秒内完成"),
                             t("raise the check's timeout (firewall-cmd answers slowly on busy hosts)",
                               "请调大该检查的 timeout（主机繁忙时 firewall-cmd 响应较慢）"))
        snap = parse_snapshot(res.stdout)
        problem = privilege_problem(snap)
        if problem == "not-root":
            raise ProbeError(
                t(f"the firewall rules on {ctx.transport.name} could not be read: that needs root, and the "
                  "command ran as another user (iptables: 'you must be root', nft: 'Operation not permitted') — "
                  "this does not mean there is no firewall",
                  f"无法读取 {ctx.transport.name} 上的防火墙规则：需要 root 权限，而命令以其他用户运行"
                  "（iptables：“you must be root”，nft：“Operation not permitted”）——这并不表示没有防火墙"),
                t("set `sudo: true` for the host in the inventory (with sudo_password if sudo asks for one), or "
                  "log in as root", "请在清单中为该主机设置 `sudo: true`（sudo 需要密码时再设置 sudo_password），"
                                    "或以 root 登录"))
        if problem == "no-capability":
            raise ProbeError(
                t(f"the firewall rules on {ctx.transport.name} could not be read even as root ('Operation not "
                  "permitted'): the session lacks CAP_NET_ADMIN (a container?) — this does not mean there is no "
                  "firewall",
                  f"即使以 root 运行也无法读取 {ctx.transport.name} 上的防火墙规则（“Operation not permitted”）："
                  "当前会话缺少 CAP_NET_ADMIN 权限（容器内？）——这并不表示没有防火墙"),
                t("run the check on the host itself rather than inside a container, or with CAP_NET_ADMIN",
                  "请在宿主机本身（而非容器内）运行该检查，或赋予 CAP_NET_ADMIN 权限"))
        if not snap.complete:
            detail = (res.stderr or res.stdout).strip().splitlines()
            why = detail[-1][:200] if detail else f"exit code {res.rc}"
            raise ProbeError(t(f"the firewall listing stopped early on {ctx.transport.name}: {why}",
                               f"{ctx.transport.name} 上的防火墙规则读取中途中断：{why}"))
        return snap

    def _windows(self, ctx: ProbeContext) -> win.WinFirewall:  # pragma: no cover - needs a Windows host
        res = ctx.run(["powershell", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command",
                       win.POWERSHELL])
        if res.ok:
            try:
                return win.parse_powershell(res.stdout)
            except ValueError:
                pass
        rules = ctx.run(win.NETSH_RULES)
        profiles = ctx.run(win.NETSH_PROFILES)
        current = ctx.run(win.NETSH_CURRENT)
        if not rules.ok or not profiles.ok:
            raise ProbeError(t("could not read the Windows Firewall rules (PowerShell and netsh both failed)",
                               "无法读取 Windows 防火墙规则（PowerShell 与 netsh 均失败）"))
        fw = win.WinFirewall(rules=win.parse_netsh_rules(rules.stdout),
                             profiles=win.parse_netsh_profiles(profiles.stdout))
        fw.active = win.parse_netsh_current(current.stdout) if current.ok else []
        fw.active = fw.active or ["Public"]
        return fw

    # -- the message --------------------------------------------------------------------------------------
    def note(self, params: Any, facts: Any) -> Text | None:
        parts: list[Text] = []
        port = f"{params.port}/{params.protocol}"
        src = f" from {facts.source}" if facts.source else ""
        src_zh = f"（来源 {facts.source}）" if facts.source else ""
        where = f" in {facts.chain}" if facts.chain else ""
        where_zh = f"（{facts.chain}）" if facts.chain else ""
        if facts.decided_by == "no-firewall":
            parts.append(t("no firewall filters inbound traffic on this host: every port is reachable as far as the "
                           "host is concerned", "该主机没有过滤入站流量的防火墙：就主机而言所有端口均可访问"))
        elif facts.decided_by in ("rule", "policy"):
            verb = {"accept": ("allowed", "放行"), "drop": ("dropped", "丢弃"), "reject": ("rejected", "拒绝")}.get(
                facts.action, ("decided", "判定"))
            by = (f"by rule `{facts.matched_rule}`" if facts.decided_by == "rule"
                  else f"by the default ({facts.policy})")
            by_zh = (f"被规则 `{facts.matched_rule}` " if facts.decided_by == "rule"
                     else f"被默认策略（{facts.policy}）")
            at_zh = f"（{facts.chain}，{facts.backend}）" if facts.chain else f"（{facts.backend}）"
            parts.append(t(f"{port}{src} is {verb[0]} {by}{where} ({facts.backend})",
                           f"{port}{src_zh}{by_zh}{verb[1]}{at_zh}"))
            view = _client_view(facts)
            if view:
                parts.append(view)
        elif facts.decided_by == "unevaluable-rule" and facts.unknown_reason:
            reason = facts.unknown_reason
            parts.append(t(f"cannot tell whether {port}{src} gets through: rule `{facts.matched_rule}`{where} "
                           f"hands the connection on ({reason}) — where it ends up cannot be judged from this "
                           "host's rules",
                           f"无法判断 {port}{src_zh}能否通过：规则 `{facts.matched_rule}`{where_zh}会转交该连接"
                           f"（{reason}），其去向无法仅凭本机规则判断"))
            parts.append(t("check that rule by hand, or prove the path with a real connection (port_proof probe)",
                           "请人工核对该规则，或用真实连接验证通路（port_proof 探针）"))
        elif facts.decided_by == "unevaluable-rule":
            parts.append(t(f"cannot tell whether {port}{src} gets through: rule `{facts.matched_rule}`{where} "
                           "depends on something that cannot be evaluated from the rules (a rate limit, a packet "
                           "mark, a source port, an address set, which of the host's addresses is used …)",
                           f"无法判断 {port}{src_zh}能否通过：规则 `{facts.matched_rule}`{where_zh}"
                           "取决于无法仅凭规则判断的条件（速率限制、报文标记、源端口、地址集合、所用的本机地址等）"))
            parts.append(t("check that rule by hand, or prove the path with a real connection (port_proof probe)",
                           "请人工核对该规则，或用真实连接验证通路（port_proof 探针）"))
        elif facts.decided_by == "depends-on-source":
            allowed, denied = facts.allowed_from or [], facts.denied_from or []
            if facts.allowed_from is None and facts.denied_from is None:
                parts.append(t(f"{port}: the rules single out so many source addresses that every one cannot be "
                               f"evaluated ({facts.unknown_reason}); give `source` to check a given client",
                               f"{port}：规则中单独列出的来源地址过多，无法逐一评估（{facts.unknown_reason}）；"
                               "请用 `source` 指定客户端地址后再检查"))
            elif denied and len(denied) < len(allowed):
                nets = _shown(denied)
                parts.append(t(f"{port} is allowed from everywhere except {nets}; give `source` to check a given "
                               "client", f"{port} 对除 {nets} 以外的来源放行；请用 `source` 指定客户端地址后再检查"))
            else:
                nets = _shown(allowed) or "nowhere"
                parts.append(t(f"{port} is allowed only from {nets}; give `source` to check a given client",
                               f"{port} 仅对以下来源放行：{nets}；请用 `source` 指定客户端地址后再检查"))
        elif facts.decided_by == "depends-on-interface":
            nets = ", ".join(facts.allowed_from or []) or "no interface"
            parts.append(t(f"{port}{src} is allowed on some inbound interfaces only ({nets}); give `interface`",
                           f"{port}{src_zh}仅在部分入站网卡上放行（{nets}）；请用 `interface` 指定网卡"))
        elif facts.decided_by == "depends-on-program":
            parts.append(t(f"Windows rule `{facts.matched_rule}` applies only to a given program or service: give "
                           "`program` (the path of the program listening on the port)",
                           f"Windows 规则 `{facts.matched_rule}` 只对特定程序或服务生效：请用 `program` "
                           "指定监听该端口的程序路径"))
        if self._limited:
            parts.append(t("ufw LIMIT: a source that opens 6 connections within 30 s is refused after that",
                           "ufw LIMIT：同一来源 30 秒内发起 6 个连接后将被拒绝"))
        if facts.source and facts.interface and params.interface is None:
            parts.append(t(f"traffic from {facts.source} taken to arrive on {facts.interface} (the host's route "
                           "to it)", f"按主机路由，来自 {facts.source} 的流量视为从 {facts.interface} 进入"))
        met = [r for r in facts.unevaluable_rules if r != facts.matched_rule]
        if met and facts.allowed is not None:
            parts.append(t(f"{len(met)} rule(s) on the way could not be evaluated but do not change the answer",
                           f"途中有 {len(met)} 条规则无法评估，但不影响结论"))
        for code, detail in self._notes:
            text = _NOTE_TEXT.get(code)
            if text:
                tail = f": {detail}" if detail else ""
                parts.append(t(text["en"] + tail, text["zh-CN"] + (f"：{detail}" if detail else "")))
        return join_text(*parts, sep="; ") if parts else None


def _shown(nets: list[str], limit: int = 8) -> str:
    if len(nets) <= limit:
        return ", ".join(nets)
    return ", ".join(nets[:limit]) + f" … (+{len(nets) - limit})"


def _client_view(facts: Any) -> Text | None:
    if facts.action == "drop":
        return t("a client waits until its connection times out", "客户端会一直等待直到连接超时")
    if facts.action == "reject":
        rw = (facts.reject_with or "").lower()
        if "prohibited" in rw or "host-unreach" in rw or "net-unreach" in rw:
            return t("a client sees 'no route to host'", "客户端会看到“no route to host”（无路由到主机）")
        return t("a client sees 'connection refused' at once", "客户端会立即看到“connection refused”（连接被拒绝）")
    return None
