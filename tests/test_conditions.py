"""The richer expectation language: when:, expectations derived from facts, any_of, unlimited, loop:, consistent:.

Facts come from this machine (the os and memory probes, real values); fleets are several inventory hosts served
by local transports, told apart by their host variables.
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import psutil
import pytest

from envprobe import expect
from envprobe.conditions import FLEET
from envprobe.errors import ConfigError
from envprobe.inventory import load as load_inventory
from envprobe.loader import load_text
from envprobe.model import Status
from envprobe.registry import Registry
from envprobe.reports import json as rjson
from envprobe.runner import Runner
from envprobe.transport.local import LocalTransport
from tests.conftest import cli


def run_text(text: str, tmp_path: Path, inventory_text: str | None = None):
    (tmp_path / "c.yaml").write_text(text)
    inv = None
    transports: dict = {"local": LocalTransport()}
    if inventory_text is not None:
        (tmp_path / "inv.yaml").write_text(inventory_text)
        inv = load_inventory(tmp_path / "inv.yaml", environ={})
        transports = {h: LocalTransport() for h in inv.hosts}
    plan = load_text(text, str(tmp_path / "c.yaml"), Registry(), environ={}, base_dir=tmp_path, inventory=inv)
    return Runner(plan, transports, host_facts=False).run()


def results(run) -> dict[tuple[str, str], object]:
    return {(r.check, r.host): r for r in run.results}


def load_problems(text: str, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(text, str(tmp_path / "c.yaml"), Registry(), environ={}, base_dir=tmp_path)
    return str(info.value)


TOTAL_GB = psutil.virtual_memory().total / 2**30


# -- when: -------------------------------------------------------------------------------------------------
def test_when_on_facts_and_vars_runs_or_skips_with_the_reason(tmp_path):
    run = run_text(f"""\
version: 1
vars: {{mode: cluster, limits: {{big: 64}}}}
checks:
  - {{id: on-linux, probe: command, with: {{run: "true"}}, when: "os.family == linux"}}
  - {{id: on-windows, probe: command, with: {{run: "true"}}, when: "os.family == windows"}}
  - {{id: big-box, probe: command, with: {{run: "true"}}, when: "memory.total_gb > {TOTAL_GB * 4:.0f} GB"}}
  - {{id: any-box, probe: command, with: {{run: "true"}}, when: ["memory.total_gb > 0.1", "os.family ~ ^lin"]}}
  - {{id: cluster, probe: command, with: {{run: "true"}}, when: "vars.mode == cluster"}}
  - {{id: single, probe: command, with: {{run: "true"}}, when: "mode == single"}}
  - {{id: nested, probe: command, with: {{run: "true"}}, when: "limits.big >= 64"}}
  - {{id: after-skip, probe: command, with: {{run: "true"}}, needs: [single]}}
""", tmp_path)
    r = {k[0]: v for k, v in results(run).items()}
    assert r["on-linux"].status is Status.PASS
    assert r["on-windows"].status is Status.SKIP
    assert r["on-windows"].message["en"] == "skipped: condition `os.family == windows` is false (os.family is linux)"
    assert "不成立" in r["on-windows"].message["zh-CN"]
    assert r["big-box"].status is Status.SKIP and "memory.total_gb is" in r["big-box"].message["en"]
    assert r["any-box"].status is Status.PASS
    assert r["cluster"].status is Status.PASS
    assert r["single"].status is Status.SKIP and "(mode is cluster)" in r["single"].message["en"]
    assert r["nested"].status is Status.PASS
    assert r["after-skip"].status is Status.SKIP  # a skipped prerequisite is not a passed one
    assert r["single"].attempts == 1


def test_when_errors_name_the_line_and_the_field(tmp_path):
    text = """\
version: 1
checks:
  - {id: a, probe: command, with: {run: "true"}, when: "nosuch.thing == 1"}
  - {id: b, probe: command, with: {run: "true"}, when: "memory.totl_gb > 1"}
  - {id: c, probe: command, with: {run: "true"}, when: "os.family =~ x"}
  - {id: d, probe: command, with: {run: "true"}, when: "== 3"}
"""
    msg = load_problems(text, tmp_path)
    assert "c.yaml:3:" in msg and "unknown name 'nosuch'" in msg
    assert "c.yaml:4:" in msg and "did you mean memory.total_gb?" in msg
    assert "c.yaml:6:" in msg and "a condition is NAME [EXPECTATION]" in msg


# -- expectations derived from the host's facts -------------------------------------------------------------
def test_expectations_refer_to_other_facts_of_the_same_host(tmp_path):
    run = run_text("""\
version: 1
checks:
  - id: avail-below-total
    probe: memory
    expect: {available_gb: "<= {{ memory.total_gb }}", total_gb: ">= {{ memory.total_gb * 0.5 }} GB"}
  - id: impossible
    probe: memory
    expect: {available_gb: "> {{ memory.total_gb * 2 }}"}
  - id: kernel-matches
    probe: command
    with: {run: "uname -r"}
    expect: {stdout: "{{ os.kernel }}"}
""", tmp_path)
    r = {k[0]: v for k, v in results(run).items()}
    assert r["avail-below-total"].status is Status.PASS, r["avail-below-total"].message
    shown = r["avail-below-total"].expected["total_gb"]
    assert shown.startswith(">= ") and shown.endswith(" GB")
    assert float(shown.split()[1]) == pytest.approx(r["avail-below-total"].observed["total_gb"] * 0.5, rel=0.01)
    assert r["impossible"].status is Status.FAIL
    assert r["kernel-matches"].status is Status.PASS
    assert r["kernel-matches"].expected["stdout"] == platform.release()


def test_a_derived_expectation_with_a_misspelt_fact_is_a_load_error(tmp_path):
    msg = load_problems("""\
version: 1
checks:
  - {id: m, probe: memory, expect: {available_gb: "<= {{ memory.total }}"}}
""", tmp_path)
    assert "c.yaml:3:" in msg and "observes no field 'total'" in msg and "total_gb" in msg


def test_a_variable_shadows_a_probe_of_the_same_name(tmp_path):
    run = run_text("""\
version: 1
vars: {memory: {total_gb: 1}}
checks:
  - {id: m, probe: memory, expect: {total_gb: ">= {{ memory.total_gb }}"}}
""", tmp_path)
    assert run.results[0].status is Status.PASS and run.results[0].expected["total_gb"] == ">= 1"


# -- any_of and unlimited ------------------------------------------------------------------------------------
def test_any_of_alternatives_and_unlimited():
    java = expect.parse({"any_of": ["~ ^11\\.", ">= 17"]})
    assert java.check("11.0.21").ok and java.check("17.0.2").ok and java.check("21").ok
    assert not java.check("8.0.392").ok and not java.check("14.0.1").ok
    assert java.display() == "~ ^11\\. or >= 17"
    assert expect.parse({"all_of": [">= 2", "< 5"]}).check(3).ok
    assert not expect.parse({"all_of": [">= 2", "< 5"]}).check(5).ok
    with pytest.raises(expect.ExpectSyntaxError):
        expect.parse({"any_of": []})
    with pytest.raises(expect.ExpectSyntaxError):
        expect.parse({"one_of": [1]})
    assert expect.parse(">= 65536").check(math.inf).ok
    assert expect.parse(">= 65536").check("unlimited").ok
    assert expect.parse("== unlimited").check(math.inf).ok
    assert not expect.parse("== unlimited").check(1024).ok
    assert not expect.parse("<= 4096").check(math.inf).ok
    assert expect.parse("unlimited").check(math.inf).ok


def test_unlimited_is_written_as_a_string_in_strict_json():
    text = rjson.dumps({"observed": {"soft": math.inf, "hard": 4096, "odd": math.nan}})
    data = json.loads(text)
    assert data["observed"] == {"soft": "unlimited", "hard": 4096, "odd": None}
    assert "Infinity" not in text and "NaN" not in text


# -- loop: -------------------------------------------------------------------------------------------------
def test_loop_expands_one_check_per_item_and_needs_waits_for_all(tmp_path):
    run = run_text("""\
version: 1
vars: {files: [{name: hosts, path: /etc/hosts}, {name: nope, path: /nonexistent/envprobe}]}
checks:
  - id: exit
    title: {en: "exit code {{ item }}", zh-CN: "退出码 {{ item }}"}
    probe: command
    with: {run: "exit {{ item }}"}
    expect: {exit_code: 0}
    loop: [0, 3]
  - id: file
    probe: file
    with: {path: "{{ item.path }}"}
    expect: {exists: true}
    loop_from: vars.files
  - {id: after-exit, probe: command, with: {run: "true"}, needs: [exit]}
""", tmp_path)
    r = {k[0]: v for k, v in results(run).items()}
    assert set(r) == {"exit-0", "exit-3", "file-hosts", "file-nope", "after-exit"}
    assert r["exit-0"].status is Status.PASS and r["exit-3"].status is Status.FAIL
    assert r["exit-3"].title == {"en": "exit code 3", "zh-CN": "退出码 3"}
    assert r["file-hosts"].status is Status.PASS and r["file-nope"].status is Status.FAIL
    assert r["file-nope"].title["en"] == "file [nope]"
    assert r["after-exit"].status is Status.SKIP and "exit-3 (fail)" in r["after-exit"].message["en"]


def test_loop_errors(tmp_path):
    msg = load_problems("""\
version: 1
vars: {port: 5}
checks:
  - {id: a, probe: command, with: {run: "true"}, loop_from: ports}
  - {id: b, probe: command, with: {run: "true"}, loop_from: port}
  - {id: c, probe: command, with: {run: "true"}, loop: []}
  - {id: d, probe: command, with: {run: "true"}, loop: [1], loop_from: port}
  - {id: e, probe: command, with: {run: "true"}, loop: [x, X]}
""", tmp_path)
    assert "c.yaml:4:" in msg and "variable 'ports' is not defined" in msg
    assert "c.yaml:5:" in msg and "loop_from needs a list" in msg
    assert "c.yaml:6:" in msg and "the loop has no items" in msg
    assert "c.yaml:7:" in msg and "either 'loop' or 'loop_from'" in msg
    assert "c.yaml:8:" not in msg  # x and X make e-x and e-x-2


def test_a_vendor_port_table_via_loop_against_real_listeners(tmp_path):
    import socket

    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(3)]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[1]
    closed.close()
    ports = [s.getsockname()[1] for s in listeners]
    try:
        run = run_text(f"""\
version: 1
vars: {{ports: {ports + [dead]}}}
checks:
  - {{id: port, probe: tcp, with: {{host: 127.0.0.1, port: "{{{{ item }}}}"}}, expect: {{state: open}}, loop_from: ports}}
""", tmp_path)
    finally:
        for s in listeners:
            s.close()
    r = {k[0]: v for k, v in results(run).items()}
    assert {f"port-{p}" for p in ports} | {f"port-{dead}"} == set(r)
    assert all(r[f"port-{p}"].status is Status.PASS for p in ports)
    assert r[f"port-{dead}"].status is Status.FAIL and r[f"port-{dead}"].observed["state"] == "refused"


# -- consistent: -----------------------------------------------------------------------------------------------
FLEET_INV = """\
hosts:
  app01: {address: 10.0.0.1, vars: {tz: Asia/Shanghai, rc: 0}}
  app02: {address: 10.0.0.2, vars: {tz: Asia/Shanghai, rc: 1}}
  db01:  {address: 10.0.0.3, vars: {tz: UTC, rc: 3}}
"""


def test_consistent_names_the_odd_host_out_and_judges_numeric_spread(tmp_path):
    run = run_text("""\
version: 1
checks:
  - id: tz
    probe: command
    hosts: [all]
    with: {run: "echo {{ tz }}; exit {{ rc }}"}
    consistent: [stdout, {exit_code: "<= 2"}]
  - id: same
    probe: command
    hosts: [all]
    with: {run: "echo same"}
    consistent: [stdout, {exit_code: "<= 2"}]
""", tmp_path, FLEET_INV)
    r = results(run)
    fleet = r[("tz", FLEET)]
    assert fleet.status is Status.FAIL
    en = fleet.message["en"]
    assert "stdout: 2 of 3 hosts have Asia/Shanghai; db01 has UTC" in en
    assert "exit_code spread across hosts is 3, expected <= 2: lowest app01 (0), highest db01 (3)" in en
    assert "db01 为 UTC" in fleet.message["zh-CN"]
    assert fleet.observed["stdout"] == {"app01": "Asia/Shanghai", "app02": "Asia/Shanghai", "db01": "UTC"}
    assert r[("same", FLEET)].status is Status.PASS
    assert "stdout is same on all 3 hosts" in r[("same", FLEET)].message["en"]
    # per-host results stay as they were (the command's own exit codes are not expectations here)
    assert r[("tz", "db01")].status is Status.PASS
    assert run.summary["verdict"] == "not-ready"


def test_consistent_with_a_single_answering_host_is_skipped(tmp_path):
    run = run_text("""\
version: 1
checks:
  - {id: tz, probe: command, hosts: [app01], with: {run: "echo x"}, consistent: [stdout]}
""", tmp_path, FLEET_INV)
    fleet = results(run)[("tz", FLEET)]
    assert fleet.status is Status.SKIP and "at least two hosts" in fleet.message["en"]


def test_consistent_field_must_exist(tmp_path):
    msg = load_problems("""\
version: 1
checks:
  - {id: tz, probe: command, with: {run: "echo x"}, consistent: [stdot]}
""", tmp_path)
    assert "c.yaml:3:" in msg and "did you mean stdout?" in msg


def test_fleet_result_renders_in_every_report(tmp_path):
    (tmp_path / "c.yaml").write_text("""\
version: 1
checks:
  - {id: tz, probe: command, hosts: [all], with: {run: "echo {{ tz }}"}, consistent: [stdout]}
""")
    # the hosts are served by local transports in-process; the reports are rendered from the saved run
    run = run_text((tmp_path / "c.yaml").read_text(), tmp_path, FLEET_INV)
    out = tmp_path / "r.json"
    rjson.write(run.to_dict(), out)
    html, junit = tmp_path / "r.html", tmp_path / "r.xml"
    res = cli("report", str(out), "--html", str(html), "--junit", str(junit), "--lang", "en")
    assert res.code in (0, 1), res.err
    assert "db01 has UTC" in html.read_text() and "db01 has UTC" in junit.read_text()
    assert "all hosts (consistency across hosts)" in html.read_text()
    assert 'name="all hosts (consistency across hosts)"' in junit.read_text()
    import io

    from envprobe.reports.console import render_plain

    buf = io.StringIO()
    render_plain(run.to_dict(), buf, lang="zh-CN")
    assert "全部主机（主机间一致性）" in buf.getvalue()


def test_oracle_preinstall_example_runs_here_with_honest_results(tmp_path):
    """The example reproducing Oracle 19c's published pre-install table: typed probes only, results that agree
    with this machine read directly."""
    import shutil
    import subprocess

    ex = Path(__file__).resolve().parent.parent / "examples" / "oracle19c-preinstall.yaml"
    assert "probe: command" not in ex.read_text(encoding="utf-8")
    out = tmp_path / "r.json"
    res = cli("scan", str(ex), "--json", str(out), "--lang", "en")
    assert res.code in (0, 1), res.err
    r = {x["check"]: x for x in json.loads(out.read_text())["results"]}
    # exactly one of the three swap rules applies, chosen by this machine's RAM
    ran = [k for k in ("swap-small-ram", "swap-mid-ram", "swap-large-ram") if r[k]["status"] != "skip"]
    expected_rule = ("swap-small-ram" if TOTAL_GB <= 2 else "swap-mid-ram" if TOTAL_GB <= 16 else "swap-large-ram")
    assert ran == [expected_rule]
    swap_gb = psutil.swap_memory().total / 2**30
    assert (r[expected_rule]["status"] == "pass") == (swap_gb >= {"swap-small-ram": TOTAL_GB * 1.5,
                                                                  "swap-mid-ram": TOTAL_GB * 0.98,
                                                                  "swap-large-ram": 15.9}[expected_rule])
    # kernel parameters: one check per table row, judged on the values /proc/sys holds
    aio = int(Path("/proc/sys/fs/aio-max-nr").read_text())
    assert r["sysctl-fs-aio-max-nr"]["status"] == ("pass" if aio >= 1048576 else "fail")
    sem = [int(x) for x in Path("/proc/sys/kernel/sem").read_text().split()]
    assert r["sysctl-kernel-sem"]["status"] == ("pass" if all(a >= b for a, b in zip(sem, [250, 32000, 100, 128],
                                                                                       strict=True)) else "fail")
    # packages: installed exactly when dpkg says so
    if shutil.which("dpkg-query"):
        for check, names in (("pkg-bc", ["bc"]), ("pkg-ksh", ["ksh", "ksh93"]), ("pkg-make", ["make"])):
            have = any(subprocess.run(["dpkg-query", "-W", "-f", "${Status}", n], capture_output=True,
                                      text=True).stdout.endswith(" installed") for n in names)
            assert r[check]["status"] == ("pass" if have else "fail"), check
    # the oracle account does not exist here: the limits checks are skipped with the reason, not guessed
    import pwd

    try:
        pwd.getpwnam("oracle")
    except KeyError:
        assert r["user-oracle"]["status"] == "fail"
        assert r["oracle-nofile"]["status"] == "skip" and "user-oracle" in r["oracle-nofile"]["message"]["en"]


SITE_PROBE = '''
from envprobe.model import t
from envprobe.probes.base import Facts, Probe
from envprobe.schema import Field


class SiteFacts(Facts):
    tier: str = Field(description="the site's support tier")
    cores_needed: int = Field(description="cores the product needs here")


class SiteProbe(Probe):
    name = "site_info"
    summary = t("site facts", "现场信息")
    Facts = SiteFacts
    example = "- id: site\\n  probe: site_info\\n"

    def collect(self, ctx, params):
        return SiteFacts(tier="gold", cores_needed=1)
'''


def test_facts_of_a_plugin_probe_from_probe_paths(tmp_path):
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "site.py").write_text(SITE_PROBE)
    run = run_text("""\
version: 1
probe_paths: [./probes]
checks:
  - {id: gold-only, probe: command, with: {run: "true"}, when: "site_info.tier == gold"}
  - {id: silver-only, probe: command, with: {run: "true"}, when: "site_info.tier == silver"}
  - {id: enough-cores, probe: cpu, with: {sample_ms: 0}, expect: {logical: ">= {{ site_info.cores_needed }}"}}
""", tmp_path)
    r = {k[0]: v for k, v in results(run).items()}
    assert r["gold-only"].status is Status.PASS
    assert r["silver-only"].status is Status.SKIP and "(site_info.tier is gold)" in r["silver-only"].message["en"]
    assert r["enough-cores"].status is Status.PASS and r["enough-cores"].expected["logical"] == ">= 1"
