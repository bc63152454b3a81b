"""``file``: a file or directory: existence, type, permissions, owner, size, age, checksum and content.

``type`` and ``link_target`` describe the path itself; for a symlink every other fact (mode, owner, size,
sha256, content) describes what it points to, as ``cat`` and ``stat -L`` would. The checksum is streamed
(never the whole file in memory) and skipped above ``max_hash_mb``; ``contains`` and ``matches`` search the
first 16 MiB of the file, decoded as UTF-8 (bytes that are not UTF-8 never match).

Native path: ``os.stat`` / ``pwd`` / ``grp`` / ``hashlib``. Shell path: ``stat -c`` (GNU coreutils or
BusyBox), ``sha256sum`` and ``head -c``, in one command.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import shlex
import stat as _stat
from typing import Any, Literal

from envprobe.model import Text, join_text, t
from envprobe.probes.base import Facts, Probe, ProbeContext, ProbeError
from envprobe.schema import Field, Model, field_validator
from envprobe.transport.base import CommandResult, Source

#: contains / matches look at this much of the file.
MAX_CONTENT = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_MARK = "@@envprobe:"
_STAT_FMT = "%a %u %U %g %G %s %Y %F"
_TILDE_USER = re.compile(r"^~([A-Za-z0-9._][A-Za-z0-9._-]*)(/.*)?$")

FileType = Literal["file", "directory", "symlink", "other"]


class FileParams(Model):
    path: str = Field(description="absolute path on the host; ~ and ~user are expanded there "
                      "(e.g. /etc/my.cnf, ~/app/config.yaml, C:\\app\\app.ini on Windows)")
    contains: str | None = Field(default=None, description="text the file must contain (plain substring, "
                                 "case-sensitive); the result is in content_match")
    matches: str | None = Field(default=None, description="regular expression searched in the file "
                                "(multi-line: ^ and $ match at each line); the result is in content_match")
    hash: Literal["sha256", "none"] = Field(default="sha256", description="checksum to compute: sha256 "
                                            "(default) or none")
    max_hash_mb: float = Field(default=64, gt=0, description="files larger than this many MiB are not hashed "
                               "(sha256 is then null)")

    @field_validator("hash", mode="before")
    @classmethod
    def _hash(cls, v: Any) -> Any:
        if v is True:
            return "sha256"
        if v is False or v is None:
            return "none"
        if isinstance(v, str):
            low = v.strip().lower().replace("-", "")
            if low in ("sha256", "none"):
                return low
        raise ValueError(f"hash {v!r} is not supported; use sha256 or none")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("path is empty; give an absolute path such as /etc/hosts")
        if "\x00" in v or "\n" in v or "\r" in v:
            raise ValueError("path contains a NUL or line break")
        if not (v.startswith(("/", "~", "\\\\")) or re.match(r"^[A-Za-z]:[\\/]", v)):
            raise ValueError(f"path {v!r} is relative; give an absolute path (/opt/app/app.conf) or one "
                             "starting with ~ (~/app.conf)")
        if v.startswith("~") and v != "~" and not v.startswith("~/") and not _TILDE_USER.match(v):
            raise ValueError(f"path {v!r}: after ~ give / or a user name (~/app.conf, ~deploy/app.conf)")
        return v

    @field_validator("matches")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            re.compile(v, re.MULTILINE)
        except re.error as exc:
            raise ValueError(f"matches {v!r} is not a valid regular expression: {exc}") from None
        return v

    @field_validator("contains")
    @classmethod
    def _contains(cls, v: str | None) -> str | None:
        if v == "":
            raise ValueError("contains is empty; give the text to look for, or leave it out")
        return v


class FileFacts(Facts):
    exists: bool = Field(description="the path exists (a symlink exists even when its target does not)")
    type: FileType | None = Field(description="file, directory, symlink or other (device, fifo, socket); "
                                  "null when missing")
    mode: str | None = Field(description="permission bits in octal, as chmod takes them: \"0644\", \"0755\", "
                             "\"1777\"")
    owner: str | None = Field(description="owning user name (the numeric uid when it has no name)")
    group: str | None = Field(description="owning group name (the numeric gid when it has no name)")
    size: int | None = Field(description="size in bytes", json_schema_extra={"unit": "b"})
    mtime: str | None = Field(description="last modification, ISO 8601 UTC to the second: "
                              "\"2026-11-26T08:00:00Z\"")
    sha256: str | None = Field(description="SHA-256 of the contents, lowercase hex; null for directories, "
                               "unreadable files, files above max_hash_mb, or hash: none")
    content_match: bool | None = Field(description="the contents hold every given contains/matches; null "
                                       "when neither is given or the file cannot be read")
    link_target: str | None = Field(description="where a symlink points, as written in the link "
                                    "(null if not a symlink)")


class FileProbe(Probe):
    name = "file"
    summary = t("A file or directory: exists, type, mode, owner, size, mtime, sha256 and content",
                "文件或目录：是否存在、类型、权限、属主、大小、修改时间、sha256 与内容")
    Params = FileParams
    Facts = FileFacts
    example = """\
- id: app-config
  title: {zh-CN: 应用配置文件, en: Application config file}
  probe: file
  with: {path: /opt/mes/conf/application.yml, matches: "^ *url: jdbc:dm://"}
  expect: {exists: true, type: file, owner: mes, mode: "0640", content_match: true}
"""
    advice = {
        "exists": t("create or deploy the file (check the path and the installation step that writes it)",
                    "创建或部署该文件（核对路径以及写入该文件的安装步骤）"),
        "type": t("the path is a different kind of object than expected (file vs directory vs symlink)",
                  "该路径的类型与预期不符（文件/目录/符号链接）"),
        "mode": t("set the permissions with chmod (e.g. chmod 0640 PATH)",
                  "用 chmod 设置权限（如 chmod 0640 PATH）"),
        "owner": t("set the owner with chown (e.g. chown mes:mes PATH)",
                   "用 chown 设置属主（如 chown mes:mes PATH）"),
        "group": t("set the group with chgrp or chown USER:GROUP PATH",
                   "用 chgrp 或 chown 用户:组 PATH 设置属组"),
        "size": t("the file is smaller or larger than expected: check that it was copied completely",
                  "文件大小与预期不符：确认文件是否完整拷贝"),
        "sha256": t("the contents differ from the expected build: copy the right version again and compare "
                    "with sha256sum", "文件内容与期望版本不一致：重新拷贝正确版本，并用 sha256sum 核对"),
        "content_match": t("the file does not hold the expected setting: edit it or redeploy the "
                           "configuration",
                           "文件中没有期望的配置：修改文件或重新部署配置"),
        "mtime": t("the file is older or newer than expected: check when it was last deployed",
                   "文件修改时间与预期不符：确认上次部署时间"),
        "*": t("inspect the path on the host with ls -l and stat", "在主机上用 ls -l 和 stat 查看该路径"),
    }
    requires = t("read permission on the file for sha256 and content checks; on Linux hosts stat, sha256sum "
                 "and head (coreutils or BusyBox)",
                 "计算 sha256 与检查内容需对文件有读权限；"
                 "Linux 主机需有 stat、sha256sum、head（coreutils 或 BusyBox）")

    # -- shell path ------------------------------------------------------------------------------------
    def sources(self, params: Any) -> list[Source]:
        return [Source.command(file_command(params))]

    def parse(self, params: Any, data: dict[Source, CommandResult]) -> FileFacts:
        res = data[Source.command(file_command(params))]
        out = res.stdout
        # Everything after the content marker is the file itself; markers are looked for only before it.
        head, sep, content = out.partition(f"\n{_MARK}content\n")
        if not sep and out.startswith(f"{_MARK}content\n"):
            head, sep, content = "", "x", out[len(f"{_MARK}content\n"):]
        values: dict[str, list[str]] = {}
        cur = ""
        for line in head.splitlines():
            if line.startswith(_MARK):
                cur = line[len(_MARK):].strip()
                values.setdefault(cur, [])
            elif cur:
                values[cur].append(line)
        if "missing" in values:
            return _missing()
        if "lstat" not in values:
            why = _first((res.stderr + "\n" + out).splitlines(), f"exit status {res.rc}")
            raise ProbeError(t(f"could not examine {params.path} on the host ({why})",
                               f"无法检查主机上的 {params.path}（{why}）"))
        lstat = _stat_line(values["lstat"], params.path, "stat-failed" in values)
        is_link = "link" in values
        link_target = values["link"][0] if is_link and values["link"] else None
        st = _stat_line(values["stat"], params.path, False) if "stat" in values else None
        if not is_link:
            st = lstat
        kind: FileType = "symlink" if is_link else _kind(lstat[7])
        sha = None
        if "sha256" in values:
            m = re.match(r"^([0-9a-fA-F]{64})\b", values["sha256"][0] if values["sha256"] else "")
            sha = m.group(1).lower() if m else None
        match = _content_match(params, content) if sep and (params.contains or params.matches) else None
        if st is None:  # a dangling symlink
            return FileFacts(exists=True, type=kind, mode=None, owner=None, group=None, size=None, mtime=None,
                             sha256=None, content_match=None, link_target=link_target)
        mode, uid, user, gid, grp, size, mtime, _ftype = st
        return FileFacts(
            exists=True,
            type=kind,
            mode=f"{int(mode, 8):04o}",
            owner=user if user != "UNKNOWN" else uid,
            group=grp if grp != "UNKNOWN" else gid,
            size=int(size),
            mtime=_iso(int(mtime)),
            sha256=sha,
            content_match=match,
            link_target=link_target,
        )

    # -- native path -----------------------------------------------------------------------------------
    has_native = True

    def collect_native(self, ctx: ProbeContext, params: Any) -> FileFacts:
        path = os.path.expanduser(params.path)
        try:
            lst = os.lstat(path)
        except FileNotFoundError:
            return _missing()
        except NotADirectoryError:
            return _missing()
        except OSError as exc:
            raise ProbeError(t(f"cannot examine {params.path}: {exc.strerror or exc}",
                               f"无法检查 {params.path}：{exc.strerror or exc}")) from None
        link_target = None
        if _stat.S_ISLNK(lst.st_mode):
            try:
                link_target = os.readlink(path)
            except OSError:
                link_target = None
            try:
                st = os.stat(path)
            except OSError:
                return FileFacts(exists=True, type="symlink", mode=None, owner=None, group=None, size=None,
                                 mtime=None, sha256=None, content_match=None, link_target=link_target)
            kind: FileType = "symlink"
        else:
            st = lst
            kind = _kind_mode(st.st_mode)
        regular = _stat.S_ISREG(st.st_mode)
        sha = None
        if regular and params.hash == "sha256" and st.st_size <= params.max_hash_mb * 1024 * 1024:
            sha = _sha256(path)
        match = None
        if regular and (params.contains or params.matches):
            try:
                with open(path, "rb") as fh:
                    data = fh.read(MAX_CONTENT)
                match = _content_match(params, data.decode("utf-8", "replace"))
            except OSError:
                match = None
        return FileFacts(
            exists=True,
            type=kind,
            mode=f"{_stat.S_IMODE(st.st_mode):04o}",
            owner=_owner(st.st_uid),
            group=_group(st.st_gid),
            size=st.st_size,
            mtime=_iso(int(st.st_mtime)),
            sha256=sha,
            content_match=match,
            link_target=link_target,
        )

    def note(self, params: Any, facts: Model) -> Text | None:
        assert isinstance(facts, FileFacts)
        p = params.path
        if not facts.exists:
            return t(f"{p} does not exist on the host", f"主机上不存在 {p}")
        parts: list[Text] = []
        if facts.type == "symlink" and facts.mode is None:
            parts.append(t(f"{p} is a symlink to {facts.link_target}, which does not exist (a dangling link)",
                           f"{p} 是指向 {facts.link_target} 的符号链接，但目标不存在（失效链接）"))
            return join_text(*parts, sep="; ")
        limit = params.max_hash_mb * 1024 * 1024
        if params.hash == "sha256" and facts.sha256 is None and facts.size is not None:
            if facts.size > limit and facts.type in ("file", "symlink"):
                parts.append(t(f"not hashed: {facts.size / 2**20:.1f} MiB is above max_hash_mb "
                               f"({params.max_hash_mb:g} MiB)",
                               f"未计算 sha256：文件 {facts.size / 2**20:.1f} MiB，超过 max_hash_mb"
                               f"（{params.max_hash_mb:g} MiB）"))
            elif facts.type == "file":
                parts.append(t("sha256 could not be computed: the file is not readable by this user, or "
                               "sha256sum is missing on the host",
                               "无法计算 sha256：当前用户无权读取该文件，或主机上缺少 sha256sum"))
        if params.contains or params.matches:
            if facts.content_match is None:
                parts.append(t("content not checked: the path is not a readable regular file",
                               "未检查内容：该路径不是可读的普通文件"))
            elif facts.size is not None and facts.size > MAX_CONTENT:
                parts.append(t(f"only the first {MAX_CONTENT // 2**20} MiB of the file were searched",
                               f"仅检索了文件的前 {MAX_CONTENT // 2**20} MiB"))
        return join_text(*parts, sep="; ") if parts else None


# -- the shell command ----------------------------------------------------------------------------------
def shell_path(path: str) -> str:
    """A POSIX sh word for the path, with ~ and ~user left for the host's shell to expand."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:]) if path[2:] else '"$HOME"/'
    m = _TILDE_USER.match(path)
    if m:
        rest = m.group(2) or ""
        return f"~{m.group(1)}" + ("/" + shlex.quote(rest[1:]) if len(rest) > 1 else rest)
    return shlex.quote(path)


def file_command(params: Any) -> str:
    m = _MARK
    fmt = shlex.quote(_STAT_FMT)
    limit = int(params.max_hash_mb * 1024 * 1024)
    readable: list[str] = []
    if params.hash == "sha256":
        readable.append(
            f's=$(stat -L -c %s "$p" 2>/dev/null); '
            f'if [ -n "$s" ] && [ "$s" -le {limit} ]; then echo {m}sha256; sha256sum < "$p" 2>&1; fi; '
        )
    if params.contains or params.matches:
        readable.append(f'echo {m}content; head -c {MAX_CONTENT} < "$p"; ')
    body = "".join(readable)
    read_part = f'if [ -f "$p" ] && [ -r "$p" ]; then {body}fi; ' if body else ""
    return (
        f"(p={shell_path(params.path)}; "
        f'if [ -e "$p" ] || [ -L "$p" ]; then '
        f'echo {m}lstat; stat -c {fmt} "$p" 2>&1 || echo {m}stat-failed; '
        f'if [ -L "$p" ]; then echo {m}link; readlink "$p"; '
        f'if [ -e "$p" ]; then echo {m}stat; stat -L -c {fmt} "$p" 2>&1; fi; fi; '
        f"{read_part}"
        f"else echo {m}missing; fi)"
    )


# -- helpers ---------------------------------------------------------------------------------------------
def _missing() -> FileFacts:
    return FileFacts(exists=False, type=None, mode=None, owner=None, group=None, size=None, mtime=None,
                     sha256=None, content_match=None, link_target=None)


def _first(lines: list[str], fallback: str) -> str:
    for ln in lines:
        if ln.strip() and not ln.startswith(_MARK):
            return ln.strip()[:200]
    return fallback


def _stat_line(lines: list[str], path: str, failed: bool) -> tuple[str, str, str, str, str, str, str, str]:
    line = lines[0] if lines else ""
    parts = line.split(None, 7)
    ok = (not failed and len(parts) == 8 and re.fullmatch(r"[0-7]{1,5}", parts[0]) is not None
          and parts[5].isdigit() and re.fullmatch(r"-?\d+", parts[6]) is not None)
    if not ok:
        why = line.strip()[:200] or "no output"
        raise ProbeError(t(
            f"`stat -c` did not work on the host for {path} ({why}); GNU coreutils or BusyBox stat is needed",
            f"主机上 `stat -c` 无法查看 {path}（{why}）；需要 GNU coreutils 或 BusyBox 的 stat",
        ))
    return (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6], parts[7])


def _kind(ftype: str) -> FileType:
    ftype = ftype.strip().lower()
    if ftype.startswith("regular"):
        return "file"
    if ftype == "directory":
        return "directory"
    if ftype == "symbolic link":
        return "symlink"
    return "other"


def _kind_mode(mode: int) -> FileType:
    if _stat.S_ISREG(mode):
        return "file"
    if _stat.S_ISDIR(mode):
        return "directory"
    if _stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _iso(epoch: int) -> str:
    return _dt.datetime.fromtimestamp(epoch, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner(uid: int) -> str | None:
    try:
        import pwd
    except ImportError:  # Windows: files have no POSIX owner
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str | None:
    try:
        import grp
    except ImportError:
        return None
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _sha256(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _content_match(params: Any, text: str) -> bool:
    ok = True
    if params.contains is not None:
        ok = ok and params.contains in text
    if params.matches is not None:
        ok = ok and re.search(params.matches, text, re.MULTILINE) is not None
    return ok
