"""``config``: the effective value of one key in a configuration file, read the way the program reads it.

Formats (``format``; inferred from the file name when omitted: ``*.ini`` ini, ``*.properties`` properties,
``*.yaml``/``*.yml`` yaml, ``*.json`` json, ``sshd_config`` sshd, else keyvalue):

* **ini** — ``[section]`` headers; ``key = value`` or ``key: value``; full-line ``;`` and ``#`` comments and
  inline ones after whitespace (`` ; note``) unless the value is quoted; indented lines and a trailing ``\\``
  continue the value; keys and section names match case-insensitively; surrounding quotes are removed. Without
  ``section``, keys before the first header are looked at first, then the first section holding the key
  (``section`` in the facts says which). A key repeated in one section: the **last** wins (as php.ini,
  my.cnf and most readers do; ``occurrences`` shows the repeat).
* **properties** (Java ``Properties.load``) — ``#``/``!`` comments; the key ends at the first unescaped
  ``=``, ``:`` or blank; a line ending in an odd number of ``\\`` continues (leading blanks of the next line
  dropped); escapes ``\\t \\n \\r \\f \\uXXXX`` and ``\\x`` → ``x``; keys are case-sensitive; the **last**
  occurrence wins.
* **keyvalue** (postgresql.conf, redis.conf, sysconfig files …) — ``key = value`` or ``key value``; ``#``
  comments, also after the value unless inside quotes; values in single quotes (``''`` is a quote, as
  PostgreSQL writes it) or double quotes; keys match case-insensitively; ``include``, ``include_if_exists``
  and ``include_dir`` (its ``*.conf`` files in name order) are followed relative to the including file, as
  PostgreSQL does; the **last** occurrence wins, included files counting where they are included.
* **sshd** (sshd_config semantics) — keywords case-insensitive, ``Keyword value`` or ``Keyword=value``; the
  **first** occurrence wins; ``Include`` (globs, relative paths under /etc/ssh, followed where they stand,
  recursively) as sshd 8.2+ does; lines after a ``Match`` belong to that block until the next ``Match``: they do
  not set the global value, but each block's value is listed in ``match_blocks``. A keyword the files do not
  set gets OpenSSH's built-in default from :data:`SSHD_DEFAULTS` (``value_source: builtin``).
* **yaml** / **json** — ``key`` is a dotted path with list indexes: ``spring.datasource.url``,
  ``servers[0].host`` or ``servers.0.host``; a literal key containing dots (Spring's flat
  ``spring.datasource.url: …``) is found too. YAML with several documents: the first document holding the key
  answers (``occurrences`` counts them).

**Reading.** The file (and the files it includes) is read in the host's one batch as base64 (``od`` when
base64 is missing), so bytes arrive intact; files above 4 MiB are cut there. Encoding: UTF-8 (a BOM is
dropped), else GBK, else GB18030 — many Chinese ERP and MES ``.ini`` files are GBK — reported in ``encoding``;
``encoding:`` forces one. A file the login user may not read is read again as root when the host is configured
for it (``sudo: true``), else the check ends in an error that says so.

**Secrets.** A key whose name contains password, passwd, pwd, secret, token, credential, api_key/apikey,
private_key, 密码, 口令 or 密钥 has its value reported as ``***`` (``masked: true``), so a checklist can assert
that it is set (``found: true``) without the value reaching results, reports or logs. Passwords inside other
values are hidden too: ``Password=…;`` in a connection string, ``user:…@`` in a URL, secret-looking keys of a
YAML/JSON mapping. Not masked: keys that name a setting *about* passwords (PasswordAuthentication,
PermitEmptyPasswords, password_encryption, password_min_length, token_expiry, password_file …) and switch values
(yes/no/true/false/on/off/none), which are never secrets. ``reveal: true`` reports a masked value as it is, for
a key that only looks secret (``token_endpoint = https://…``) — never use it for a real secret: the value then
appears in results and reports.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import glob
import json
import os
import posixpath
import re
import shlex
from typing import Any, Literal

from envprobe.model import Text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.probes.file import shell_path
from envprobe.schema import Field, Model, field_validator, model_validator
from envprobe.transport.base import CommandResult, Source

Format = Literal["ini", "properties", "keyvalue", "sshd", "yaml", "json"]
Encoding = Literal["auto", "utf-8", "gbk", "gb18030", "latin-1"]

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 8
MASK = "***"
SECRET_KEY = re.compile(r"pass(word|wd)|pwd|secret|token|credential|api[_-]?key|private[_-]?key|密码|口令|密钥", re.I)
#: keys that name a setting about passwords rather than a password (PasswordAuthentication, password_encryption,
#: PermitEmptyPasswords, password_min_length, token_expiry, password_file …)
_SETTING_KEY = re.compile(r"authentication|encryption|empty|policy|expir|length|lifetime|complexity|hash|"
                          r"algorithm|_?file$|_?path$|command|_?min|_?max|timeout|ttl|retr", re.I)
#: values that are never a secret: a setting's switch
_NOT_SECRET_VALUES = {"yes", "no", "true", "false", "on", "off", "enabled", "disabled", "none", ""}
#: a password inside a longer value: ``Password=xx;`` in a connection string, ``user:xx@`` in a URL
_INNER_SECRET = re.compile(r"(?i)\b(password|passwd|pwd)(\s*=\s*)([^;&\s]*)")
_URL_SECRET = re.compile(r"(://[^:/@\s]+:)([^@/\s]+)(@)")
SSHD_DIR = "/etc/ssh"

#: OpenSSH's compiled-in defaults (sshd_config(5), OpenSSH 8.x-9.x portable) for keywords a checklist commonly
#: asks about, lower-cased. Distributions change several in their shipped sshd_config (UsePAM yes,
#: X11Forwarding yes, PasswordAuthentication no on some clouds) — those lines are in the file and win.
SSHD_DEFAULTS: dict[str, str] = {
    "permitrootlogin": "prohibit-password",
    "passwordauthentication": "yes",
    "pubkeyauthentication": "yes",
    "permitemptypasswords": "no",
    "kbdinteractiveauthentication": "yes",
    "challengeresponseauthentication": "yes",
    "hostbasedauthentication": "no",
    "ignorerhosts": "yes",
    "gssapiauthentication": "no",
    "kerberosauthentication": "no",
    "usepam": "no",
    "port": "22",
    "addressfamily": "any",
    "protocol": "2",
    "x11forwarding": "no",
    "allowtcpforwarding": "yes",
    "allowagentforwarding": "yes",
    "allowstreamlocalforwarding": "yes",
    "gatewayports": "no",
    "permittunnel": "no",
    "permittty": "yes",
    "permituserenvironment": "no",
    "logingracetime": "120",
    "maxauthtries": "6",
    "maxsessions": "10",
    "maxstartups": "10:30:100",
    "clientaliveinterval": "0",
    "clientalivecountmax": "3",
    "tcpkeepalive": "yes",
    "usedns": "no",
    "printmotd": "yes",
    "printlastlog": "yes",
    "strictmodes": "yes",
    "loglevel": "INFO",
    "syslogfacility": "AUTH",
    "compression": "yes",
    "banner": "none",
    "authorizedkeysfile": ".ssh/authorized_keys .ssh/authorized_keys2",
}


# ===========================================================================================================
# parameters and facts
# ===========================================================================================================
def infer_format(path: str) -> str | None:
    base = posixpath.basename(path.replace("\\", "/")).lower()
    if base.endswith(".ini") or base.endswith(".cnf"):
        return "ini"
    if base.endswith(".properties"):
        return "properties"
    if base.endswith((".yaml", ".yml")):
        return "yaml"
    if base.endswith(".json"):
        return "json"
    if base.startswith("sshd_config") or "/sshd_config.d/" in path:
        return "sshd"
    if base.endswith((".conf", ".cfg", ".env")) or "/sysconfig/" in path or base.startswith("."):
        return "keyvalue"
    return None


class ConfigParams(Model):
    path: str = Field(description="the file on the host, e.g. /etc/ssh/sshd_config, "
                                  "/var/lib/pgsql/data/postgresql.conf, /opt/erp/conf/app.ini (~ expands there)")
    format: Format | None = Field(default=None, description="ini, properties, keyvalue, sshd, yaml or json; "
                                  "inferred from the file name when omitted (.ini/.cnf, .properties, .yaml/.yml, "
                                  ".json, sshd_config, else keyvalue for .conf/.cfg)")
    key: str = Field(description="the key: PermitRootLogin, max_connections, spring.datasource.url, "
                                 "servers[0].host …")
    section: str | None = Field(default=None, description="ini only: the [section] holding the key")
    default: str | int | float | bool | None = Field(default=None, description="the value to report when the "
                                                     "key is absent (value_source is then default)")
    encoding: Encoding = Field(default="auto", description="auto (UTF-8, else GBK, else GB18030), or force "
                               "utf-8, gbk, gb18030, latin-1")
    reveal: bool = Field(default=False, description="report a secret-looking key's value instead of *** "
                         "(only for keys that merely look secret, e.g. token_endpoint; the value then appears "
                         "in results)")

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("key must not be empty")
        return v.strip()

    @model_validator(mode="after")
    def _format_known(self) -> ConfigParams:
        if self.format is None and infer_format(self.path) is None:
            raise ValueError(f"cannot tell the format of {self.path!r} from its name: give format "
                             "(ini, properties, keyvalue, sshd, yaml or json)")
        if self.section is not None and self.fmt != "ini":
            raise ValueError("section applies to format ini only")
        return self

    @property
    def fmt(self) -> str:
        return self.format or infer_format(self.path) or "keyvalue"


class ConfigFacts(Facts):
    exists: bool = Field(description="the file exists")
    found: bool = Field(description="the key is set in the file (or a file it includes); a default does not "
                                    "count")
    value: Any = Field(description="the effective value: text for ini/properties/keyvalue/sshd, the YAML/JSON "
                                   "value (number, boolean, text, list, mapping) for yaml/json; *** when masked; "
                                   "the default when not found; null when neither")
    value_source: str | None = Field(description="file, default (the check's default), builtin (sshd's "
                                                  "compiled-in default) or null")
    values: list[Any] = Field(description="every value the key takes in the file, in reading order "
                                          "(sshd: outside Match blocks; repeats show here)")
    occurrences: int = Field(description="how many times the key is set (outside sshd Match blocks)")
    line: int | None = Field(description="line number (1-based) of the effective occurrence")
    file: str | None = Field(description="the file holding the effective occurrence (an included file when "
                                         "it came from there)")
    section: str | None = Field(description="ini: the section the key was found in (null: before any section)")
    masked: bool = Field(description="the value (or a password inside it: a connection string's Password=, a "
                                     "URL's user:password@) is a secret and is reported as ***")
    encoding: str | None = Field(description="how the file was decoded: utf-8, gbk, gb18030 or latin-1")
    includes: list[str] = Field(description="files read because the file includes them, in reading order")
    match_blocks: list[dict[str, Any]] = Field(description="sshd: each Match block setting the key: "
                                                           "{match, value, file, line}")
    unread: list[str] = Field(description="included files that exist but could not be read (their settings "
                                          "are unknown)")


# ===========================================================================================================
# reading: the batched command, its output, and the same on this machine
# ===========================================================================================================
_EMIT = (
    "ep_b64() { if command -v base64 >/dev/null 2>&1; then echo b64; else echo hex; fi; }; EPENC=$(ep_b64); "
    "ep_emit() { "
    'if [ -f "$1" ] && [ -r "$1" ]; then printf \'@@file %s %s\\n\' "$EPENC" "$1"; '
    f'if [ "$EPENC" = b64 ]; then head -c {MAX_BYTES} -- "$1" | base64; '
    f'else head -c {MAX_BYTES} -- "$1" | od -An -v -tx1; fi; printf \'@@end\\n\'; '
    'elif [ -d "$1" ]; then printf \'@@dir %s\\n\' "$1"; '
    'elif [ -e "$1" ] || ls -d -- "$1" 2>&1 | grep -q "ermission denied"; then printf \'@@unreadable %s\\n\' "$1"; '
    'else printf \'@@missing %s\\n\' "$1"; fi; }; '
)
_SSHD_WALK = (
    "ep_walk() { ep_emit \"$1\"; [ \"$2\" -lt " + str(MAX_DEPTH) + " ] && [ -f \"$1\" ] && [ -r \"$1\" ] || return 0; "
    "awk '{ l=$0; sub(/^[ \\t]+/, \"\", l); if (tolower(substr(l, 1, 7)) == \"include\" && "
    "substr(l, 8, 1) ~ /[ \\t=]/) { r = substr(l, 8); gsub(/^[ \\t=]+/, \"\", r); gsub(/\"/, \"\", r); "
    "n = split(r, a, /[ \\t]+/); for (i = 1; i <= n; i++) if (a[i] != \"\") print a[i] } }' \"$1\" | "
    "while IFS= read -r p; do case $p in /*) ;; *) p=" + SSHD_DIR + "/$p;; esac; "
    'for f in $p; do [ -e "$f" ] && ep_walk "$f" $(($2 + 1)); done; done; }; '
)
_KV_WALK = (
    "ep_walk() { ep_emit \"$1\"; [ \"$2\" -lt " + str(MAX_DEPTH) + " ] && [ -f \"$1\" ] && [ -r \"$1\" ] || return 0; "
    "case $1 in */*) d=${1%/*};; *) d=.;; esac; "
    "awk '{ l=$0; if (match(l, /^[ \\t]*(include_dir|include_if_exists|include)[ \\t=]+/)) { "
    "k = l; sub(/^[ \\t]+/, \"\", k); sub(/[ \\t=].*$/, \"\", k); r = substr(l, RLENGTH + 1); "
    "q = substr(r, 1, 1); if (q == \"'\\''\" || q == \"\\\"\") { r = substr(r, 2); sub(q \".*$\", \"\", r) } "
    "else sub(/[ \\t#].*$/, \"\", r); print k \"\\t\" r } }' \"$1\" | "
    "while IFS=\"$(printf '\\t')\" read -r k p; do case $p in /*) ;; *) p=\"$d/$p\";; esac; "
    'if [ "$k" = include_dir ]; then ep_emit "$p"; for f in "$p"/*.conf; do [ -e "$f" ] && ep_walk "$f" $(($2 + 1)); '
    'done; else ep_walk "$p" $(($2 + 1)); fi; done; }; '
)


def read_command(params: Any) -> str:
    """The batched shell command: the file (and, for sshd and keyvalue, what it includes) as marked base64."""
    fmt = params.fmt
    walk = _SSHD_WALK if fmt == "sshd" else _KV_WALK if fmt == "keyvalue" else "ep_walk() { ep_emit \"$1\"; }; "
    return _EMIT + walk + f"ep_walk {shell_path(params.path)} 0"


#: (path, state, bytes): state is file, missing, unreadable or dir; bytes only for file
Emitted = list[tuple[str, str, bytes | None]]


def parse_emitted(text: str) -> Emitted:
    """The read command's output → the files in reading order."""
    out: Emitted = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("@@file "):
            _, enc, path = line.split(" ", 2)
            body: list[str] = []
            while i < len(lines) and lines[i] != "@@end":
                body.append(lines[i])
                i += 1
            i += 1
            joined = "".join("".join(body).split())
            try:
                data = base64.b64decode(joined, validate=True) if enc == "b64" else bytes.fromhex(joined)
            except (ValueError, binascii.Error):
                out.append((path, "unreadable", None))
                continue
            out.append((path, "file", data))
        else:
            for state in ("missing", "unreadable", "dir"):
                if line.startswith(f"@@{state} "):
                    out.append((line[len(state) + 3:], state, None))
    return out


def gather_native(params: Any) -> Emitted:
    """The same as the read command, on this machine, in Python (Windows and macOS included)."""
    out: Emitted = []
    fmt = params.fmt

    def emit(path: str) -> bool:
        try:
            os.stat(path)
        except PermissionError:  # a folder on the way may not be searched: unreadable, not missing
            out.append((path, "unreadable", None))
            return False
        except OSError:
            out.append((path, "missing", None))
            return False
        if os.path.isdir(path):
            out.append((path, "dir", None))
            return False
        try:
            with open(path, "rb") as fh:
                out.append((path, "file", fh.read(MAX_BYTES)))
            return True
        except OSError:
            out.append((path, "unreadable", None))
            return False

    def walk(path: str, depth: int) -> None:
        if not emit(path) or depth >= MAX_DEPTH or fmt not in ("sshd", "keyvalue"):
            return
        data = out[-1][2] or b""
        text = data.decode("latin-1")
        if fmt == "sshd":
            for pattern in _sshd_include_patterns(text):
                for f in sorted(glob.glob(pattern)):
                    walk(f, depth + 1)
        else:
            for kind, target in _kv_include_targets(text, posixpath.dirname(path)):
                if kind == "include_dir":
                    emit(target)
                    for f in sorted(glob.glob(posixpath.join(target, "*.conf"))):
                        walk(f, depth + 1)
                else:
                    walk(target, depth + 1)

    walk(os.path.expanduser(params.path), 0)
    return out


def _sshd_include_patterns(text: str) -> list[str]:
    pats: list[str] = []
    for raw in text.splitlines():
        kw, rest = _sshd_split(raw)
        if kw == "include":
            for p in _words(rest):
                pats.append(p if p.startswith("/") else posixpath.join(SSHD_DIR, p))
    return pats


_KV_INCLUDE = re.compile(r"^\s*(include_dir|include_if_exists|include)[\s=]+(.*)$")


def _kv_include_targets(text: str, base: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for raw in text.splitlines():
        m = _KV_INCLUDE.match(raw)
        if not m:
            continue
        value, _ = _kv_value(m.group(2))
        if value:
            found.append((m.group(1), value if value.startswith("/") else posixpath.join(base, value)))
    return found


def decode(data: bytes, encoding: str) -> tuple[str, str]:
    """(text, encoding used): the policy in the module docstring."""
    if encoding != "auto":
        return data.decode(encoding, errors="replace"), encoding
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8"
    for enc in ("utf-8", "gbk", "gb18030"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


# ===========================================================================================================
# format parsers: each yields occurrences (value, file, line, extra) in reading order
# ===========================================================================================================
class Hit:
    __slots__ = ("value", "file", "line", "section", "match")

    def __init__(self, value: Any, file: str, line: int, section: str | None = None, match: str | None = None):
        self.value, self.file, self.line, self.section, self.match = value, file, line, section, match


def _strip_quotes(v: str) -> str:
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    return v


def _logical_lines(text: str, indented_continuation: bool) -> list[tuple[int, str]]:
    """(first line number, joined text): a trailing backslash joins the next line; with
    ``indented_continuation`` a line indented deeper than the key line before it continues that key's value
    (Python configparser's rule), so keys that are all indented alike stay keys."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    key_indent: int | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        if pending is not None:
            start, acc = pending
            if raw.rstrip().endswith("\\"):
                pending = (start, acc + raw.strip()[:-1])
                continue
            out.append((start, acc + raw.strip()))
            pending = None
            continue
        stripped = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        if not stripped:
            key_indent = None
            out.append((n, raw))
            continue
        if stripped.startswith(("#", ";")):
            out.append((n, raw))
            continue
        if indented_continuation and key_indent is not None and indent > key_indent and out:
            ln, prev = out[-1]
            out[-1] = (ln, prev + "\n" + stripped)
            continue
        key_indent = None if stripped.startswith("[") else indent
        if stripped.endswith("\\"):
            pending = (n, stripped[:-1])
            continue
        out.append((n, raw))
    if pending is not None:
        out.append(pending)
    return out


def _inline_comment(value: str) -> str:
    """Cut a ``;``/``#`` comment that follows whitespace, unless the value is quoted."""
    v = value.strip()
    if v[:1] in ("'", '"') and v.rfind(v[0]) > 0:
        end = v.rfind(v[0])
        return v[: end + 1]
    m = re.search(r"\s[;#]", v)
    return v[: m.start()].rstrip() if m else v


def ini_hits(text: str, file: str, key: str, section: str | None) -> list[Hit]:
    hits: list[Hit] = []
    cur: str | None = None
    want_key = key.lower()
    want_sec = section.lower() if section is not None else None
    for n, line in _logical_lines(text, indented_continuation=True):
        s = line.strip()
        if not s or s[0] in ";#":
            continue
        if s.startswith("[") and "]" in s:
            cur = s[1:s.index("]")].strip()
            continue
        m = re.match(r"^([^=:]+?)\s*(?:[=:]\s*(.*))?$", s, re.S)
        if not m or m.group(1).strip().lower() != want_key:
            continue
        if want_sec is not None and (cur or "").lower() != want_sec:
            continue
        raw_value = m.group(2)
        value = _strip_quotes(_inline_comment(raw_value)) if raw_value is not None else ""
        hits.append(Hit(value, file, n, section=cur))
    if section is None and hits:
        # keys before any section first; else the first section that holds the key
        top = [h for h in hits if h.section is None]
        first_sec = hits[0].section
        hits = top or [h for h in hits if h.section == first_sec]
    return hits


_PROP_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _prop_unescape(s: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\" or i + 1 >= len(s):
            out.append(c)
            i += 1
            continue
        nxt = s[i + 1]
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", s[i + 2:i + 6] or ""):
            out.append(chr(int(s[i + 2:i + 6], 16)))
            i += 6
            continue
        out.append(_PROP_ESCAPES.get(nxt, nxt))
        i += 2
    return "".join(out)


def _prop_lines(text: str) -> list[tuple[int, str]]:
    """Java's logical lines: a line ending in an odd number of backslashes continues; the continuation's
    leading blanks are dropped; comment lines never continue."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip(" \t\f") if pending is not None else raw
        if pending is None:
            s = line.lstrip(" \t\f")
            if not s or s[0] in "#!":
                continue
            line = s
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            start, acc = pending if pending is not None else (n, "")
            pending = (start, acc + line[:-1])
            continue
        if pending is not None:
            out.append((pending[0], pending[1] + line))
            pending = None
        else:
            out.append((n, line))
    if pending is not None:
        out.append(pending)
    return out


def _prop_split(line: str) -> tuple[str, str]:
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c in "=: \t\f":
            break
        i += 1
    key = line[:i]
    rest = line[i:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return _prop_unescape(key), _prop_unescape(rest)


def properties_hits(text: str, file: str, key: str) -> list[Hit]:
    hits = []
    for n, line in _prop_lines(text):
        k, v = _prop_split(line)
        if k == key:
            hits.append(Hit(v, file, n))
    return hits


def _kv_value(rest: str) -> tuple[str, bool]:
    """A keyvalue value with quotes resolved and a trailing comment cut → (value, was quoted)."""
    r = rest.strip()
    if r[:1] == "'":
        buf: list[str] = []
        i = 1
        while i < len(r):
            if r[i] == "'" and r[i + 1:i + 2] == "'":
                buf.append("'")
                i += 2
                continue
            if r[i] == "\\" and i + 1 < len(r):
                buf.append(r[i + 1])
                i += 2
                continue
            if r[i] == "'":
                break
            buf.append(r[i])
            i += 1
        return "".join(buf), True
    if r[:1] == '"':
        end = r.find('"', 1)
        return (r[1:end] if end > 0 else r[1:]), True
    return re.split(r"\s*#", r, maxsplit=1)[0].strip(), False


_KV_LINE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:=\s*|\s+)(.*)$")


def keyvalue_hits(text: str, file: str, key: str) -> list[Hit]:
    hits = []
    want = key.lower()
    for n, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("export "):
            s = s[7:]
        m = _KV_LINE.match(s)
        if not m or m.group(1).lower() != want:
            continue
        value, _ = _kv_value(m.group(2))
        hits.append(Hit(value, file, n))
    return hits


def _sshd_split(raw: str) -> tuple[str | None, str]:
    s = raw.strip()
    if not s or s.startswith("#"):
        return None, ""
    m = re.match(r"^(\S+?)(?:\s*=\s*|\s+)(.*)$", s)
    if not m:
        return s.lower(), ""
    return m.group(1).lower(), m.group(2).strip()


def _words(rest: str) -> list[str]:
    try:
        return shlex.split(rest, comments=False, posix=True)
    except ValueError:
        return rest.split()


def _glob_match(pattern: str, path: str) -> bool:
    """glob(3)-style matching: ``*`` and ``?`` never cross a ``/``."""
    p_parts, f_parts = pattern.split("/"), path.split("/")
    if len(p_parts) != len(f_parts):
        return False
    return all(fnmatch.fnmatchcase(f, p) for p, f in zip(p_parts, f_parts, strict=True))


def sshd_hits(files: dict[str, bytes | None], main: str, key: str, decoder: Any,
              includes: list[str]) -> tuple[list[Hit], list[Hit]]:
    """(global occurrences, Match-block occurrences) following Include where it stands."""
    want = key.lower()
    glob_hits: list[Hit] = []
    match_hits: list[Hit] = []
    state: dict[str, str | None] = {"match": None}

    stack: list[str] = []

    def walk(path: str, depth: int) -> None:
        data = files.get(path)
        if data is None or path in stack:  # a file including itself: sshd refuses it; read it once
            return
        stack.append(path)
        text = decoder(data)
        for n, raw in enumerate(text.splitlines(), 1):
            kw, rest = _sshd_split(raw)
            if kw is None:
                continue
            if kw == "match":
                state["match"] = " ".join(rest.split()) or None
                if state["match"] and state["match"].lower() == "all":
                    state["match"] = None  # "Match all" returns to the global scope
                continue
            if kw == "include" and depth < MAX_DEPTH:
                for pat in _words(rest):
                    full = pat if pat.startswith("/") else posixpath.join(SSHD_DIR, pat)
                    for f in sorted(p for p in files if _glob_match(full, p)):
                        if f not in includes:
                            includes.append(f)
                        outer = state["match"]
                        walk(f, depth + 1)
                        state["match"] = outer  # a Match block in an included file ends with that file
                continue
            if kw == want:
                words = _words(rest)
                value = " ".join(words) if words else rest
                hit = Hit(value, path, n, match=state["match"])
                (match_hits if state["match"] else glob_hits).append(hit)
        stack.pop()

    walk(main, 0)
    return glob_hits, match_hits


def keyvalue_with_includes(files: dict[str, bytes | None], order: list[str], main: str, key: str, decoder: Any,
                           includes: list[str]) -> list[Hit]:
    """Occurrences in reading order, included files counted where their include line stands (PostgreSQL)."""
    hits: list[Hit] = []
    stack: list[str] = []

    def walk(path: str, depth: int) -> None:
        data = files.get(path)
        if data is None or path in stack:  # a file including itself: PostgreSQL refuses it; read it once
            return
        stack.append(path)
        text = decoder(data)
        own = {h.line: h for h in keyvalue_hits(text, path, key)}
        base = posixpath.dirname(path)
        for n, raw in enumerate(text.splitlines(), 1):
            if n in own:
                hits.append(own[n])
                continue
            m = _KV_INCLUDE.match(raw)
            if not m or depth >= MAX_DEPTH:
                continue
            value, _ = _kv_value(m.group(2))
            if not value:
                continue
            target = value if value.startswith("/") else posixpath.join(base, value)
            if m.group(1) == "include_dir":
                members = sorted(p for p in order if posixpath.dirname(p) == target.rstrip("/")
                                 and p.endswith(".conf") and not posixpath.basename(p).startswith("."))
                for f in members:
                    if f not in includes:
                        includes.append(f)
                    walk(f, depth + 1)
            elif target in files:
                if target not in includes:
                    includes.append(target)
                walk(target, depth + 1)
        stack.pop()

    walk(main, 0)
    return hits


# -- yaml / json ----------------------------------------------------------------------------------------
def split_path(key: str) -> list[str | int]:
    """``servers[0].host`` / ``servers.0.host`` → ["servers", 0, "host"] (digits become indexes only where a
    list is met; see :func:`lookup`)."""
    parts: list[str | int] = []
    for piece in re.findall(r"[^.\[\]]+|\[\d+\]", key):
        if piece.startswith("["):
            parts.append(int(piece[1:-1]))
        else:
            parts.append(piece)
    return parts


_NOT_FOUND = object()


def lookup(node: Any, parts: list[str | int]) -> Any:
    """Walk a parsed YAML/JSON value; a mapping may hold a literal dotted key (``spring.datasource.url``), so
    the longest literal prefix is tried first. Returns ``_NOT_FOUND`` when the path leads nowhere."""
    if not parts:
        return node
    if isinstance(node, list):
        head = parts[0]
        idx = head if isinstance(head, int) else int(head) if isinstance(head, str) and head.isdigit() else None
        if idx is None or not -len(node) <= idx < len(node):
            return _NOT_FOUND
        return lookup(node[idx], parts[1:])
    if isinstance(node, dict):
        for cut in range(len(parts), 0, -1):
            if not all(isinstance(p, str) for p in parts[:cut]):
                continue
            literal = ".".join(str(p) for p in parts[:cut])
            for k in (literal, _maybe_int(literal)):
                if k in node:
                    found = lookup(node[k], parts[cut:])
                    if found is not _NOT_FOUND:
                        return found
        return _NOT_FOUND
    return _NOT_FOUND


def _maybe_int(s: str) -> Any:
    return int(s) if s.isdigit() else s


def _yaml_line(text: str, parts: list[str | int], doc_index: int) -> int | None:
    """Best effort: the line of the value node, from PyYAML's node marks."""
    import yaml

    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    if doc_index >= len(nodes):
        return None

    def walk(node: Any, rest: list[str | int]) -> Any:
        if not rest:
            return node
        if isinstance(node, yaml.SequenceNode):
            head = rest[0]
            idx = head if isinstance(head, int) else int(head) if str(head).isdigit() else None
            if idx is None or not 0 <= idx < len(node.value):
                return None
            return walk(node.value[idx], rest[1:])
        if isinstance(node, yaml.MappingNode):
            for cut in range(len(rest), 0, -1):
                literal = ".".join(str(p) for p in rest[:cut])
                for k_node, v_node in node.value:
                    if isinstance(k_node, yaml.ScalarNode) and k_node.value == literal:
                        found = walk(v_node, rest[cut:])
                        if found is not None:
                            return found
        return None

    found = walk(nodes[doc_index], parts)
    return found.start_mark.line + 1 if found is not None else None


def structured_hits(text: str, file: str, key: str, fmt: str) -> list[Hit]:
    import yaml

    parts = split_path(key)
    if fmt == "json":
        try:
            docs = [json.loads(text)]
        except ValueError as exc:
            raise ProbeError(t(f"{file} is not valid JSON: {exc}", f"{file} 不是有效的 JSON：{exc}")) from None
    else:
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" (line {where.line + 1})" if where is not None else ""
            raise ProbeError(t(f"{file} is not valid YAML{at}: {getattr(exc, 'problem', exc)}",
                               f"{file} 不是有效的 YAML{at}：{getattr(exc, 'problem', exc)}")) from None
    hits = []
    for i, doc in enumerate(docs):
        found = lookup(doc, parts)
        if found is not _NOT_FOUND:
            hits.append(Hit(found, file, _yaml_line(text, parts, i) or 0))
    return hits


# ===========================================================================================================
# evaluation
# ===========================================================================================================
def is_secret_key(key: str) -> bool:
    """A key that holds a secret: its name says password/secret/token/… and not a setting about one."""
    leaf = re.split(r"[.\[\]]", key.strip("]"))[-1] or key
    return bool(SECRET_KEY.search(leaf)) and not _SETTING_KEY.search(leaf)


def _mask(v: Any) -> Any:
    if v is None or (isinstance(v, (str, bool)) and str(v).strip().lower() in _NOT_SECRET_VALUES):
        return v
    return MASK


def scrub(v: Any) -> tuple[Any, bool]:
    """Hide passwords embedded in a value (connection strings, URLs with credentials): (value, changed)."""
    if isinstance(v, str):
        out = _URL_SECRET.sub(lambda m: m.group(1) + MASK + m.group(3), v)
        out = _INNER_SECRET.sub(lambda m: m.group(1) + m.group(2) + MASK, out)
        return out, out != v
    if isinstance(v, list):
        pairs = [scrub(x) for x in v]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    if isinstance(v, dict):
        changed = False
        out_d: dict[Any, Any] = {}
        for k, x in v.items():
            if isinstance(k, str) and is_secret_key(k):
                out_d[k], changed = _mask(x), True
            else:
                out_d[k], c = scrub(x)
                changed = changed or c
        return out_d, changed
    return v, False


def config_facts(params: Any, emitted: Emitted) -> ConfigFacts:
    """The facts from the files read (pure)."""
    main = emitted[0] if emitted else (params.path, "missing", None)
    path, state, _ = main
    if state == "missing":
        return _facts(params, exists=False, hits=[], encoding=None, includes=[], match_hits=[], unread=[])
    if state == "dir":
        raise ProbeError(t(f"{path} is a directory, not a configuration file", f"{path} 是目录，不是配置文件"))
    if state == "unreadable":
        raise ProbeError(t(f"{path} exists but cannot be read by the login user", f"{path} 存在，但登录用户无权读取"),
                         hint=t("set `sudo: true` for the host in the inventory (the file is then read as root), "
                                "or grant read access", "在清单中为该主机设置 `sudo: true`（将以 root 读取），"
                                "或授予读取权限"))
    files: dict[str, bytes | None] = {p: d for p, s, d in emitted if s == "file"}
    order = [p for p, s, _ in emitted if s == "file"]
    encodings: list[str] = []

    def decoder(data: bytes) -> str:
        text, enc = decode(data, params.encoding)
        encodings.append(enc)
        return text

    fmt = params.fmt
    includes: list[str] = []
    match_hits: list[Hit] = []
    if fmt == "sshd":
        hits, match_hits = sshd_hits(files, path, params.key, decoder, includes)
    elif fmt == "keyvalue":
        hits = keyvalue_with_includes(files, order, path, params.key, decoder, includes)
    else:
        text = decoder(files[path] or b"")
        if fmt == "ini":
            hits = ini_hits(text, path, params.key, params.section)
        elif fmt == "properties":
            hits = properties_hits(text, path, params.key)
        else:
            hits = structured_hits(text, path, params.key, fmt)
    main_enc = encodings[0] if encodings else None
    unread = [p for p, s, _ in emitted[1:] if s == "unreadable"]
    return _facts(params, exists=True, hits=hits, encoding=main_enc, includes=includes, match_hits=match_hits,
                  unread=unread)


def _plain(v: Any) -> Any:
    """YAML dates and timestamps as ISO text, so every value serialises."""
    import datetime as _dt

    if isinstance(v, (_dt.date, _dt.datetime, _dt.time)):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k) if not isinstance(k, (str, int, float, bool)) else k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _facts(params: Any, exists: bool, hits: list[Hit], encoding: str | None, includes: list[str],
           match_hits: list[Hit], unread: list[str]) -> ConfigFacts:
    fmt = params.fmt
    secret = is_secret_key(params.key) and not params.reveal
    eff: Hit | None = None
    if hits:
        eff = hits[0] if fmt in ("sshd", "yaml", "json") else hits[-1]
    value: Any
    if eff is not None:
        value, source = _plain(eff.value), "file"
    elif params.default is not None:
        value, source = params.default, "default"
    elif fmt == "sshd" and params.key.lower() in SSHD_DEFAULTS and exists:
        value, source = SSHD_DEFAULTS[params.key.lower()], "builtin"
    else:
        value, source = None, None
    masked = secret and source == "file" and _mask(value) != value
    if masked:
        value = _mask(value)
    elif not params.reveal:
        value, masked = scrub(value)

    def shown(v: Any) -> Any:
        return _mask(v) if secret else (v if params.reveal else scrub(v)[0])

    return ConfigFacts(
        exists=exists, found=eff is not None,
        value=value, value_source=source,
        values=[shown(_plain(h.value)) for h in hits],
        occurrences=len(hits), line=eff.line if eff else None, file=eff.file if eff else None,
        section=eff.section if eff else None, masked=masked, encoding=encoding, includes=includes,
        match_blocks=[{"match": h.match, "value": shown(h.value), "file": h.file,
                       "line": h.line} for h in match_hits],
        unread=unread,
    )


class ConfigProbe(Probe):
    name = "config"
    summary = t("A key's effective value in a configuration file (ini, properties, keyvalue, sshd, yaml, json)",
                "配置文件中某个键的生效值（ini、properties、keyvalue、sshd、yaml、json）")
    Params = ConfigParams
    Facts = ConfigFacts
    requires = t("read access to the file (with `sudo: true` an unreadable file is read as root); base64 or od, "
                 "head, awk on the host",
                 "需对文件有读权限（设置 `sudo: true` 时无权读取的文件将以 root 读取）；主机需有 base64 或 od、"
                 "head、awk")
    example = """\
- id: sshd-root-login
  title: {zh-CN: 禁止 root 通过 SSH 密码登录, en: No root password login over SSH}
  probe: config
  with: {path: /etc/ssh/sshd_config, format: sshd, key: PermitRootLogin}
  expect: {value: "in [no, prohibit-password, without-password]"}
"""
    advice = {
        "exists": t("the file is missing: check the path and the installation step that writes it",
                    "文件不存在：请核对路径以及写入该文件的安装步骤"),
        "found": t("add the key to the file (in the right section) and restart or reload the program that "
                   "reads it", "在文件中（正确的段内）添加该键，并重启或重新加载读取它的程序"),
        "value": t("change the key's value in the file shown (file, line) and reload the program "
                   "(sshd: sshd -t && systemctl reload sshd; PostgreSQL: SELECT pg_reload_conf() or restart)",
                   "在所示文件和行号处修改该键的值，并重新加载程序（sshd：sshd -t && systemctl reload sshd；"
                   "PostgreSQL：SELECT pg_reload_conf() 或重启）"),
        "occurrences": t("the key is set more than once: remove the duplicates so the effective line is clear",
                         "该键被重复设置：请删除重复项，使生效的配置一目了然"),
        "*": t("open the file on the host and check the key", "请在主机上打开该文件核对该键"),
    }

    def sources(self, params: Any) -> list[Source]:
        return [Source.command(read_command(params))]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> ConfigFacts:
        res = data.get(Source.command(read_command(params)))
        if res is None or res.timed_out:
            raise ProbeError(t(f"reading {params.path} on the host did not finish",
                               f"在主机上读取 {params.path} 未完成"))
        emitted = parse_emitted(res.stdout)
        if not emitted:
            why = (res.stderr.strip().splitlines() or [f"exit status {res.rc}"])[0][:200]
            raise ProbeError(t(f"could not read {params.path} on the host ({why})",
                               f"无法读取主机上的 {params.path}（{why}）"))
        return config_facts(params, emitted)

    def collect(self, ctx: ProbeContext, params: Any) -> Model:
        if ctx.prefer_native:
            emitted = gather_native(params)
        else:
            res = ctx.fetch(self.sources(params))
            emitted = parse_emitted(next(iter(res.values())).stdout)
            if not emitted:
                return self.parse(params, res)
        if any(state == "unreadable" for _, state, _ in emitted):
            # read again as root (directly, or through the host's sudo settings). When the file itself is
            # unreadable and root cannot be had, that is a clean error; an unreadable included file only is
            # reported in `unread`.
            try:
                priv = ctx.run(read_command(params), privileged=True)
            except ProbeError:
                if emitted[0][1] == "unreadable":
                    raise
            else:
                if priv.ok and parse_emitted(priv.stdout):
                    emitted = parse_emitted(priv.stdout)
        return config_facts(params, emitted)

    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> ConfigFacts:
        return config_facts(params, gather_native(params))

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, ConfigFacts)
        if not facts.exists:
            return t(f"{params.path} does not exist on the host", f"主机上不存在 {params.path}")
        parts: list[str] = []
        zh: list[str] = []
        if facts.value_source == "builtin":
            parts.append(f"{params.key} is not set in the file: sshd uses its built-in default {facts.value}")
            zh.append(f"文件中未设置 {params.key}：sshd 使用内置默认值 {facts.value}")
        elif facts.value_source == "default":
            parts.append(f"{params.key} is not set in the file: the check's default applies")
            zh.append(f"文件中未设置 {params.key}：按检查项给定的默认值处理")
        elif not facts.found:
            parts.append(f"{params.key} is not set in {params.path}")
            zh.append(f"{params.path} 中未设置 {params.key}")
        else:
            if facts.file and facts.line:
                parts.append(f"set at {facts.file}:{facts.line}")
                zh.append(f"位于 {facts.file}:{facts.line}")
            if facts.occurrences > 1:
                first = params.fmt in ("sshd", "yaml", "json")
                parts.append(f"set {facts.occurrences} times, {'the first' if first else 'the last'} wins")
                zh.append(f"共设置 {facts.occurrences} 次，以{'第一' if first else '最后一'}处为准")
        if facts.match_blocks:
            parts.append(f"also set in {len(facts.match_blocks)} Match block(s)")
            zh.append(f"另有 {len(facts.match_blocks)} 个 Match 块设置了该键")
        if facts.masked:
            parts.append("value masked (secret)")
            zh.append("值已隐藏（敏感信息）")
        if facts.unread:
            names = ", ".join(facts.unread)
            parts.append(f"included but unreadable (settings unknown): {names}")
            zh.append(f"被包含但无法读取（其中的设置未知）：{names}")
        return t("; ".join(parts), "；".join(zh)) if parts else None
