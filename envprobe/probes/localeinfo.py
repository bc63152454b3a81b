"""``locale``: the LANG / LC_* settings a login session on the host gets, and the locales installed there.

A remote command never sees a login session's locale: envprobe runs its commands with ``LC_ALL=C`` so their
output parses, and an SSH exec channel is not a login anyway. So the probe rebuilds what a person logging in
would get, in the host's one batch:

1. the system's locale file — ``/etc/locale.conf`` (RHEL/CentOS 7+, openEuler, Kylin, UOS, Arch),
   ``/etc/default/locale`` (Debian, Ubuntu: applied by pam_env), ``/etc/sysconfig/i18n`` (CentOS 6) — and
   ``/etc/environment`` (pam_env);
2. on top, what the account's login shell sets: the shell (``$SHELL`` when it is a Bourne-family shell, else
   ``/bin/sh``) runs as a login shell (``-l``: /etc/profile, /etc/profile.d/*.sh, ~/.bash_profile or
   ~/.profile) with every locale variable unset, stdin closed and at most 5 s, and prints the LANG/LC_*
   variables it ends with.

``available`` is ``locale -a`` as printed; ``available_normalised`` writes the code set the way people write it
(``zh_CN.utf8`` → ``zh_CN.UTF-8``, ``zh_CN.gb18030`` → ``zh_CN.GB18030``), so ``available_normalised:
"contains zh_CN.UTF-8"`` holds whichever spelling the host uses. ``name`` (a parameter) is matched the same
tolerant way into ``has_name``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.probes.system import maybe_text
from envprobe.schema import Field, Model
from envprobe.transport.base import CommandResult, Source

#: Every locale variable a session may carry, in the order ``locale`` prints them.
VARIABLES = ("LANG", "LANGUAGE", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY",
             "LC_MESSAGES", "LC_PAPER", "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT",
             "LC_IDENTIFICATION", "LC_ALL")
MARK = "@@envprobe-locale"

#: The login shell's view: locale variables unset, the account's login shell as a login shell, its
#: variables printed after a marker (profile scripts may print banners before it).
SESSION = Source.command(
    "unset " + " ".join(VARIABLES) + "; "
    's=${SHELL:-/bin/sh}; case "$s" in */bash|*/sh|*/dash|*/zsh|*/ksh|*/ksh93|*/mksh|*/ash) ;; *) s=/bin/sh;; esac; '
    '[ -x "$s" ] || s=/bin/sh; '
    "T=; command -v timeout >/dev/null 2>&1 && T='timeout -k 1 5'; "
    "$T \"$s\" -l -c '"
    f"printf \"\\n%s\\n\" {MARK}; "
    "for v in " + " ".join(VARIABLES) + "; do "
    "eval \"x=\\${$v+set}\"; "
    "if [ \"$x\" = set ]; then eval \"printf \\\"%s=%s\\\\n\\\" $v \\\"\\$$v\\\"\"; fi; done' "
    "</dev/null 2>/dev/null"
)
LOCALE_A = Source.command("locale -a")
LOCALE_CONF = Source.file("/etc/locale.conf")
DEFAULT_LOCALE = Source.file("/etc/default/locale")
SYSCONFIG_I18N = Source.file("/etc/sysconfig/i18n")
ENVIRONMENT = Source.file("/etc/environment")

#: Code sets as people write them, keyed by glibc's normalised form (lower case, letters and digits only).
_CODESETS = {
    "utf8": "UTF-8", "gbk": "GBK", "gb18030": "GB18030", "gb2312": "GB2312", "big5": "BIG5",
    "big5hkscs": "BIG5-HKSCS", "eucjp": "EUC-JP", "euckr": "EUC-KR", "euctw": "EUC-TW",
    "euccn": "EUC-CN", "sjis": "SHIFT_JIS", "shiftjis": "SHIFT_JIS", "koi8r": "KOI8-R", "koi8u": "KOI8-U",
    "cp1251": "CP1251", "tis620": "TIS-620", "ascii": "ANSI_X3.4-1968", "ansix341968": "ANSI_X3.4-1968",
}


def normalise(name: str) -> str:
    """A locale name with its code set written one way: ``zh_CN.utf8`` and ``zh_CN.UTF-8`` → ``zh_CN.UTF-8``;
    ``en_US.iso88591`` → ``en_US.ISO-8859-1``; ``C.utf8`` → ``C.UTF-8``; names without a code set unchanged."""
    name = name.strip()
    m = re.match(r"^([^.@]+)(?:\.([^@]*))?(@.*)?$", name)
    if not m or m.group(2) is None:
        return name
    base, codeset, modifier = m.group(1), m.group(2), m.group(3) or ""
    key = re.sub(r"[^0-9a-z]", "", codeset.lower())
    canon = _CODESETS.get(key)
    if canon is None:
        iso = re.fullmatch(r"iso8859(\d+)", key)
        canon = f"ISO-8859-{iso.group(1)}" if iso else codeset.upper()
    return f"{base}.{canon}{modifier}"


def codeset_of(name: str | None) -> str | None:
    """The normalised code set of a locale name (``UTF-8``, ``GB18030`` …); None when it names none."""
    if not name:
        return None
    norm = normalise(name)
    m = re.match(r"^[^.@]+\.([^@]+)", norm)
    return m.group(1) if m else None


def parse_assignments(text: str) -> dict[str, str]:
    """``KEY=value`` / ``KEY="value"`` / ``export KEY=value`` lines (locale.conf, default/locale, i18n,
    /etc/environment) → the locale variables among them."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or key not in VARIABLES:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


def parse_session(text: str) -> dict[str, str] | None:
    """The login shell's output → its locale variables; None when the marker never came (the shell failed)."""
    _, sep, rest = text.partition(f"\n{MARK}\n")
    if not sep:
        if text.startswith(f"{MARK}\n"):
            rest = text[len(MARK) + 1:]
        else:
            return None
    out: dict[str, str] = {}
    for line in rest.splitlines():
        key, sep2, value = line.partition("=")
        if sep2 and key in VARIABLES:
            out[key] = value
    return out


def parse_locale_a(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class LocaleParams(Model):
    name: str | None = Field(default=None, description="a locale that must be installed, e.g. zh_CN.UTF-8 "
                             "(matched tolerantly: zh_CN.utf8 counts); the answer is in has_name")


class LocaleFacts(Facts):
    lang: str | None = Field(description="LANG a login session gets (null when unset)")
    language: str | None = Field(description="LANGUAGE (GNU message-language list), null when unset")
    lc_all: str | None = Field(description="LC_ALL (overrides every other setting), null when unset")
    lc_ctype: str | None = Field(description="LC_CTYPE as set (null when unset: LANG applies)")
    lc_messages: str | None = Field(description="LC_MESSAGES as set (null when unset)")
    lc_time: str | None = Field(description="LC_TIME as set (null when unset)")
    lc_numeric: str | None = Field(description="LC_NUMERIC as set (null when unset)")
    lc_collate: str | None = Field(description="LC_COLLATE as set (null when unset)")
    ctype: str = Field(description="the character-type locale in effect: LC_ALL, else LC_CTYPE, else LANG, "
                                   "else C")
    messages: str = Field(description="the message locale in effect: LC_ALL, else LC_MESSAGES, else LANG, "
                                      "else C")
    codeset: str | None = Field(description="the code set of ctype, written one way: UTF-8, GB18030, GBK … "
                                            "(null when ctype names none, e.g. C or zh_CN)")
    utf8: bool = Field(description="ctype's code set is UTF-8")
    source: str = Field(description="where the session's values come from: login-shell (a profile script "
                                    "set them), the system file (/etc/locale.conf, /etc/default/locale, "
                                    "/etc/sysconfig/i18n, /etc/environment), or unset (nothing sets a locale: "
                                    "programs run in C)")
    system_lang: str | None = Field(description="LANG in the system's locale file (what localectl / "
                                                "update-locale set); null when none")
    available: list[str] = Field(description="installed locales, as locale -a prints them (zh_CN.utf8, C.utf8 …)")
    available_normalised: list[str] = Field(description="the same with code sets written one way "
                                                        "(zh_CN.UTF-8, C.UTF-8, zh_CN.GB18030)")
    ctype_available: bool | None = Field(description="the ctype locale is installed (C and POSIX always are); "
                                                     "false means programs fall back to C with warnings; null "
                                                     "when locale -a could not run")
    has_zh_cn_utf8: bool = Field(description="zh_CN.UTF-8 (in any spelling) is installed")
    has_name: bool | None = Field(description="the locale given as the name parameter is installed (null when "
                                              "no name is given)")


def _installed(name: str, normalised: set[str]) -> bool:
    if name in ("C", "POSIX"):
        return True
    return normalise(name) in normalised


def locale_facts(params: Any, session: dict[str, str] | None, files: list[tuple[str, str | None]],
                 available: list[str] | None) -> LocaleFacts:
    """Facts from the login shell's variables, the system files ((path, text or None) in the order they
    apply) and ``locale -a`` (None when it could not run)."""
    values: dict[str, str] = {}
    system_lang: str | None = None
    file_source: str | None = None
    for path, text in files:
        if text is None:
            continue
        found = parse_assignments(text)
        if found:
            values.update(found)
            file_source = file_source or path
            if "LANG" in found and path != "/etc/environment":
                system_lang = found["LANG"]
    source = file_source or "unset"
    if session:
        changed = {k: v for k, v in session.items() if values.get(k) != v}
        if changed:
            source = "login-shell"
        values.update(session)

    def get(key: str) -> str | None:
        v = values.get(key)
        return v if v else None

    ctype = get("LC_ALL") or get("LC_CTYPE") or get("LANG") or "C"
    messages = get("LC_ALL") or get("LC_MESSAGES") or get("LANG") or "C"
    codeset = codeset_of(ctype)
    avail = available or []
    normalised = sorted(dict.fromkeys(normalise(a) for a in avail))
    norm_set = set(normalised)
    return LocaleFacts(
        lang=get("LANG"), language=get("LANGUAGE"), lc_all=get("LC_ALL"), lc_ctype=get("LC_CTYPE"),
        lc_messages=get("LC_MESSAGES"), lc_time=get("LC_TIME"), lc_numeric=get("LC_NUMERIC"),
        lc_collate=get("LC_COLLATE"), ctype=ctype, messages=messages, codeset=codeset,
        utf8=codeset == "UTF-8", source=source, system_lang=system_lang, available=avail,
        available_normalised=normalised,
        ctype_available=_installed(ctype, norm_set) if available is not None else None,
        has_zh_cn_utf8="zh_CN.UTF-8" in norm_set,
        has_name=_installed(params.name, norm_set) if params.name else None,
    )


class LocaleProbe(Probe):
    name = "locale"
    summary = t("Locale: LANG / LC_* a login session gets, the code set in effect, installed locales",
                "区域设置：登录会话的 LANG / LC_*、生效的字符集、已安装的 locale")
    Params = LocaleParams
    Facts = LocaleFacts
    requires = t("no privileges; reads /etc/locale.conf, /etc/default/locale, /etc/sysconfig/i18n and "
                 "/etc/environment, runs the account's login shell once (its profile scripts, at most 5 s) "
                 "and locale -a",
                 "无需特权；读取 /etc/locale.conf、/etc/default/locale、/etc/sysconfig/i18n 与 /etc/environment，"
                 "以登录方式运行一次该账号的 shell（执行其 profile 脚本，最多 5 秒）并运行 locale -a")
    example = """\
- id: locale-utf8
  title: {zh-CN: 系统字符集为 UTF-8 且已安装中文 locale, en: UTF-8 locale and Chinese locale installed}
  probe: locale
  with: {name: zh_CN.UTF-8}
  expect: {utf8: true, ctype_available: true, has_name: true}
"""
    advice = {
        "lang": t("set the system locale: localectl set-locale LANG=zh_CN.UTF-8 (RHEL family, Kylin, UOS, "
                  "openEuler) or update-locale LANG=zh_CN.UTF-8 (Debian, Ubuntu), then log in again",
                  "设置系统 locale：localectl set-locale LANG=zh_CN.UTF-8（RHEL 系、麒麟、统信、欧拉）或 "
                  "update-locale LANG=zh_CN.UTF-8（Debian、Ubuntu），然后重新登录"),
        "utf8": t("the session does not run in UTF-8: set LANG to a .UTF-8 locale (localectl set-locale or "
                  "update-locale) and check profile scripts that override it (grep -r LANG /etc/profile.d)",
                  "会话字符集不是 UTF-8：将 LANG 设为 .UTF-8 的 locale（localectl set-locale 或 update-locale），"
                  "并检查覆盖它的 profile 脚本（grep -r LANG /etc/profile.d）"),
        "codeset": t("set LANG/LC_ALL to a locale with the required code set and log in again",
                     "将 LANG/LC_ALL 设为所需字符集的 locale，然后重新登录"),
        "ctype_available": t("the locale in use is not installed: install it (dnf install glibc-langpack-zh, "
                             "or localedef -i zh_CN -f UTF-8 zh_CN.UTF-8; Debian: dpkg-reconfigure locales)",
                             "当前使用的 locale 未安装：请安装（dnf install glibc-langpack-zh，或 "
                             "localedef -i zh_CN -f UTF-8 zh_CN.UTF-8；Debian：dpkg-reconfigure locales）"),
        "has_zh_cn_utf8": t("install the Chinese locale: dnf install glibc-langpack-zh (RHEL 8+, openEuler, "
                            "Kylin), localedef -i zh_CN -f UTF-8 zh_CN.UTF-8, or on Debian/Ubuntu enable "
                            "zh_CN.UTF-8 in /etc/locale.gen and run locale-gen",
                            "安装中文 locale：dnf install glibc-langpack-zh（RHEL 8+、欧拉、麒麟），"
                            "localedef -i zh_CN -f UTF-8 zh_CN.UTF-8，或在 Debian/Ubuntu 的 /etc/locale.gen "
                            "中启用 zh_CN.UTF-8 后运行 locale-gen"),
        "has_name": t("install the locale (localedef -i LANG_TERRITORY -f CODESET NAME, a glibc-langpack "
                      "package, or locale-gen on Debian/Ubuntu)",
                      "请安装该 locale（localedef -i 语言_地区 -f 字符集 名称、glibc-langpack 软件包，"
                      "或在 Debian/Ubuntu 上用 locale-gen）"),
        "*": t("check with locale and locale -a in a login session on the host",
               "请在主机的登录会话中用 locale 与 locale -a 核查"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [LOCALE_CONF, SYSCONFIG_I18N, ENVIRONMENT, DEFAULT_LOCALE, SESSION, LOCALE_A]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> LocaleFacts:
        res = data.get(SESSION)
        session = parse_session(res.stdout) if res is not None and not res.timed_out else None
        files = [(src.target, maybe_text(data, src))
                 for src in (LOCALE_CONF, SYSCONFIG_I18N, ENVIRONMENT, DEFAULT_LOCALE)]
        listed = maybe_text(data, LOCALE_A)
        return locale_facts(params, session, files, parse_locale_a(listed) if listed is not None else None)

    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> LocaleFacts:
        if os.name != "posix":
            raise ProbeError(t("the locale probe reads POSIX locale settings (LANG, LC_*, locale -a); this "
                               "machine is not a POSIX system", "locale 探针读取 POSIX 区域设置（LANG、LC_*、"
                               "locale -a）；本机不是 POSIX 系统"),
                             hint=t("on Windows check the system locale in Control Panel › Region "
                                    "(Get-WinSystemLocale in PowerShell)",
                                    "Windows 上请在 控制面板 › 区域 中查看系统区域设置"
                                    "（PowerShell：Get-WinSystemLocale）"))
        return self.parse(params, ctx.fetch(self.sources(params)))

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, LocaleFacts)
        if facts.ctype_available is False:
            return t(f"the session's locale {facts.ctype} is not installed (not in locale -a): programs fall "
                     "back to C", f"会话使用的 locale {facts.ctype} 未安装（不在 locale -a 中）：程序将回退到 C")
        if facts.source == "unset":
            return t("nothing sets a locale for login sessions: programs run in C (ASCII)",
                     "登录会话未设置任何 locale：程序将以 C（ASCII）运行")
        return None
