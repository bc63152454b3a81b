"""``user`` and ``group``: accounts as the host's name service sees them (``getent``: /etc/passwd, /etc/group,
and LDAP/SSSD where configured).

``user`` also tells whether the home directory exists, whether the password is locked or the account expired
(from ``/etc/shadow`` — only root can read it; the password hash itself never leaves the host: an ``awk`` on the
host reduces it to usable / locked / empty), and what the account may do with sudo. The sudo answer is sudo's
own (``sudo -l -U USER``, which applies /etc/sudoers, /etc/sudoers.d, aliases, groups and LDAP sudoers exactly as
sudo will); listing another user's rights needs root, so it comes from the batch when the login user is root,
through the inventory's sudo settings otherwise, and is null — never a guess — when neither is possible.

``group`` lists its members: those the group database names and those whose primary group it is (a vendor's
"oracle in group oinstall" is usually the latter).
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Literal

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator
from envprobe.transport.base import CommandResult, Source

_MARK = "@@envprobe:"
_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.@-]*\$?$")

PasswordStatus = Literal["usable", "locked", "empty"]


def _check_name(v: str, what: str) -> str:
    v = v.strip()
    if not _NAME.match(v):
        raise ValueError(f"{v!r} is not a {what} name (letters, digits, . _ - @; e.g. oracle)")
    return v


# ===========================================================================================================
# user
# ===========================================================================================================
class UserParams(Model):
    name: str = Field(description="the account name (oracle, dmdba, postgres, mes) or a numeric uid")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "user")


class UserFacts(Facts):
    exists: bool = Field(description="the account exists (getent passwd)")
    name: str | None = Field(description="the account name (as the database spells it)")
    uid: int | None = Field(description="user id")
    gid: int | None = Field(description="primary group id")
    primary_group: str | None = Field(description="primary group name (e.g. oinstall)")
    groups: list[str] = Field(default_factory=list, description="supplementary groups, sorted (e.g. [dba, "
                              "oper]); the primary group is not repeated here")
    shell: str | None = Field(description="login shell (/bin/bash; /sbin/nologin means no interactive login)")
    home: str | None = Field(description="home directory")
    home_exists: bool | None = Field(description="the home directory exists (null when the account does not)")
    password_status: PasswordStatus | None = Field(description="usable, locked (! or * in /etc/shadow, e.g. "
                                                   "passwd -l, or never set), empty; null when /etc/shadow is "
                                                   "not readable (needs root) or has no entry (LDAP users)")
    locked: bool | None = Field(description="the password is locked (password_status locked); null when unknown")
    expired: bool | None = Field(description="the account's expiry date (chage -E) has passed; null when "
                                 "unknown")
    sudo: bool | None = Field(description="the account may run something with sudo (sudo -l -U); null when "
                                "that cannot be asked (needs root or sudo rights for the login user)")
    sudo_all: bool | None = Field(description="the account may run any command as root ((ALL) ALL)")
    sudo_nopasswd: bool | None = Field(description="at least one of its sudo rules needs no password "
                                       "(NOPASSWD)")
    sudo_rules: list[str] = Field(default_factory=list, description="its sudo rules as sudo -l lists them, "
                                  "e.g. ['(ALL : ALL) ALL', '(root) NOPASSWD: /usr/bin/systemctl restart mes']")


def privileged_part(name: str) -> str:
    """The part of the user query that needs root: shadow status and sudo rights."""
    u = shlex.quote(name)
    return (
        f"echo {_MARK}shadow; if [ -r /etc/shadow ]; then d=$(( $(date +%s) / 86400 )); "
        f"getent shadow {u} | awk -F: -v d=\"$d\" '{{p=$2; s=\"usable\"; "
        "if (p == \"\") s=\"empty\"; else if (substr(p,1,1) == \"!\" || substr(p,1,1) == \"*\") s=\"locked\"; "
        "e=\"no\"; if ($8 != \"\" && $8 + 0 <= d) e=\"yes\"; print s, e; exit}'; "
        f"else echo unreadable; fi; "
        f"echo {_MARK}sudo; if command -v sudo >/dev/null 2>&1; then sudo -n -l -U {u} 2>&1; "
        f'echo "{_MARK}sudo-rc $?"; else echo {_MARK}no-sudo; fi'
    )


def user_command(name: str) -> str:
    u = shlex.quote(name)
    return (
        f"echo {_MARK}passwd; getent passwd {u}; "
        f"h=$(getent passwd {u} | cut -d: -f6); echo {_MARK}home; "
        '[ -n "$h" ] && [ -d "$h" ] && echo yes; '
        f"echo {_MARK}primary; id -gn {u} 2>/dev/null; echo {_MARK}groups; id -Gn {u} 2>/dev/null; "
        f'if [ "$(id -u)" = 0 ]; then {privileged_part(name)}; else echo {_MARK}not-root; fi'
    )


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    cur = ""
    for line in text.splitlines():
        if line.startswith(_MARK):
            word, _, rest = line[len(_MARK):].partition(" ")
            cur = word
            out.setdefault(cur, [])
            if rest:
                out[cur].append(rest)
            continue
        if cur:
            out[cur].append(line)
    return out


def parse_sudo_list(lines: list[str]) -> tuple[bool | None, bool | None, bool | None, list[str]]:
    """``sudo -l -U USER`` → (may sudo, may run ALL as root, some rule NOPASSWD, rules). None: not answered."""
    text = "\n".join(lines)
    if re.search(r"is not allowed to run sudo", text):
        return False, False, False, []
    m = re.search(r"may run the following commands on [^\n]*:\n", text)
    if not m:
        return None, None, None, []
    rules: list[str] = []
    for line in text[m.end():].splitlines():
        if not line.strip():
            if rules:
                break
            continue
        if not line[:1].isspace():
            break
        s = line.strip()
        if s.startswith("(") or not rules:
            rules.append(s)
        else:
            rules[-1] += " " + s  # a long rule wrapped onto the next line
    all_root = any(_rule_is_all(r) for r in rules)
    nopasswd = any("NOPASSWD:" in r for r in rules)
    return bool(rules), all_root, nopasswd, rules


def _rule_is_all(rule: str) -> bool:
    m = re.match(r"^\(([^)]*)\)\s*(.*)$", rule)
    if not m:
        return False
    runas = [x.strip() for x in m.group(1).split(":")[0].split(",")]
    if not any(x in ("ALL", "root") for x in runas):
        return False
    cmds = re.sub(r"\b[A-Z_]+:\s*", "", m.group(2)).strip()  # NOPASSWD:, SETENV:, ROLE=… tags
    return cmds == "ALL"


def parse_user(text: str) -> UserFacts:
    """The output of :func:`user_command` (optionally followed by :func:`privileged_part`'s) → facts. Pure."""
    sec = _sections(text)
    pw = next((ln for ln in sec.get("passwd", []) if ln.count(":") >= 6), None)
    if pw is None:
        return UserFacts(exists=False, name=None, uid=None, gid=None, primary_group=None, groups=[], shell=None,
                         home=None, home_exists=None, password_status=None, locked=None, expired=None, sudo=None,
                         sudo_all=None, sudo_nopasswd=None, sudo_rules=[])
    parts = pw.split(":")
    try:
        uid, gid = int(parts[2]), int(parts[3])
    except ValueError as exc:
        raise ProbeError(t(f"unexpected passwd entry: {pw[:100]}", f"passwd 条目无法识别：{pw[:100]}")) from exc
    primary = next((ln.strip() for ln in sec.get("primary", []) if ln.strip()), None)
    names = " ".join(sec.get("groups", [])).split()
    groups = sorted(set(names) - {primary} if primary else set(names))
    status: str | None = None
    expired: bool | None = None
    shadow = [ln.split() for ln in sec.get("shadow", []) if ln.strip()]
    if shadow and shadow[0][0] in ("usable", "locked", "empty"):
        status = shadow[0][0]
        expired = len(shadow[0]) > 1 and shadow[0][1] == "yes"
    sudo: bool | None = None
    sudo_all: bool | None = None
    nopw: bool | None = None
    rules: list[str] = []
    if "no-sudo" in sec:
        sudo, sudo_all, nopw = False, False, False
    elif "sudo" in sec:
        sudo, sudo_all, nopw, rules = parse_sudo_list(sec["sudo"])
    return UserFacts(
        exists=True, name=parts[0], uid=uid, gid=gid, primary_group=primary, groups=groups,
        shell=parts[6].strip() or None, home=parts[5] or None, home_exists=bool(sec.get("home")),
        password_status=status,
        locked=None if status is None else status == "locked", expired=expired,
        sudo=sudo, sudo_all=sudo_all, sudo_nopasswd=nopw, sudo_rules=rules,
    )


class UserProbe(Probe):
    name = "user"
    summary = t("A user account: uid, groups, shell, home, password lock and expiry, sudo rights",
                "用户账户：uid、所属组、shell、家目录、密码锁定与过期、sudo 权限")
    Params = UserParams
    Facts = UserFacts
    requires = t("none for the account itself; root (or sudo: true in the inventory) for password status and "
                 "sudo rights", "账户本身无需特权；密码状态与 sudo 权限需 root（或在清单中设置 sudo: true）")
    example = """\
- id: user-oracle
  title: {zh-CN: oracle 用户, en: oracle user}
  probe: user
  with: {name: oracle}
  expect: {exists: true, primary_group: oinstall, groups: "contains dba", shell: /bin/bash, home_exists: true}
"""
    advice = {
        "exists": t("create the account: useradd -m -g PRIMARY -G GROUPS NAME (groupadd the groups first)",
                    "创建该账户：useradd -m -g 主组 -G 附加组 用户名（先用 groupadd 创建组）"),
        "uid": t("the vendor fixes the uid (same on every node of a cluster): usermod -u UID NAME",
                 "厂商要求固定 uid（集群各节点一致）：usermod -u UID 用户名"),
        "gid": t("set the primary group: usermod -g GROUP NAME", "设置主组：usermod -g 组名 用户名"),
        "primary_group": t("set the primary group: usermod -g GROUP NAME", "设置主组：usermod -g 组名 用户名"),
        "groups": t("add the missing supplementary groups: usermod -aG GROUP1,GROUP2 NAME (log in again)",
                    "添加缺少的附加组：usermod -aG 组1,组2 用户名（重新登录后生效）"),
        "shell": t("set the login shell: usermod -s /bin/bash NAME", "设置登录 shell：usermod -s /bin/bash 用户名"),
        "home_exists": t("create the home directory: mkdir -p HOME && chown NAME: HOME (or usermod -m -d HOME)",
                         "创建家目录：mkdir -p 目录 && chown 用户名: 目录（或 usermod -m -d 目录）"),
        "locked": t("unlock or set the password: passwd NAME (usermod -U NAME)",
                    "解锁或设置密码：passwd 用户名（usermod -U 用户名）"),
        "password_status": t("set a password: passwd NAME", "设置密码：passwd 用户名"),
        "expired": t("extend the account: chage -E -1 NAME", "延长账户有效期：chage -E -1 用户名"),
        "sudo": t("grant or remove sudo rights with a file in /etc/sudoers.d (visudo -f /etc/sudoers.d/NAME)",
                  "通过 /etc/sudoers.d 下的文件授予或收回 sudo 权限（visudo -f /etc/sudoers.d/用户名）"),
        "sudo_all": t("adjust the account's sudo rules in /etc/sudoers.d (visudo)",
                      "请在 /etc/sudoers.d 中调整该账户的 sudo 规则（visudo）"),
        "sudo_nopasswd": t("adjust the NOPASSWD tag of the account's sudo rules (visudo)",
                           "请调整该账户 sudo 规则中的 NOPASSWD 标记（visudo）"),
        "*": t("inspect the account on the host: id NAME; getent passwd NAME; sudo -l -U NAME",
               "在主机上查看该账户：id 用户名；getent passwd 用户名；sudo -l -U 用户名"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [Source.command(user_command(params.name))]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> UserFacts:
        res = data.get(self.sources(params)[0])
        if res is None or res.timed_out:
            raise ProbeError(t("looking up the account did not finish in time", "查询账户超时"))
        return parse_user(res.stdout)

    def collect(self, ctx: ProbeContext, params: Any) -> UserFacts:
        data = ctx.fetch(self.sources(params))
        res = data[self.sources(params)[0]]
        facts = self.parse(params, data)
        if facts.exists and "@@envprobe:not-root" in res.stdout and ctx.transport.sudo:
            try:
                more = ctx.run(privileged_part(params.name), privileged=True)
            except ProbeError:
                return facts  # sudo refused: stay unknown, the note says why
            if more.ok:
                return parse_user(res.stdout + "\n" + more.stdout)
        return facts

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, UserFacts)
        if not facts.exists:
            return t(f"there is no account {params.name} on this host", f"主机上没有账户 {params.name}")
        parts: list[Text] = []
        if facts.sudo is None:
            parts.append(t("sudo rights unknown: listing another account's rights (sudo -l -U) needs root — scan "
                           "as root or set sudo: true for the host",
                           "sudo 权限未知：查询其他账户的权限（sudo -l -U）需要 root——请以 root 扫描，"
                           "或为该主机设置 sudo: true"))
        if facts.password_status is None:
            parts.append(t("password status unknown: /etc/shadow is readable by root only (or the account is "
                           "not in it)", "密码状态未知：/etc/shadow 仅 root 可读（或该账户不在其中）"))
        if not parts:
            return None
        return {k: "; ".join(p[k] for p in parts) for k in ("en", "zh-CN")}


# ===========================================================================================================
# group
# ===========================================================================================================
class GroupParams(Model):
    name: str = Field(description="the group name (oinstall, dba, dmdba) or a numeric gid")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "group")


class GroupFacts(Facts):
    exists: bool = Field(description="the group exists (getent group)")
    name: str | None = Field(description="the group name")
    gid: int | None = Field(description="group id")
    members: list[str] = Field(default_factory=list, description="every member, sorted: those the group "
                               "database lists and those whose primary group it is")
    listed_members: list[str] = Field(default_factory=list, description="members as the group database lists "
                                      "them (supplementary members only)")
    primary_members: list[str] = Field(default_factory=list, description="accounts whose primary group this is "
                                       "(from the enumerable user database)")


def group_command(name: str) -> str:
    g = shlex.quote(name)
    return (
        f"echo {_MARK}group; getent group {g}; "
        f"gid=$(getent group {g} | cut -d: -f3); echo {_MARK}primary; "
        'if [ -n "$gid" ]; then getent passwd | awk -F: -v g="$gid" \'$4 == g {print $1}\'; fi'
    )


def parse_group(text: str) -> GroupFacts:
    sec = _sections(text)
    line = next((ln for ln in sec.get("group", []) if ln.count(":") >= 3), None)
    if line is None:
        return GroupFacts(exists=False, name=None, gid=None, members=[], listed_members=[], primary_members=[])
    parts = line.split(":")
    try:
        gid = int(parts[2])
    except ValueError as exc:
        raise ProbeError(t(f"unexpected group entry: {line[:100]}", f"group 条目无法识别：{line[:100]}")) from exc
    listed = sorted({m.strip() for m in parts[3].split(",") if m.strip()})
    primary = sorted({ln.strip() for ln in sec.get("primary", []) if ln.strip()})
    return GroupFacts(exists=True, name=parts[0], gid=gid, members=sorted(set(listed) | set(primary)),
                      listed_members=listed, primary_members=primary)


class GroupProbe(Probe):
    name = "group"
    summary = t("A group: gid and members (listed and by primary group)", "用户组：gid 与成员（附加成员与主组成员）")
    Params = GroupParams
    Facts = GroupFacts
    requires = t("no privileges; getent on the host", "无需特权；主机上需有 getent")
    example = """\
- id: group-dba
  title: {zh-CN: dba 组, en: dba group}
  probe: group
  with: {name: dba}
  expect: {exists: true, gid: 54322, members: "contains oracle"}
"""
    advice = {
        "exists": t("create the group: groupadd -g GID NAME", "创建该组：groupadd -g GID 组名"),
        "gid": t("the vendor fixes the gid (same on every node): groupmod -g GID NAME",
                 "厂商要求固定 gid（各节点一致）：groupmod -g GID 组名"),
        "members": t("add the account to the group: usermod -aG GROUP USER (log in again)",
                     "将账户加入该组：usermod -aG 组名 用户名（重新登录后生效）"),
        "*": t("inspect the group on the host: getent group NAME", "在主机上查看该组：getent group 组名"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [Source.command(group_command(params.name))]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> GroupFacts:
        res = data.get(self.sources(params)[0])
        if res is None or res.timed_out:
            raise ProbeError(t("looking up the group did not finish in time", "查询用户组超时"))
        return parse_group(res.stdout)

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, GroupFacts)
        if not facts.exists:
            return t(f"there is no group {params.name} on this host", f"主机上没有用户组 {params.name}")
        return None
