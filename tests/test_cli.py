"""The CLI in-process: the issue's acceptance scenarios, exit codes, outputs, secrets, probes, schema."""

from __future__ import annotations

import json
import os
import shutil
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from envprobe.registry import Registry
from envprobe.schema import ValidationError
from tests.conftest import ROOT, cli


def meminfo_total_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024 / 2**30
    raise AssertionError("no MemTotal")


@pytest.fixture
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


def facts_checklist(port: int, cpu: int, mem: float, disk: float, severity: str = "required") -> str:
    return f"""\
version: 1
name: {{zh-CN: 独立来源核对, en: Facts against independent sources}}
checks:
  - id: cpu
    probe: cpu
    expect: {{logical: "== {cpu}"}}
    severity: {severity}
  - id: memory
    probe: memory
    expect: {{total_gb: [">= {mem - 0.01:.3f}", "<= {mem + 0.01:.3f}"]}}
  - id: disk
    probe: disk
    with: {{path: /}}
    expect: {{total_gb: [">= {disk - 0.01:.3f}", "<= {disk + 0.01:.3f}"]}}
  - id: port
    probe: port
    with: {{port: {port}, address: 127.0.0.1}}
    expect: {{listening: true, pid: {os.getpid()}, bindable: false}}
"""


def independent_facts():
    return os.cpu_count(), meminfo_total_gb(), shutil.disk_usage("/").total / 2**30


def test_scan_against_independent_sources_passes(write, listener, tmp_path):
    cpu, mem, disk = independent_facts()
    cl = write("facts.yaml", facts_checklist(listener, cpu, mem, disk))
    res = cli("scan", str(cl), "--json", str(tmp_path / "r.json"), "--lang", "en")
    data = json.loads((tmp_path / "r.json").read_text())
    assert res.code == 0, res.out + res.err
    assert data["summary"]["verdict"] == "ready"
    assert {r["check"]: r["status"] for r in data["results"]} == dict.fromkeys(["cpu", "memory", "disk", "port"], "pass")
    assert data["results"][0]["observed"]["logical"] == cpu


def test_wrong_number_fails_and_exits_1(write, listener, tmp_path):
    cpu, mem, disk = independent_facts()
    cl = write("facts.yaml", facts_checklist(listener, cpu + 1, mem, disk))
    res = cli("scan", str(cl), "--json", str(tmp_path / "r.json"), "--lang", "en")
    assert res.code == 1
    data = json.loads((tmp_path / "r.json").read_text())
    cpu_result = data["results"][0]
    assert cpu_result["status"] == "fail" and data["summary"]["verdict"] == "not-ready"
    assert cpu_result["message"]["en"] == f"logical is {cpu}, expected == {cpu + 1}"
    assert cpu_result["message"]["zh-CN"] == f"logical 当前值 {cpu}，期望 == {cpu + 1}"


def test_recommended_failure_is_a_warning_and_exits_0(write, listener, tmp_path):
    cpu, mem, disk = independent_facts()
    cl = write("facts.yaml", facts_checklist(listener, cpu + 1, mem, disk, severity="recommended"))
    res = cli("scan", str(cl), "--json", str(tmp_path / "r.json"))
    data = json.loads((tmp_path / "r.json").read_text())
    assert res.code == 0
    assert data["summary"]["verdict"] == "ready-with-warnings"
    assert data["summary"]["warn"] == 1 and data["summary"]["fail"] == 0


@pytest.mark.parametrize(("text", "where", "hint"), [
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n  expect: [\n", ":5:", "YAML syntax error"),
    ("version: 1\nchecks:\n  - id: a\n    probe: memroy\n", ":4:12:", "did you mean memory?"),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    expect: {totl_gb: '>= 1'}\n", ":5:14:",
     "did you mean total_gb?"),
])
def test_bad_input_exits_2_with_location_and_hint(write, text, where, hint):
    cl = write("bad.yaml", text)
    for command in ("scan", "validate"):
        res = cli(command, str(cl))
        assert res.code == 2
        assert f"{cl}{where}" in res.err and hint in res.err
        assert "Traceback" not in res.err + res.out
        assert "nothing was run" in res.err


CANARY = "Canary-9f3b-S3cret"


def test_secret_never_in_any_output_and_html_escapes(write, tmp_path):
    cl = write("leak.yaml", """\
version: 1
checks:
  - id: leak
    probe: command
    with: {run: "echo token=${env:API_TOKEN}; echo '<script>alert(1)</script>'; echo ${env:API_TOKEN} >&2; exit 4"}
    expect: {exit_code: 0}
  - id: leak-in-expectation
    probe: command
    with: {run: "echo hi"}
    expect: {stdout: "== ${env:API_TOKEN}"}
""")
    paths = {k: tmp_path / f"r.{k}" for k in ("json", "xml", "html")}
    res = cli("scan", str(cl), "--json", str(paths["json"]), "--junit", str(paths["xml"]),
              "--html", str(paths["html"]), environ={"API_TOKEN": CANARY})
    assert res.code == 1
    texts = {k: p.read_text(encoding="utf-8") for k, p in paths.items()}
    texts["console"] = res.out + res.err
    log = Path(os.path.expanduser("~/.cache/envprobe/last-scan.log"))
    if log.exists():
        texts["log"] = log.read_text(encoding="utf-8")
    for where, text in texts.items():
        assert CANARY not in text, where
    assert "token=******" in texts["json"]
    html = texts["html"]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    ET.fromstring(texts["xml"])


def test_report_rerenders_offline_in_chinese(write, tmp_path):
    cl = write("c.yaml", "version: 1\nname: {zh-CN: 离线报告, en: Offline report}\nchecks:\n"
                         "  - {id: a, probe: command, with: {run: 'exit 1'}, expect: {exit_code: 0}}\n")
    res = cli("scan", str(cl), "--json", str(tmp_path / "r.json"), "--lang", "en", "-q")
    assert res.code == 1
    res = cli("report", str(tmp_path / "r.json"), "--html", str(tmp_path / "zh.html"), "--lang", "zh-CN")
    assert res.code == 0, res.err
    html = (tmp_path / "zh.html").read_text(encoding="utf-8")
    assert "未就绪" in html and "离线报告" in html and 'lang="zh-CN"' in html
    res = cli("report", str(tmp_path / "r.json"), "--html", str(tmp_path / "en.html"), "--lang", "en")
    assert "NOT READY" in (tmp_path / "en.html").read_text(encoding="utf-8")


def test_report_rejects_bad_json(write, tmp_path):
    bad = write("r.json", "{not json")
    res = cli("report", str(bad), "--html", str(tmp_path / "x.html"))
    assert res.code == 2 and str(bad) in res.err and "Traceback" not in res.err


def test_quickstart_runs_and_writes_html(tmp_path):
    res = cli("scan", str(ROOT / "examples" / "quickstart.yaml"), "--html", str(tmp_path / "report.html"))
    assert res.code in (0, 1), res.err  # 1 only if this machine is really short of something
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "本机环境快速检查" in html
    assert res.code == 0 or "fail" in res.out.lower() or "失败" in res.out


def test_mes_example_has_a_valid_checklist_shape():
    from envprobe.loader import ChecklistSpec

    data = yaml.safe_load((ROOT / "examples" / "mes-precheck" / "checklist.yaml").read_text(encoding="utf-8"))
    spec = ChecklistSpec.model_validate(data)
    assert len(spec.checks) >= 12
    for c in spec.checks:
        assert isinstance(c.title, object) and c.title is not None
        assert c.title.zh_CN and c.title.en  # type: ignore[union-attr]


def test_probes_list_and_describe():
    res = cli("probes")
    assert res.code == 0
    for name in ("os", "cpu", "memory", "disk", "port", "process", "service", "file", "command", "sample_clock"):
        assert f"\n{name} " in "\n" + res.out
    res = cli("probes", "memory")
    assert res.code == 0 and "total_gb" in res.out and "Example:" in res.out and "[gb]" in res.out
    res = cli("probes", "memroy")
    assert res.code == 2 and "did you mean memory" in res.err


@pytest.mark.parametrize("name", sorted(Registry().names()))
def test_every_probe_example_validates(write, name):
    cls = Registry().get(name)
    assert cls.example.strip(), f"probe {name} has no example"
    entries = yaml.safe_load(cls.example)
    assert isinstance(entries, list) and entries
    assert any(e["probe"] == name for e in entries)
    doc = {"version": 1, "checks": entries}
    cl = write(f"example-{name}.yaml", yaml.safe_dump(doc, allow_unicode=True))
    res = cli("validate", str(cl), environ={k: "x" * 8 for k in ("MES_DB_PASSWORD", "DB_PASSWORD")})
    assert res.code == 0, res.err
    # documented: a bilingual summary, every field and parameter described, advice for real fields in both
    # languages, what it needs (when it says) in both languages; unknown parameters refused
    assert cls.summary["en"] and cls.summary["zh-CN"] and cls.summary["en"] != cls.summary["zh-CN"]
    for fname, f in cls.Facts.model_fields.items():
        assert f.description, f"{name}.{fname} has no description"
    for pname, f in cls.Params.model_fields.items():
        assert f.description, f"{name} parameter {pname} has no description"
    for fname, text in cls.advice.items():
        assert fname == "*" or fname in cls.Facts.model_fields, f"{name}: advice for unknown field {fname}"
        assert text["en"] and text["zh-CN"]
    if cls.requires is not None:
        assert cls.requires["en"] and cls.requires["zh-CN"]
    example_with = next(e for e in entries if e["probe"] == name).get("with", {})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        cls.Params.model_validate({**example_with, "no_such_parameter": 1})


def test_schema_is_json_schema_of_the_checklist():
    res = cli("schema")
    schema = json.loads(res.out)
    assert res.code == 0 and schema["title"] == "envprobe checklist"
    assert "checks" in schema["properties"] and "CheckSpec" in json.dumps(schema)
    check = schema["$defs"]["CheckSpec"]
    assert "memory" in check["properties"]["probe"]["enum"]
    mem_rule = next(r for r in check["allOf"] if r["if"]["properties"]["probe"]["const"] == "memory")
    assert "total_gb" in mem_rule["then"]["properties"]["expect"]["propertyNames"]["enum"]
    disk_rule = next(r for r in check["allOf"] if r["if"]["properties"]["probe"]["const"] == "disk")
    assert "path" in disk_rule["then"]["properties"]["with"]["properties"]
    # an editor using the schema accepts the quickstart and flags a misspelt observed field
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    doc = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text(encoding="utf-8"))
    assert list(validator.iter_errors(doc)) == []
    doc["checks"][2]["expect"]["totl_gb"] = 1
    from envprobe.probes.system import MemoryProbe

    assert [e.message for e in validator.iter_errors(doc)] == [f"'totl_gb' is not one of {list(MemoryProbe.fields())}"]


def test_init_writes_a_valid_starter(tmp_path):
    target = tmp_path / "new.yaml"
    assert cli("init", str(target)).code == 0
    assert cli("validate", str(target)).code == 0
    again = cli("init", str(target))
    assert again.code == 2 and "--force" in again.err


def test_version_and_usage_errors():
    res = cli("--version")
    assert res.code == 0 and "envprobe" in res.out
    res = cli("scan")
    assert res.code == 2 and "Missing argument" in res.err
    res = cli("scan", "x.yaml", "--forks", "0")
    assert res.code == 2


def test_missing_output_folder_is_usage_error(write, tmp_path):
    cl = write("c.yaml", "version: 1\nchecks:\n  - {id: a, probe: command, with: {run: 'true'}}\n")
    res = cli("scan", str(cl), "--html", str(tmp_path / "nope" / "r.html"))
    assert res.code == 2 and "does not exist" in res.err


def test_error_only_exits_3(write):
    cl = write("c.yaml", "version: 1\nchecks:\n  - {id: a, probe: disk, with: {path: /definitely/not/here}}\n")
    res = cli("scan", str(cl), "--lang", "en")
    assert res.code == 3, res.out + res.err


def test_console_plain_off_a_tty_and_tables_on_a_tty(write):
    cl = write("c.yaml", "version: 1\nchecks:\n"
                         "  - {id: good, probe: command, with: {run: 'true'}}\n"
                         "  - {id: bad, title: {zh-CN: 坏, en: Bad}, probe: command, with: {run: 'exit 2'},"
                         " expect: {exit_code: 0}, hint: {zh-CN: 修一下, en: fix it}}\n")
    plain = cli("scan", str(cl), "--lang", "en")
    lines = plain.out.splitlines()
    assert plain.code == 1
    assert lines[0].startswith("local")
    assert lines[1] == "  FAIL   bad  Bad" and lines[2].strip() == "exit_code is 2, expected 0"
    assert lines[3].strip() == "→ recommended action: fix it"
    assert lines.index("  PASS   good") > lines.index("  FAIL   bad  Bad")  # failures first
    assert lines[-1].startswith("NOT READY") and "\x1b[" not in plain.out
    quiet = cli("scan", str(cl), "--lang", "zh-CN", "-q")
    assert "good" not in quiet.out and "失败   bad  坏" in quiet.out and "未就绪" in quiet.out
    tty = cli("scan", str(cl), "--lang", "en", tty=True)
    assert tty.code == 1
    assert "status" in tty.out and "check" in tty.out and "message" in tty.out  # the rich table's header
    assert tty.out.index("bad") < tty.out.index("good")


CRASH_PROBE = '''
from typing import Any
from envprobe.model import t
from envprobe.probes.base import Probe
from envprobe.schema import Field, Model


class P(Model):
    token: str = Field(description="a secret the probe leaks into its exception")


class Crash(Probe):
    name = "crash_leak"
    summary = t("crashes", "崩溃")
    Params = P

    def collect(self, ctx, params: Any):
        raise RuntimeError("bad token " + params.token)
'''


def test_crash_traceback_goes_to_the_debug_log_masked(write, tmp_path):
    write("probes/crash.py", CRASH_PROBE)
    cl = write("c.yaml", "version: 1\nprobe_paths: [probes]\nchecks:\n"
                         "  - {id: boom, probe: crash_leak, with: {token: '${env:LEAKY}'}}\n")
    log = tmp_path / "debug.log"
    log.write_text("stale log of an earlier scan\n")
    res = cli("scan", str(cl), "--debug-log", str(log), "--json", str(tmp_path / "r.json"), "--lang", "en",
              environ={"LEAKY": CANARY})
    assert res.code == 3
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text and "RuntimeError: bad token ******" in text and "stale" not in text
    msg = json.loads((tmp_path / "r.json").read_text())["results"][0]["message"]["en"]
    assert msg == f"probe crash_leak crashed: RuntimeError: bad token ****** (traceback in {log})"
    for out in (text, res.out, res.err, (tmp_path / "r.json").read_text()):
        assert CANARY not in out
    # a clean scan leaves no log behind, and removes an earlier one
    cl2 = write("ok.yaml", "version: 1\nchecks:\n  - {id: ok, probe: command, with: {run: 'true'}}\n")
    assert cli("scan", str(cl2), "--debug-log", str(log)).code == 0
    assert not log.exists()


def test_readme_plugin_example_works(write, tmp_path):
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    write("probes/license.py", code)
    lic = write("license.lic", "customer=ACME days_left=42\n")
    cl = write("c.yaml", f"version: 1\nprobe_paths: [probes]\nchecks:\n"
                         f"  - {{id: license, probe: mes_license, with: {{path: '{lic}'}}, expect: {{days_left: '>= 30'}}}}\n"
                         f"  - {{id: license-long, probe: mes_license, with: {{path: '{lic}'}}, expect: {{days_left: '>= 60'}}}}\n")
    res = cli("scan", str(cl), "--json", str(tmp_path / "r.json"))
    statuses = [r["status"] for r in json.loads((tmp_path / "r.json").read_text())["results"]]
    assert res.code == 1 and statuses == ["pass", "fail"], res.out + res.err
    assert cli("probes").code == 0


def test_mes_example_validates_with_its_inventory():
    ex = ROOT / "examples" / "mes-precheck"
    res = cli("validate", str(ex / "checklist.yaml"), "-i", str(ex / "inventory.yaml"),
              environ={"MES_DB_PASSWORD": "x" * 8})
    assert res.code == 0, res.err
    assert "x" * 8 not in res.out + res.err


def test_validate_does_not_need_the_secrets_a_scan_needs(write):
    cl = write("c.yaml", "version: 1\nchecks:\n  - {id: a, probe: command, with: {run: 'login --pw ${env:EP_UNSET_PW}'}}\n")
    env = {k: v for k, v in os.environ.items() if k != "EP_UNSET_PW"}
    res = cli("validate", str(cl), environ=env)
    assert res.code == 0, res.err
    assert "not set in this environment (a scan will need them): EP_UNSET_PW" in res.out
    res = cli("scan", str(cl), environ=env)  # a scan still refuses to run without it
    assert res.code == 2 and "EP_UNSET_PW is not set" in res.err
