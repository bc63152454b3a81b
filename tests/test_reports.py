"""Reporters: JSON, JUnit, HTML and console, all rendered from the serialized run only.

Golden files pin the JSON and JUnit output exactly; regenerate them with ``UPDATE_GOLDEN=1 pytest
tests/test_reports.py`` and review the diff.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import threading
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from envprobe.model import Result, Run, Severity, Status, summarize, t
from envprobe.reports import console as rconsole
from envprobe.reports import html as rhtml
from envprobe.reports import i18n
from envprobe.reports import json as rjson
from envprobe.reports import junit as rjunit

GOLDEN = Path(__file__).parent / "golden"
PAYLOAD = "<script>alert(1)</script>"

KYLIN_FACTS: dict[str, Any] = {
    "os": {"family": "linux", "id": "kylin", "name": "Kylin Linux Advanced Server", "name_zh": "银河麒麟",
           "version": "V10", "pretty_name": "Kylin Linux Advanced Server V10 (Sword)",
           "kernel": "4.19.90-24.4.v2101.ky10.aarch64", "arch": "aarch64", "hostname": "app01"},
    "cpu": {"logical": 16, "physical": 16, "model": "Kunpeng-920", "vendor": "HiSilicon", "arch": "aarch64",
            "load_1m": 0.42},
    "memory": {"total_gb": 31.3, "available_gb": 22.8, "used_percent": 27.2, "swap_total_gb": 0.0},
    "disks": [
        {"mount": "/", "fstype": "xfs", "device": "/dev/sda2", "total_gb": 50.0, "free_gb": 31.5,
         "used_percent": 37.0},
        {"mount": "/data", "fstype": "xfs", "device": "/dev/sdb1", "total_gb": 500.0, "free_gb": 12.4,
         "used_percent": 97.5},
    ],
}


def make_run() -> Run:
    """A run covering every status, both severities that matter, a bilingual checklist, a <script> payload,
    a terminal escape in command output, a host with full facts and an unreachable host with none."""
    results = [
        Result(check="memory", title=t("Memory", "内存容量"), host="app01", probe="memory",
               severity=Severity.REQUIRED, status=Status.PASS,
               message=t("as expected: total_gb 31.3 GB", "符合期望：total_gb 31.3 GB"),
               expected={"total_gb": ">= 16"}, observed={"total_gb": 31.3, "available_gb": 22.8},
               started_at="2026-11-26T08:00:00.120Z", duration_ms=3,
               details=[{"field": "total_gb", "expected": ">= 16", "observed": "31.3 GB", "ok": True}]),
        Result(check="data-disk", title=t("Data disk", "数据盘空间"), host="app01", probe="disk",
               severity=Severity.BLOCKER, status=Status.FAIL,
               message=t("free_gb: expected >= 100, observed 12.4 GB",
                         "free_gb：期望 >= 100，实际 12.4 GB"),
               expected={"free_gb": ">= 100", "used_percent": "< 80"},
               observed={"path": "/data", "free_gb": 12.4, "used_percent": 97.5},
               started_at="2026-11-26T08:00:00.130Z", duration_ms=12,
               hint=t("Free space on /data or extend the volume (lvextend -r).",
                      "清理 /data 或扩容该卷（lvextend -r）。"),
               details=[{"field": "free_gb", "expected": ">= 100", "observed": "12.4 GB", "ok": False},
                        {"field": "used_percent", "expected": "< 80", "observed": "97.5 %", "ok": False}]),
        Result(check="swap", title=t("Swap", "交换分区"), host="app01", probe="memory",
               severity=Severity.RECOMMENDED, status=Status.WARN,
               message=t("swap_total_gb: expected >= 4, observed 0 GB",
                         "swap_total_gb：期望 >= 4，实际 0 GB"),
               expected={"swap_total_gb": ">= 4"}, observed={"swap_total_gb": 0.0},
               started_at="2026-11-26T08:00:00.140Z", duration_ms=2,
               hint=t("Add a swap file of at least 4 GB.", "添加至少 4 GB 的交换文件。"),
               details=[{"field": "swap_total_gb", "expected": ">= 4", "observed": "0 GB", "ok": False}]),
        Result(check="agent-version", title=t("Agent script", "采集脚本"), host="app01", probe="command",
               severity=Severity.REQUIRED, status=Status.FAIL,
               message=t(f"rc: expected == 0, observed 1; stdout said {PAYLOAD}",
                         f"rc：期望 == 0，实际 1；输出 {PAYLOAD}"),
               expected={"rc": "== 0"},
               observed={"rc": 1, "stdout": f"line 1\n{PAYLOAD}\n\x1b[31mred & <bold>\x1b[0m\n" + "x" * 200,
                         "stderr": ""},
               started_at="2026-11-26T08:00:00.150Z", duration_ms=1534, attempts=3,
               hint=t("Run the script by hand and read its output.", "手工运行该脚本并查看输出。"),
               details=[{"field": "rc", "expected": "== 0", "observed": "1", "ok": False}]),
        Result(check="db-port", title=t("Database port", "数据库端口"), host="app01", probe="tcp",
               severity=Severity.BLOCKER, status=Status.PASS, from_="app01",
               message=t("as expected: state open", "符合期望：state open"),
               expected={"state": "open"}, observed={"state": "open", "connect_ms": 0.8},
               started_at="2026-11-26T08:00:00.160Z", duration_ms=1,
               details=[{"field": "state", "expected": "open", "observed": "open", "ok": True}]),
        Result(check="os", title=t("Operating system", "操作系统"), host="db01", probe="os",
               severity=Severity.REQUIRED, status=Status.ERROR,
               message=t("SSH to 10.0.0.5:22: no answer in 10 s (filtered)",
                         "SSH 连接 10.0.0.5:22：10 秒内无响应（被过滤）"),
               expected={"id": "in [kylin, uos]"},
               started_at="2026-11-26T08:00:00.170Z", duration_ms=10004,
               hint=t("Check that db01 allows inbound 22/tcp from this machine.",
                      "检查 db01 是否放行本机到 22/tcp 的入站连接。")),
        Result(check="db-login", title=t("Database login", "数据库登录"), host="db01", probe="db",
               severity=Severity.REQUIRED, status=Status.SKIP,
               message=t("skipped: needs os (error), which did not pass",
                         "已跳过：依赖的检查 os (error) 未通过"),
               started_at="2026-11-26T08:00:10.180Z", duration_ms=0),
    ]
    run = Run(version="0.1.0", checklist_name=t("MES go-live readiness", "某制造企业 MES 上线环境检查"),
              checklist_path="examples/mes.yaml", started_at="2026-11-26T08:00:00.100Z",
              finished_at="2026-11-26T08:00:10.200Z", lang="zh-CN",
              hosts={"app01": {"address": "10.0.0.10", "facts": copy.deepcopy(KYLIN_FACTS)},
                     "db01": {"address": "10.0.0.5", "facts": {}}},
              results=results)
    return run


@pytest.fixture
def run() -> dict[str, Any]:
    return make_run().to_dict()


def _only(run: dict[str, Any], statuses: set[str]) -> dict[str, Any]:
    out = copy.deepcopy(run)
    out["results"] = [r for r in out["results"] if r["status"] in statuses]
    out["summary"] = summarize([Result.from_dict(r) for r in out["results"]])
    return out


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file (UPDATE_GOLDEN=1)"


# -- i18n ---------------------------------------------------------------------------------------------------
def test_tr_words_and_fallback() -> None:
    assert [i18n.tr(f"status.{s}", "zh-CN") for s in ("pass", "warn", "fail", "error", "skip")] == [
        "通过", "警告", "失败", "错误", "跳过"]
    assert i18n.tr("verdict.not-ready", "en") == "NOT READY"
    assert i18n.tr("verdict.ready-with-warnings", "zh-CN") == "有警告"
    assert i18n.tr("severity.blocker", "zh-CN") == "阻断"
    assert [i18n.tr(k, "zh-CN") for k in ("col.current", "col.expected", "col.severity", "col.advice")] == [
        "当前值", "期望值", "风险等级", "建议操作"]
    assert i18n.tr("verdict.unknown", "fr") == "无法判定"  # unknown language: zh-CN
    assert i18n.tr("verdict.unknown", "en-US") == "UNKNOWN"
    assert i18n.tr("no.such.key", "en") == "no.such.key"


def test_every_key_has_both_languages() -> None:
    for key in i18n.all_keys():
        assert i18n.tr(key, "zh-CN") and i18n.tr(key, "en"), key


def test_host_line() -> None:
    assert i18n.host_line(KYLIN_FACTS, "zh-CN") == "银河麒麟 V10 · 鲲鹏920 · aarch64 · 16 核 · 31.3 GB"
    assert i18n.host_line(KYLIN_FACTS, "en") == "Kylin V10 · Kunpeng 920 · aarch64 · 16 cores · 31.3 GB"
    assert i18n.host_line({}, "zh-CN") == ""
    assert i18n.host_line({"memory": {"total_gb": 8}}, "en") == "8.0 GB"


@pytest.mark.parametrize(("cpu", "zh", "en"), [
    ({"model": "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "vendor": "GenuineIntel"},
     "Intel Xeon Gold 6248", "Intel Xeon Gold 6248"),
    ({"model": "Hygon C86 7185 32-core Processor", "vendor": "HygonGenuine"},
     "海光 C86 7185", "Hygon C86 7185"),
    ({"model": "Phytium,FT-2000+/64", "vendor": "Phytium"}, "飞腾 FT-2000+/64", "Phytium FT-2000+/64"),
    ({"model": "Loongson-3A5000", "vendor": "Loongson"}, "龙芯3A5000", "Loongson 3A5000"),
    ({"model": "", "vendor": "HiSilicon"}, "鲲鹏", "Kunpeng"),
])
def test_cpu_names(cpu: dict[str, str], zh: str, en: str) -> None:
    assert i18n.cpu_name(cpu, "zh-CN") == zh
    assert i18n.cpu_name(cpu, "en") == en


def test_utc_text() -> None:
    assert i18n.utc_text("2026-11-26T08:00:00.123Z") == "2026-11-26 08:00:00Z"
    assert i18n.utc_text("2026-11-26T16:00:00+08:00") == "2026-11-26 08:00:00Z"
    assert i18n.utc_text("garbage") == "garbage"


# -- JSON ---------------------------------------------------------------------------------------------------
def test_json_golden(run: dict[str, Any]) -> None:
    _golden("run.json", rjson.dumps(run))


def test_json_roundtrip(run: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    rjson.write(run, path)
    text = path.read_text(encoding="utf-8")
    assert "某制造企业" in text  # not \u-escaped
    assert list(json.loads(text)) == list(run)  # key order kept
    assert rjson.load(path) == run
    assert Run.from_dict(rjson.load(path)).to_dict() == run


def test_json_write_survives_lone_surrogates(run: dict[str, Any], tmp_path: Path) -> None:
    run["results"][3]["observed"]["stdout"] = "gbk bytes: \udcc4\udce3"
    path = tmp_path / "result.json"
    rjson.write(run, path)
    assert rjson.load(path)["results"][3]["observed"]["stdout"] == "gbk bytes: \udcc4\udce3"
    html = rhtml.render(run)  # and the HTML still encodes as UTF-8
    html.encode("utf-8")
    assert "gbk bytes: \\udcc4\\udce3" in html


def test_json_load_rejects_other_schema(run: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**run, "schema": 2}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"unsupported result schema 2 .*reads schema 1; upgrade envprobe"):
        rjson.load(path)


def test_json_load_rejects_non_json(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("<html>not json</html>", encoding="utf-8")
    with pytest.raises(ValueError, match=r"r\.json: not valid JSON \(line 1, column 1\)"):
        rjson.load(path)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="not UTF-8"):
        rjson.load(path)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("results"), "missing required key: 'results'"),
    (lambda d: d.pop("schema"), "no 'schema' key"),
    (lambda d: d["results"][0].pop("status"), r"results\[0\]: missing required key: 'status'"),
    (lambda d: d["results"][0].update(status="ok"), r"results\[0\]\.status: 'ok' is not one of"),
    (lambda d: d.update(hosts=[]), "'hosts' must be a JSON object"),
])
def test_json_validate_names_the_problem(run: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(run)
    with pytest.raises(ValueError, match=message):
        rjson.loads(json.dumps(run), "r.json")
    with pytest.raises(ValueError, match="expected a JSON object at the top level, found an array"):
        rjson.loads("[]", "r.json")


# -- JUnit --------------------------------------------------------------------------------------------------
def test_junit_golden(run: dict[str, Any]) -> None:
    _golden("run.junit.xml", rjunit.render(run))


def _counts(el: ET.Element) -> tuple[str | None, ...]:
    return tuple(el.get(k) for k in ("tests", "failures", "errors", "skipped"))


def test_junit_parses_and_counts(run: dict[str, Any]) -> None:
    root = ET.fromstring(rjunit.render(run).encode("utf-8"))
    assert root.tag == "testsuites"
    assert _counts(root) == ("7", "2", "1", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["app01", "db01"]
    app, db = suites["app01"], suites["db01"]
    assert _counts(app) == ("5", "2", "0", "0")
    assert _counts(db) == ("2", "0", "1", "1")
    assert app.get("timestamp") == "2026-11-26T08:00:00.120Z"
    assert len(root.findall(".//failure")) == 2 and len(root.findall(".//error")) == 1
    assert len(root.findall(".//skipped")) == 1
    cases = {c.get("name"): c for c in root.iter("testcase")}
    disk = cases["data-disk: Data disk"]
    assert disk.get("classname") == "disk" and disk.get("time") == "0.012"
    failure = disk.find("failure")
    assert failure is not None and failure.text is not None
    assert "free_gb: current value 12.4 GB, expected >= 100 [not met]" in failure.text
    assert "recommended action: Free space on /data" in failure.text
    warn = cases["swap: Swap"]
    assert warn.find("failure") is None and warn.find("skipped") is None
    out = warn.find("system-out")
    assert out is not None and out.text is not None and out.text.startswith("WARN: swap_total_gb")
    agent = cases["agent-version: Agent script"]
    assert agent.get("time") == "1.534"
    agent_failure = agent.find("failure")
    assert agent_failure is not None and PAYLOAD in (agent_failure.get("message") or "")
    props = {p.get("name"): p.get("value") for p in app.iter("property")}
    assert props["host"] == "Kylin V10 · Kunpeng 920 · aarch64 · 16 cores · 31.3 GB"


def test_junit_survives_control_characters_and_chinese(run: dict[str, Any]) -> None:
    run["results"][1]["message"]["zh-CN"] = "输出含控制字符 \x1b[31m\x00\x07\udcff 和 ]]> 与 \"引号\""
    text = rjunit.render(run, lang="zh-CN")
    root = ET.fromstring(text.encode("utf-8"))
    failure = root.find(".//testcase[@classname='disk']/failure")
    assert failure is not None
    assert failure.get("message") == "输出含控制字符 \\x00\\x07\\udcff 和 ]]> 与 \"引号\""
    assert root.get("name") == "某制造企业 MES 上线环境检查"


def test_junit_empty_run() -> None:
    empty = Run(version="0.1.0", checklist_name="x", checklist_path="x.yaml", started_at="").to_dict()
    root = ET.fromstring(rjunit.render(empty))
    assert root.get("tests") == "0"


# -- HTML ---------------------------------------------------------------------------------------------------
class _Balance(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Balance:
    p = _Balance()
    p.feed(html)
    p.close()
    return p


def test_html_is_self_contained(run: dict[str, Any]) -> None:
    for lang in ("zh-CN", "en"):
        html = rhtml.render(run, lang=lang)
        lower = html.lower()
        assert "http://" not in lower and "https://" not in lower
        assert not re.search(r"""(src|href|action|data|poster)\s*=""", lower)
        assert not re.search(r"""url\s*\(|@import|["'(]\s*//""", lower)
        assert "<link" not in lower and "<img" not in lower and "<iframe" not in lower
        assert "<script" not in lower
        assert "<style>" in lower


def test_html_escapes_everything(run: dict[str, Any]) -> None:
    html = rhtml.render(run, lang="en")
    assert PAYLOAD not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "red &amp; &lt;bold&gt;" in html
    assert "\x1b" not in html and "[31m" not in html  # terminal colour codes removed
    parsed = _parse(html)
    assert "script" not in parsed.tags
    text = "".join(parsed.text)
    assert PAYLOAD in text  # shown as text: in the message and in the command output
    assert text.count(PAYLOAD) >= 2


def test_html_well_formed(run: dict[str, Any]) -> None:
    for lang in ("zh-CN", "en"):
        parsed = _parse(rhtml.render(run, lang=lang))
        assert parsed.errors == []
        assert parsed.stack == []
        assert {"html", "head", "body", "main", "table", "details", "style"} <= parsed.tags


def test_html_content_zh(run: dict[str, Any]) -> None:
    html = rhtml.render(run, lang="zh-CN")
    assert '<html lang="zh-CN">' in html
    assert "未就绪" in html
    for word in ("当前值", "期望值", "风险等级", "建议操作", "阻断", "通过", "警告", "失败", "错误", "跳过"):
        assert word in html, word
    assert "某制造企业 MES 上线环境检查" in html
    assert "银河麒麟 V10 · 鲲鹏920 · aarch64 · 16 核 · 31.3 GB" in html
    assert "/data: 可用 12.4 GB / 共 500.0 GB（已用 97.5%）" in html
    assert "清理 /data 或扩容该卷" in html
    assert "无主机信息" in html  # db01 has empty facts
    assert "2026-11-26 08:00:00Z" in html and "2026-11-26 08:00:10Z" in html
    assert "envprobe 0.1.0" in html


def test_html_findings_before_others(run: dict[str, Any]) -> None:
    html = rhtml.render(run, lang="en")
    assert "NOT READY" in html
    findings = html[html.index("<h2>Findings"):html.index("<h2>Other results")]
    others = html[html.index("<h2>Other results"):]
    for check in ("data-disk", "agent-version", "swap", "os"):
        assert f">{check}</code>" in findings and f">{check}</code>" not in others, check
    for check in ("memory", "db-port", "db-login"):
        assert f">{check}</code>" in others and f">{check}</code>" not in findings, check
    # worst first within a host: the blocker failure, then the required one, then the warning
    assert findings.index(">data-disk<") < findings.index(">agent-version<") < findings.index(">swap<")
    body = findings
    # the failing fields' current and expected values
    assert "12.4 GB" in body and "&gt;= 100" in body and "97.5 %" in body


def test_html_verdicts() -> None:
    base = make_run().to_dict()
    assert "有警告" in rhtml.render(_only(base, {"warn", "pass"}), lang="zh-CN")
    assert "READY WITH WARNINGS" in rhtml.render(_only(base, {"warn"}), lang="en")
    assert "就绪" in rhtml.render(_only(base, {"pass"}), lang="zh-CN")
    assert "无法判定" in rhtml.render(_only(base, {"error", "pass"}), lang="zh-CN")


def test_html_copes_with_partial_input() -> None:
    minimal = {"envprobe": "0.1.0", "schema": 1, "checklist": {"name": "plain name", "path": ""},
               "started_at": "", "finished_at": "", "summary": {"verdict": "ready"},
               "hosts": {"h": {"address": None, "facts": {"os": {"id": "ubuntu"}, "disks": [{}]}}},
               "results": [{"check": "c", "host": "other", "status": "fail", "title": "plain title",
                            "details": [{"field": "x"}]}]}
    for lang in ("zh-CN", "en", "fr"):
        html = rhtml.render(minimal, lang=lang)
        assert "plain title" in html
        assert _parse(html).errors == []


def test_html_print_css(run: dict[str, Any]) -> None:
    html = rhtml.render(run)
    assert "@media print" in html and "break-inside: avoid" in html and "print-color-adjust: exact" in html


def test_template_ships_as_package_data() -> None:
    from importlib.resources import files

    assert files("envprobe.reports").joinpath("templates/report.html.j2").is_file()


# -- console ------------------------------------------------------------------------------------------------
def _console_text(run: dict[str, Any], lang: str = "en", quiet: bool = False) -> str:
    from rich.console import Console

    console = Console(record=True, width=120, file=io.StringIO(), color_system=None)
    rconsole.render(run, console, lang, quiet=quiet)
    return console.export_text()


def test_console_failures_first(run: dict[str, Any]) -> None:
    out = _console_text(run)
    assert out.index("data-disk") < out.index("memory")
    assert out.index("agent-version") < out.index("db-port")
    assert "recommended action: Free space on /data" in out
    assert out.index("app01") < out.index("db01")
    assert "Kylin V10 · Kunpeng 920" in out
    last = out.strip().splitlines()[-1]
    assert "NOT READY" in last and "PASS 2" in last and "FAIL 2" in last and "ERROR 1" in last
    assert PAYLOAD in out  # printed literally, never interpreted as markup


def test_console_quiet_omits_passes(run: dict[str, Any]) -> None:
    out = _console_text(run, quiet=True)
    assert "data-disk" in out and "swap" in out and "db-login" in out
    assert "memory" not in out.replace("Kunpeng", "") and "db-port" not in out
    assert "NOT READY" in out
    all_pass = _console_text(_only(run, {"pass"}), quiet=True)
    assert all_pass.strip().splitlines() == [all_pass.strip().splitlines()[-1]]
    assert "READY" in all_pass


def test_console_zh(run: dict[str, Any]) -> None:
    out = _console_text(run, lang="zh-CN")
    assert "未就绪" in out and "失败" in out and "建议操作" in out


def test_console_does_not_interpret_markup(run: dict[str, Any]) -> None:
    run["results"][1]["message"]["en"] = "[bold red]not markup[/] [link=x]y[/link]"
    out = _console_text(run)
    assert "[bold red]not markup[/]" in out


# -- progress -----------------------------------------------------------------------------------------------
def _tty_console(buf: io.StringIO) -> Any:
    from rich.console import Console

    return Console(file=buf, force_terminal=True, width=80)


def test_progress_silent_when_not_a_tty() -> None:
    from rich.console import Console

    buf = io.StringIO()
    p = rconsole.ProgressPrinter(5, console=Console(file=buf), delay=0.01)
    time.sleep(0.1)
    for r in make_run().results[:3]:
        p(r)
    p.stop()
    assert not p.shown and buf.getvalue() == ""


def test_progress_silent_for_a_quick_scan() -> None:
    buf = io.StringIO()
    p = rconsole.ProgressPrinter(3, console=_tty_console(buf), delay=0.5)
    for r in make_run().results[:3]:
        p(r)
    p.stop()
    time.sleep(0.05)
    assert not p.shown and buf.getvalue() == ""


def test_progress_shows_after_delay_and_is_thread_safe() -> None:
    buf = io.StringIO()
    results = make_run().results
    total = 8 * len(results)
    with rconsole.ProgressPrinter(total, console=_tty_console(buf), delay=0.05) as p:
        deadline = time.monotonic() + 5
        while not p.shown and time.monotonic() < deadline:
            time.sleep(0.01)
        assert p.shown
        threads = [threading.Thread(target=lambda: [p(r) for r in results]) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert p.done == total
    assert not p.shown
    assert buf.getvalue() != ""
    p.stop()  # idempotent


def test_progress_enabled_flag() -> None:
    buf = io.StringIO()
    p = rconsole.ProgressPrinter(2, console=_tty_console(buf), delay=0.01, enabled=False)
    time.sleep(0.1)
    p.stop()
    assert buf.getvalue() == ""


def test_progress_default_console_is_silent_off_a_tty() -> None:
    p = rconsole.ProgressPrinter(3, delay=0.01)  # pytest's stderr is not a terminal
    time.sleep(0.05)
    p(make_run().results[0])
    p.stop()
    assert not p.shown


# -- interrupted runs, dispatch -----------------------------------------------------------------------------
def test_interrupted_run_is_flagged_everywhere(run: dict[str, Any]) -> None:
    run["interrupted"] = True
    assert "扫描被中断" in rhtml.render(run, lang="zh-CN")
    assert "The scan was interrupted" in _console_text(run)


def test_write_dispatch(run: dict[str, Any], tmp_path: Path) -> None:
    from envprobe import reports

    for fmt, name in (("json", "r.json"), ("junit", "r.xml"), ("html", "r.html")):
        reports.write(fmt, run, tmp_path / name)
    assert rjson.load(tmp_path / "r.json") == run
    ET.parse(tmp_path / "r.xml")
    assert "未就绪" in (tmp_path / "r.html").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        reports.write("pdf", run, tmp_path / "r.pdf")


def test_vantage_shown_as_from_to_host(run: dict[str, Any]) -> None:
    r = copy.deepcopy(run)
    r["results"][0]["from"] = "app01"
    host = r["results"][0]["host"]
    assert f"app01 → {host}" in rhtml.render(r, "en")
    buf = io.StringIO()
    rconsole.render_plain(r, buf, "en")
    assert f"[app01 → {host}]" in buf.getvalue()
