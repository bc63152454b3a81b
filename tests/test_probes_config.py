"""The config probe: each format's parser on recorded real-world files, and each checked against the program that
reads that format for real — sshd -T (OpenSSH), postgres -C (PostgreSQL), java.util.Properties (OpenJDK) and
Python's configparser — plus both collection paths and a remote read over SSH from a namespace host.

Recorded files (tests/fixtures/hostsettings/config): Debian 12's postgresql.conf as installed here with a
conf.d drop-in; RHEL 9's and openEuler 22.03's sshd_config with their drop-ins and a Match block; Debian 12's
sshd_config; a MES application's .properties (unicode escapes, continuations), application.yml (two documents)
and appsettings.json; an ERP client's GBK-encoded .ini.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from envprobe.probes.base import ProbeContext, ProbeError
from envprobe.probes.configfile import (
    MASK,
    SSHD_DEFAULTS,
    ConfigFacts,
    ConfigParams,
    ConfigProbe,
    config_facts,
    decode,
    parse_emitted,
    read_command,
    split_path,
)
from envprobe.schema import ValidationError
from envprobe.transport.base import CommandResult, Source
from envprobe.transport.local import LocalTransport
from tests.conftest import need

FIX = Path(__file__).resolve().parent / "fixtures" / "hostsettings" / "config"
SSHD = "/usr/sbin/sshd"


def tree(case: str, main: str) -> list[tuple[str, str, bytes | None]]:
    """A recorded file tree as the read command would deliver it: the main file first, then every other file
    of the tree under its host path (the parser resolves includes against these)."""
    root = FIX / case
    files = sorted(p for p in root.rglob("*") if p.is_file())
    host = {"/" + str(p.relative_to(root)): p.read_bytes() for p in files}
    out: list[tuple[str, str, bytes | None]] = [(main, "file", host.pop(main))]
    out += [(path, "file", data) for path, data in host.items()]
    return out


def facts(case: str, main: str, **params) -> ConfigFacts:
    return config_facts(ConfigParams(path=main, **params), tree(case, main))


def ctx(native: bool, transport=None) -> ProbeContext:
    return ProbeContext(transport or LocalTransport(), "local", 20, prefer_native=native)


def collect(native: bool, **params) -> ConfigFacts:
    return ConfigProbe().collect(ctx(native), ConfigParams(**params))


# ===========================================================================================================
# parameters
# ===========================================================================================================
def test_format_is_inferred_or_required():
    assert ConfigParams(path="/etc/ssh/sshd_config", key="Port").fmt == "sshd"
    assert ConfigParams(path="/opt/app/application.yml", key="a").fmt == "yaml"
    assert ConfigParams(path="/etc/my.cnf", key="port").fmt == "ini"
    assert ConfigParams(path="/var/lib/pgsql/data/postgresql.conf", key="port").fmt == "keyvalue"
    with pytest.raises(ValidationError, match="cannot tell the format"):
        ConfigParams(path="/opt/app/settings", key="a")
    with pytest.raises(ValidationError, match="section applies to format ini only"):
        ConfigParams(path="/etc/ssh/sshd_config", key="Port", section="x")
    with pytest.raises(ValidationError, match="Input should be"):
        ConfigParams(path="/x.conf", key="a", format="toml")


def test_key_paths():
    assert split_path("spring.datasource.url") == ["spring", "datasource", "url"]
    assert split_path("mes.lines[1].plc") == ["mes", "lines", 1, "plc"]
    assert split_path("a.0.b") == ["a", "0", "b"]


# ===========================================================================================================
# keyvalue: postgresql.conf
# ===========================================================================================================
PG = "/etc/postgresql/15/main/postgresql.conf"
PG_DROPIN = "/etc/postgresql/15/main/conf.d/50-tuning.conf"


def test_postgresql_last_occurrence_wins_across_include_dir():
    f = facts("debian12-postgresql", PG, key="max_connections")
    assert (f.value, f.file, f.line, f.value_source) == ("500", PG_DROPIN, 2, "file")
    assert f.values == ["100", "500"] and f.occurrences == 2
    # only *.conf files not starting with a dot are read, in name order (as PostgreSQL does)
    assert f.includes == [PG_DROPIN]


@pytest.mark.parametrize("key,value", [
    ("port", "5432"),
    ("shared_buffers", "4GB"),  # quoted in the drop-in, with a trailing comment
    ("log_line_prefix", "%m [%p] %q%u@%d "),  # quotes keep the trailing blank; the comment after them goes
    ("DATA_DIRECTORY", "/var/lib/postgresql/15/main"),  # parameter names are case-insensitive
    ("datestyle", "iso, mdy"),
    ("effective_cache_size", "12GB"),
])
def test_postgresql_values(key, value):
    assert facts("debian12-postgresql", PG, key=key).value == value


def test_a_setting_about_passwords_is_not_masked():
    f = facts("debian12-postgresql", PG, key="password_encryption")
    assert (f.found, f.value, f.masked) == (True, "scram-sha-256", False)


def test_absent_key_reports_the_default_or_null():
    f = facts("debian12-postgresql", PG, key="wal_level")
    assert (f.found, f.value, f.value_source, f.line) == (False, None, None, None)
    f = facts("debian12-postgresql", PG, key="wal_level", default="replica")
    assert (f.found, f.value, f.value_source) == (False, "replica", "default")


def test_keyvalue_quotes_and_comments():
    text = ("a = 'it''s' # c\nb = \"x # y\"\nc=plain # comment\nd value with words\nexport E=1\n"
            "f = 'x\\'y'\n")
    em = [("/t.conf", "file", text.encode())]
    got = {k: config_facts(ConfigParams(path="/t.conf", key=k), em).value for k in "abcdEf"}
    assert got == {"a": "it's", "b": "x # y", "c": "plain", "d": "value with words", "E": "1", "f": "x'y"}


# ===========================================================================================================
# sshd
# ===========================================================================================================
def test_rhel9_sshd_first_value_wins_and_include_counts_where_it_stands():
    f = facts("rhel9-sshd", "/etc/ssh/sshd_config", key="PermitRootLogin")
    # Include at the top: the installer's drop-in (01-…) is read before the main file's own "no"
    assert (f.value, f.file, f.line) == ("yes", "/etc/ssh/sshd_config.d/01-permitrootlogin.conf", 3)
    assert f.values == ["yes", "no"]
    assert f.match_blocks == [{"match": "Address 10.0.0.0/8", "value": "prohibit-password",
                               "file": "/etc/ssh/sshd_config", "line": 89}]
    assert f.includes == ["/etc/ssh/sshd_config.d/01-permitrootlogin.conf",
                          "/etc/ssh/sshd_config.d/50-redhat.conf",
                          "/etc/crypto-policies/back-ends/opensshserver.config"]


def test_rhel9_sshd_match_only_keyword_falls_back_to_builtin_default():
    f = facts("rhel9-sshd", "/etc/ssh/sshd_config", key="passwordauthentication")
    assert (f.found, f.value, f.value_source) == (False, "yes", "builtin")
    assert [(b["match"], b["value"]) for b in f.match_blocks] == [("Group sftponly", "yes")]


@pytest.mark.parametrize("key,value,where", [
    ("X11Forwarding", "yes", "/etc/ssh/sshd_config.d/50-redhat.conf"),
    ("UsePAM", "yes", "/etc/ssh/sshd_config.d/50-redhat.conf"),
    ("MaxAuthTries", "3", "/etc/ssh/sshd_config"),
    ("Subsystem", "sftp /usr/libexec/openssh/sftp-server", "/etc/ssh/sshd_config"),
    ("Ciphers", "aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr,aes128-gcm@openssh.com,aes128-ctr",
     "/etc/crypto-policies/back-ends/opensshserver.config"),  # an Include inside an included file
])
def test_rhel9_sshd_values(key, value, where):
    f = facts("rhel9-sshd", "/etc/ssh/sshd_config", key=key)
    assert (f.value, f.file, f.value_source) == (value, where, "file")


def test_openeuler_relative_include_resolves_under_etc_ssh():
    f = facts("openeuler2203-sshd", "/etc/ssh/sshd_config", key="PermitRootLogin")
    assert (f.value, f.file) == ("no", "/etc/ssh/sshd_config.d/10-hardening.conf")
    assert f.values == ["no", "yes"]  # the main file's lower-case permitrootlogin=yes comes second
    f = facts("openeuler2203-sshd", "/etc/ssh/sshd_config", key="AcceptEnv")
    assert f.occurrences == 4 and f.value.startswith("LANG ")


def test_debian12_sshd_builtin_default():
    f = facts("debian12-sshd", "/etc/ssh/sshd_config", key="PermitRootLogin")
    assert (f.found, f.value, f.value_source) == (False, "prohibit-password", "builtin")
    assert facts("debian12-sshd", "/etc/ssh/sshd_config", key="KbdInteractiveAuthentication").value == "no"


def test_sshd_include_in_match_block_and_match_ending_with_its_file():
    main = ("Include /c/a.conf\nPermitRootLogin no\nMatch User deploy\n Include /c/b.conf\n"
            "Match all\nX11Forwarding yes\n")
    a = "Match User tmp\nX11Forwarding no\n"  # a Match inside an included file ends with that file
    b = "X11Forwarding no\nPasswordAuthentication no\n"  # inside the Match block: not global
    em = [("/c/sshd_config", "file", main.encode()), ("/c/a.conf", "file", a.encode()),
          ("/c/b.conf", "file", b.encode())]
    f = config_facts(ConfigParams(path="/c/sshd_config", key="X11Forwarding"), em)
    assert (f.value, f.line, f.file) == ("yes", 6, "/c/sshd_config")
    assert [(m["match"], m["value"]) for m in f.match_blocks] == [("User tmp", "no"), ("User deploy", "no")]
    f = config_facts(ConfigParams(path="/c/sshd_config", key="PermitRootLogin"), em)
    assert (f.value, f.line) == ("no", 2)  # after a.conf's Match ended, line 2 is global again


# ===========================================================================================================
# properties, ini, yaml, json
# ===========================================================================================================
PROPS = "/opt/mes/application.properties"


def _props_case() -> list[tuple[str, str, bytes | None]]:
    return [(PROPS, "file", (FIX / "mes-app" / "application.properties").read_bytes())]


PROPS_KEYS = ["server.port", "server.servlet.context-path", "spring.application.name", "spring.datasource.url",
              "spring.datasource.hikari.maximum-pool-size", "mes.factory.name", "mes.report.title",
              "mes.path.windows", "key with spaces", "mes.tab", "mes.empty", "mes.colon:in:key", "mes.trailing",
              "mes.trailing.next", "spring.datasource.username"]


def test_properties_values():
    got = {k: config_facts(ConfigParams(path=PROPS, key=k), _props_case()).value for k in PROPS_KEYS}
    assert got["server.port"] == "8443"  # repeated: the last wins
    assert got["spring.datasource.url"] == ("jdbc:dm://10.20.1.5:5236/MES?schema=MES&"
                                            "characterEncoding=UTF-8")
    assert got["mes.factory.name"] == "某制造企业一厂"
    assert got["mes.report.title"] == "生产日报 \\ daily"
    assert got["mes.path.windows"] == "C:\\MES\\data"
    assert got["mes.tab"] == "a\tb"
    assert got["key with spaces"] == "spaced value"
    assert got["mes.colon:in:key"] == "yes"
    assert got["mes.empty"] == ""
    assert got["mes.trailing"] == "ends with backslash pair \\\\"
    assert got["mes.trailing.next"] == "after"
    f = config_facts(ConfigParams(path=PROPS, key="spring.datasource.password"), _props_case())
    assert (f.found, f.value, f.masked) == (True, MASK, True)


def test_properties_agree_with_java(tmp_path):
    """java.util.Properties.load reads the same file: every key, same value."""
    need(shutil.which("java") is not None, "needs a JDK (java) to compare with java.util.Properties")
    src = tmp_path / "Dump.java"
    src.write_text(
        "import java.io.*; import java.util.*; import java.nio.charset.StandardCharsets;\n"
        "public class Dump { public static void main(String[] a) throws Exception {\n"
        "  Properties p = new Properties();\n"
        "  try (Reader r = new InputStreamReader(new FileInputStream(a[0]), StandardCharsets.UTF_8)) { p.load(r); }\n"
        "  PrintStream out = new PrintStream(System.out, true, \"UTF-8\");\n"
        "  for (int i = 1; i < a.length; i++) { String v = p.getProperty(a[i]);\n"
        "    out.println(v == null ? \"<null>\" : v.replace(\"\\\\\", \"\\\\\\\\\").replace(\"\\t\", \"\\\\t\")); }\n"
        "}}\n")
    path = FIX / "mes-app" / "application.properties"
    res = subprocess.run(["java", str(src), str(path), *PROPS_KEYS, "spring.datasource.password"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    java = res.stdout.splitlines()
    ours = []
    for k in [*PROPS_KEYS, "spring.datasource.password"]:
        v = config_facts(ConfigParams(path=PROPS, key=k, reveal=True), _props_case()).value
        ours.append("<null>" if v is None else v.replace("\\", "\\\\").replace("\t", "\\t"))
    assert ours == java


INI = "C:/ERP/erp-client.ini"


def _ini() -> list[tuple[str, str, bytes | None]]:
    return [(INI, "file", (FIX / "mes-app" / "erp-client.ini").read_bytes())]


@pytest.mark.parametrize("section,key,value,line", [
    ("数据库", "服务器", "10.20.1.8", 3),
    ("数据库", "端口", "1433", 4),
    ("server", "HOST", "erp-app01", 9),  # sections and keys match case-insensitively; the inline comment goes
    ("Server", "Timeout", "60", 12),  # repeated in one section: the last wins
    ("Server", "Description", "生产环境\n第二行说明", 13),  # an indented line continues the value
    ("Server", "Path", "C:\\Program Files\\ERP", 15),
    ("Logging", "Dir", "D:\\ERPLOG", 19),
])
def test_gbk_ini(section, key, value, line):
    f = config_facts(ConfigParams(path=INI, format="ini", section=section, key=key), _ini())
    assert (f.value, f.line, f.encoding, f.section.lower()) == (value, line, "gbk", section.lower())


def test_ini_without_section_and_chinese_secret_key():
    f = config_facts(ConfigParams(path=INI, key="Port"), _ini())
    assert (f.value, f.section) == ("8090", "Server")
    f = config_facts(ConfigParams(path=INI, key="密码", section="数据库"), _ini())
    assert (f.found, f.value, f.masked) == (True, MASK, True)
    assert "明文密码" not in json.dumps(f.model_dump(mode="json"), ensure_ascii=False)


def test_ini_agrees_with_configparser():
    import configparser

    text, enc = decode((FIX / "mes-app" / "erp-client.ini").read_bytes(), "auto")
    cp = configparser.ConfigParser(strict=False, inline_comment_prefixes=(";", "#"), interpolation=None)
    cp.read_string(text)
    for section in cp.sections():
        for key, value in cp.items(section):
            f = config_facts(ConfigParams(path=INI, section=section, key=key, reveal=True), _ini())
            assert f.value == value.strip('"'), (section, key)


YML = "/opt/mes/application.yml"


def _yml():
    return [(YML, "file", (FIX / "mes-app" / "application.yml").read_bytes())]


@pytest.mark.parametrize("key,value,line", [
    ("server.port", 8080, 2),
    ("spring.datasource.url", "jdbc:kingbase8://10.20.1.6:54321/mes", 9),
    ("spring.datasource.hikari.maximum-pool-size", 30, 13),
    ("mes.lines[1].plc", "10.30.0.12", 21),
    ("mes.lines.0.name", "一号线", 18),
    ("mes.started", "2026-11-26", 22),  # a YAML date comes back as ISO text
    ("mes.features[2]", "quality.spc", 23),
    ("logging.level.root", "WARN", 24),  # a literal dotted key
])
def test_yaml_values(key, value, line):
    f = config_facts(ConfigParams(path=YML, key=key), _yml())
    assert (f.value, f.line) == (value, line)


def test_yaml_multi_document_and_secrets():
    f = config_facts(ConfigParams(path=YML, key="server.port"), _yml())
    assert f.occurrences == 2 and f.values == [8080, 8443]
    f = config_facts(ConfigParams(path=YML, key="spring.datasource.password"), _yml())
    assert (f.value, f.masked, f.values) == (MASK, True, [MASK])
    f = config_facts(ConfigParams(path=YML, key="spring.datasource.password", reveal=True), _yml())
    assert (f.value, f.masked) == ("S3cret!", False)  # asked for explicitly
    f = config_facts(ConfigParams(path=YML, key="spring.datasource"), _yml())  # a mapping: secrets inside hidden
    assert f.value["password"] == MASK and f.value["username"] == "mes_app" and f.masked
    assert not config_facts(ConfigParams(path=YML, key="mes.lines[5].plc"), _yml()).found


def test_json_values():
    em = [("/app/appsettings.json", "file", (FIX / "mes-app" / "appsettings.json").read_bytes())]

    def get(key):
        return config_facts(ConfigParams(path="/app/appsettings.json", key=key), em)

    assert get("Mes.MaxBatch").value == 200
    assert get("Mes.Lines[1].Enabled").value is False
    assert get("Kestrel.Endpoints.Http.Url").value == "http://0.0.0.0:5000"
    assert get("Mes.ApiToken").value == MASK
    conn = get("ConnectionStrings.Default")  # a password inside a connection string is hidden
    assert conn.masked and "Password=***;" in conn.value and "xx" not in conn.value
    assert get("Logging.LogLevel.Default").line == 5


@pytest.mark.parametrize("fmt,text,message", [
    ("json", "{\"a\": 1,}", "not valid JSON"),
    ("yaml", "a: [1, 2\nb: 3\n", "not valid YAML"),
])
def test_broken_structured_file_is_a_clean_error(fmt, text, message):
    with pytest.raises(ProbeError) as err:
        config_facts(ConfigParams(path=f"/x.{fmt}", key="a"), [(f"/x.{fmt}", "file", text.encode())])
    assert message in err.value.message["en"] and err.value.message["zh-CN"]


def test_missing_and_unreadable_files():
    f = config_facts(ConfigParams(path="/nope.conf", key="a", default=5), [("/nope.conf", "missing", None)])
    assert (f.exists, f.found, f.value, f.value_source) == (False, False, 5, "default")
    with pytest.raises(ProbeError) as err:
        config_facts(ConfigParams(path="/x.conf", key="a"), [("/x.conf", "unreadable", None)])
    assert "sudo: true" in err.value.hint["en"]


def test_url_credentials_are_hidden():
    em = [("/a.conf", "file", b"url = postgres://app:hunter2@db:5432/x\n")]
    f = config_facts(ConfigParams(path="/a.conf", key="url"), em)
    assert f.value == "postgres://app:***@db:5432/x" and f.masked


# ===========================================================================================================
# the read command, both paths, real files
# ===========================================================================================================
def _write_tree(root: Path) -> None:
    (root / "conf.d").mkdir(parents=True)
    (root / "main.conf").write_text("max_connections = 100\ninclude 'extra.conf'\ninclude_if_exists 'none.conf'\n"
                                    "include_dir 'conf.d'\nwork_mem = '4MB'  # c\n")
    (root / "extra.conf").write_text("max_connections = 200\n")
    (root / "conf.d" / "b.conf").write_text("max_connections = 300\n")
    (root / "conf.d" / "a.conf").write_text("shared_buffers = 1GB\n")
    (root / "erp.ini").write_bytes("[数据库]\r\n服务器 = 10.1.1.1\r\n".encode("gbk"))
    (root / "sub dir").mkdir()
    (root / "sub dir" / "app.properties").write_text("a.b = \\u4e2d\\u6587\n")


@pytest.mark.parametrize("key,value", [("max_connections", "300"), ("shared_buffers", "1GB"), ("work_mem", "4MB")])
def test_both_paths_agree_on_real_files(tmp_path, key, value):
    _write_tree(tmp_path)
    native = collect(True, path=str(tmp_path / "main.conf"), key=key, format="keyvalue")
    shell = collect(False, path=str(tmp_path / "main.conf"), key=key, format="keyvalue")
    assert native == shell
    assert native.value == value
    assert native.includes == [str(tmp_path / "extra.conf"), str(tmp_path / "conf.d" / "a.conf"),
                               str(tmp_path / "conf.d" / "b.conf")]


def test_both_paths_read_gbk_and_paths_with_spaces(tmp_path):
    _write_tree(tmp_path)
    for native in (True, False):
        f = collect(native, path=str(tmp_path / "erp.ini"), section="数据库", key="服务器")
        assert (f.value, f.encoding) == ("10.1.1.1", "gbk")
        f = collect(native, path=str(tmp_path / "sub dir" / "app.properties"), key="a.b")
        assert f.value == "中文"
        f = collect(native, path=str(tmp_path / "missing.ini"), key="x")
        assert not f.exists


def test_read_command_output_parses_back_through_od(tmp_path):
    """Hosts without base64 get od's hex dump: the same bytes come back."""
    data = bytes(range(256)) * 3
    (tmp_path / "bin.conf").write_bytes(data)
    cmd = read_command(ConfigParams(path=str(tmp_path / "bin.conf"), key="x"))
    cmd = cmd.replace("command -v base64", "command -v no-such-base64-tool")
    res = LocalTransport().run(cmd, env={"LC_ALL": "C"})
    assert "@@file hex" in res.stdout
    assert parse_emitted(res.stdout) == [(str(tmp_path / "bin.conf"), "file", data)]


def test_parse_reports_a_failed_read():
    p = ConfigParams(path="/x.conf", key="a")
    src = Source.command(read_command(p))
    with pytest.raises(ProbeError, match="could not read"):
        ConfigProbe().parse(p, {src: CommandResult(2, "", "sh: syntax error", 1.0)})


# ===========================================================================================================
# against the real programs
# ===========================================================================================================
def _sshd_t(cfg: Path, *extra: str) -> dict[str, str]:
    res = subprocess.run([SSHD, "-T", "-f", str(cfg), *extra], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    out: dict[str, str] = {}
    for line in res.stdout.splitlines():
        k, _, v = line.partition(" ")
        out.setdefault(k, v)
    return out


def _same_sshd(ours: str, theirs: str) -> bool:
    alias = {"without-password": "prohibit-password"}
    return alias.get(ours, ours).lower() == alias.get(theirs, theirs).lower()


def test_sshd_effective_values_agree_with_sshd_T(tmp_path):
    need(os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None, "needs openssh-server (sshd -T)")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hk")], check=True)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "10-first.conf").write_text("PermitRootLogin no\nMaxAuthTries 4\n")
    (tmp_path / "d" / "20-second.conf").write_text("PermitRootLogin yes\nX11Forwarding yes\n")
    cfg = tmp_path / "sshd_config"
    cfg.write_text(f"HostKey {tmp_path / 'hk'}\nInclude {tmp_path / 'd'}/*.conf\nmaxauthtries=2\n"
                   "ClientAliveInterval 300\nPasswordAuthentication no\n"
                   "Match User deploy\n  PasswordAuthentication yes\n  X11Forwarding no\n")
    real = _sshd_t(cfg)
    for key in ("PermitRootLogin", "MaxAuthTries", "X11Forwarding", "ClientAliveInterval", "PasswordAuthentication"):
        for native in (True, False):
            f = collect(native, path=str(cfg), key=key)
            assert f.value_source == "file" and _same_sshd(f.value, real[key.lower()]), (key, f.value)
    # the Match block is what sshd applies for that user
    matched = _sshd_t(cfg, "-C", "user=deploy,host=h,addr=10.1.1.1")
    f = collect(True, path=str(cfg), key="PasswordAuthentication")
    assert [b["value"] for b in f.match_blocks] == [matched["passwordauthentication"]] == ["yes"]
    # and every built-in default this sshd prints matches the table
    checked = 0
    written = " ".join(f.read_text().lower() for f in (cfg, *sorted((tmp_path / "d").iterdir())))
    for key in SSHD_DEFAULTS:
        if key in real and key not in written:
            f = collect(True, path=str(cfg), key=key)
            assert f.value_source == "builtin" and _same_sshd(f.value, real[key]), (key, f.value, real[key])
            checked += 1
    assert checked >= 30


def test_postgresql_values_agree_with_postgres_C():
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    need(bool(bins) and os.geteuid() == 0, "needs PostgreSQL server binaries and root (to run as postgres)")
    pg = bins[-1]
    base = Path(tempfile.mkdtemp(prefix="envprobe-pg-"))  # pytest's tmp_path is not reachable for postgres
    data = base / "pgdata"
    shutil.chown(base, "postgres")

    def as_postgres(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), capture_output=True, text=True, user="postgres", group="postgres",
                              extra_groups=[], env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}, cwd="/tmp")

    init = as_postgres(str(pg.parent / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                       "--locale=C.UTF-8")
    assert init.returncode == 0, init.stderr
    (data / "conf.d").mkdir()
    (data / "conf.d" / "20-b.conf").write_text("max_connections = 300\nwork_mem = '8MB'\n")
    (data / "conf.d" / "10-a.conf").write_text("max_connections = 250\n")
    (data / "extra.conf").write_text("cluster_name = 'mes ''prod'''\nmax_connections = 150\n")
    with (data / "postgresql.conf").open("a") as fh:
        fh.write("\nmax_connections = 120\ninclude 'extra.conf'\ninclude_if_exists 'absent.conf'\n"
                 "include_dir 'conf.d'\nlog_line_prefix = '%m [%p] '  # a comment\nApplication_Name = 'MES app'\n")
    for p in data.rglob("*"):
        shutil.chown(p, "postgres")
    try:
        for key in ("max_connections", "cluster_name", "log_line_prefix", "application_name", "work_mem"):
            real = as_postgres(str(pg), "-D", str(data), "-C", key)
            assert real.returncode == 0, real.stderr
            for native in (True, False):
                f = collect(native, path=str(data / "postgresql.conf"), key=key)
                ours = f.value
                if key == "work_mem":  # postgres -C prints memory in the parameter's unit (kB)
                    assert ours.endswith("MB")
                    ours = str(int(ours[:-2]) * 1024)
                assert ours == real.stdout.rstrip("\n"), (key, f.value, real.stdout)
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ===========================================================================================================
# over SSH
# ===========================================================================================================
def test_config_over_ssh_from_a_namespace_host_reads_etc_ssh_relative_includes(netlab, tmp_path):  # noqa: F811
    """A namespace host whose /etc/ssh is the test's own tree (a bind mount in sshd's mount namespace): the probe
    reads sshd_config over SSH, follows a relative Include under /etc/ssh, in one exec."""
    from tests.netlab import need_netlab
    from tests.sshfix import SshServer, keygen, need_sshd

    need_sshd()
    need_netlab()
    etc_ssh = tmp_path / "etc-ssh"
    (etc_ssh / "sshd_config.d").mkdir(parents=True)
    (etc_ssh / "sshd_config").write_text("Include sshd_config.d/*.conf\nPermitRootLogin yes\nUsePAM yes\n")
    (etc_ssh / "sshd_config.d" / "50-site.conf").write_text("PermitRootLogin no\n")
    (etc_ssh / "sshd_config.d" / "60-secret.conf").write_text("PermitRootLogin forced-commands-only\n")
    (etc_ssh / "sshd_config.d" / "60-secret.conf").chmod(0o600)

    class EtcSshServer(SshServer):
        """SshServer whose mount namespace also has the test's tree on /etc/ssh (sshd itself reads only its
        own -f config and host key from the test folder)."""

        def start(self) -> SshServer:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
            cfg = self.dir / "sshd_config"
            cfg.write_text(self.config())
            (self.dir / "root").mkdir(exist_ok=True)
            inner = (f"mount --bind {self.dir / 'root'} /root && mount --bind {etc_ssh} /etc/ssh && "
                     f"exec /usr/sbin/sshd -D -f {cfg} -E {self.log}")
            self.proc = subprocess.Popen(["ip", "netns", "exec", str(self.netns), "unshare", "--mount",
                                          "--propagation", "private", "sh", "-c", inner],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.log.exists() and "Server listening" in self.log.read_text():
                    return self
                time.sleep(0.02)
            raise AssertionError(f"sshd did not start: {self.log.read_text() if self.log.exists() else ''}")

    from envprobe.transport.ssh import SshTransport

    key = keygen(tmp_path / "key")
    host = netlab.add_host()
    server = EtcSshServer(tmp_path / "srv", key, address=host.address, port=22, netns=host.ns).start()
    tr = SshTransport("h1", host.address, user="root", key_file=str(key), known_hosts=str(tmp_path / "kh"),
                      accept_new_hostkeys=True, connect_timeout=5)
    try:
        params = ConfigParams(path="/etc/ssh/sshd_config", key="PermitRootLogin")
        f = ConfigProbe().collect(ProbeContext(tr, "h1", 20), params)
        assert (f.value, f.file) == ("no", "/etc/ssh/sshd_config.d/50-site.conf")
        assert f.includes == ["/etc/ssh/sshd_config.d/50-site.conf", "/etc/ssh/sshd_config.d/60-secret.conf"]
        assert f.values == ["no", "forced-commands-only", "yes"]  # root reads the 0600 drop-in too
        assert tr.exec_count == 1
        # the machine's own /etc/ssh is untouched and differs
        assert "Include sshd_config.d" not in Path("/etc/ssh/sshd_config").read_text()
    finally:
        tr.close()
        server.stop()


def test_unreadable_file_for_a_non_root_login_needs_sudo():
    """As a non-root account the 0600 file cannot be read: a clean error naming sudo; with sudo it is read."""
    need(os.geteuid() == 0 and shutil.which("useradd") is not None and shutil.which("sudo") is not None,
         "needs root, useradd and sudo")
    name = f"epc{os.getpid() % 100000}"
    subprocess.run(["userdel", "-f", name], capture_output=True)
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", name], check=True)
    where = Path(tempfile.mkdtemp(prefix="envprobe-cfg-"))  # pytest's tmp_path is root-only
    where.chmod(0o755)
    secret = where / "app.ini"
    secret.write_text("[db]\nhost = 10.9.9.9\n")
    secret.chmod(0o600)
    sudoers = Path(f"/etc/sudoers.d/{name}")
    try:
        uid, gid = pwd.getpwnam(name).pw_uid, pwd.getpwnam(name).pw_gid

        class AsUser(LocalTransport):
            is_local = False  # behave as a remote host reached as that account

            def run(self, cmd, timeout=10.0, env=None, stdin=None):
                argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "/bin/sh", "-c",
                        cmd if isinstance(cmd, str) else " ".join(cmd)]
                return super().run(argv, timeout=timeout, env=env, stdin=stdin)

        assert uid > 0
        params = ConfigParams(path=str(secret), section="db", key="host")
        with pytest.raises(ProbeError) as err:
            ConfigProbe().collect(ProbeContext(AsUser(), "app01", 20), params)
        assert "not root" in err.value.message["en"] and "sudo: true" in err.value.hint["en"]
        assert err.value.message["zh-CN"] and err.value.hint["zh-CN"]
        sudoers.write_text(f"{name} ALL=(root) NOPASSWD: ALL\n")
        sudoers.chmod(0o440)
        tr = AsUser()
        tr.sudo = True
        f = ConfigProbe().collect(ProbeContext(tr, "app01", 20), params)
        assert f.value == "10.9.9.9"
    finally:
        sudoers.unlink(missing_ok=True)
        subprocess.run(["userdel", "-f", name], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


from tests.netlab import netlab  # noqa: E402,F401 - the fixture, used by name


def test_a_scan_never_shows_a_secret(tmp_path):
    """End to end through the CLI: the JSON result and the console carry neither the password nor the
    password inside a connection string, yet the checks on them pass."""
    from tests.conftest import cli

    app = tmp_path / "application.yml"
    app.write_text("spring:\n  datasource:\n    password: Zq9-very-secret\n"
                   "    url: jdbc:sqlserver://db:1433;user=mes;password=Zq9-very-secret;encrypt=false\n")
    checklist = tmp_path / "c.yaml"
    checklist.write_text(
        "version: 1\nchecks:\n"
        f"  - {{id: pw-set, probe: config, with: {{path: {app}, key: spring.datasource.password}}, "
        "expect: {found: true, masked: true}}\n"
        f"  - {{id: url, probe: config, with: {{path: {app}, key: spring.datasource.url}}, "
        "expect: {value: \"contains jdbc:sqlserver://db:1433\"}}\n")
    out = tmp_path / "r.json"
    res = cli("scan", str(checklist), "--json", str(out), "--lang", "en")
    text = out.read_text()
    assert res.code == 0, res.out + res.err
    assert "Zq9-very-secret" not in text + res.out + res.err
    results = {r["check"]: r for r in json.loads(text)["results"]}
    assert results["pw-set"]["observed"]["value"] == MASK
    assert "password=***;" in results["url"]["observed"]["value"]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_CONFIG_TEXT = st.text(alphabet=st.sampled_from(list("ab =:;#!\\\"'[]\t\n.u0123 中")), max_size=200)


@settings(max_examples=300, deadline=None)
@given(text=_CONFIG_TEXT, fmt=st.sampled_from(["ini", "properties", "keyvalue", "sshd"]),
       key=st.sampled_from(["a", "a.b", "b", "include"]))
def test_text_parsers_never_crash(text, fmt, key):
    """Any content gives facts (or, for a file that includes itself, a bounded walk), never a traceback."""
    path = "/etc/ssh/x" if fmt == "sshd" else "/x.conf"
    f = config_facts(ConfigParams(path=path, key=key, format=fmt), [(path, "file", text.encode("utf-8"))])
    assert f.exists and f.occurrences == len(f.values)
    assert (f.value is None) == (not f.found and f.value_source is None)


def test_self_including_files_stop():
    em = [("/etc/ssh/sshd_config", "file", b"Include /etc/ssh/sshd_config\nPort 2222\n"),
          ("/a/pg.conf", "file", b"include 'pg.conf'\nport = 5433\n")]
    f = config_facts(ConfigParams(path="/etc/ssh/sshd_config", key="Port"), em[:1])
    assert f.value == "2222"
    f = config_facts(ConfigParams(path="/a/pg.conf", key="port"), em[1:])
    assert f.value == "5433" and f.occurrences == 1  # read once: a file that includes itself is not re-entered


def test_notes_say_where_and_which_rule():
    p = ConfigProbe()
    params = ConfigParams(path="/etc/ssh/sshd_config", key="PermitRootLogin")
    f = facts("rhel9-sshd", "/etc/ssh/sshd_config", key="PermitRootLogin")
    note = p.note(params, f)
    assert "01-permitrootlogin.conf:3" in note["en"] and "the first wins" in note["en"] and "Match" in note["en"]
    assert "以第一处为准" in note["zh-CN"]
    params = ConfigParams(path=PG, key="max_connections")
    note = p.note(params, facts("debian12-postgresql", PG, key="max_connections"))
    assert "the last wins" in note["en"] and "以最后一处为准" in note["zh-CN"]
    em = [("/etc/ssh/sshd_config", "file", b"Include /etc/ssh/d/*.conf\n"), ("/etc/ssh/d/a.conf", "unreadable", None)]
    params = ConfigParams(path="/etc/ssh/sshd_config", key="Port")
    f = config_facts(params, em)
    assert f.unread == ["/etc/ssh/d/a.conf"] and f.value_source == "builtin"
    note = p.note(params, f)
    assert "built-in default 22" in note["en"] and "/etc/ssh/d/a.conf" in note["en"] and "无法读取" in note["zh-CN"]
