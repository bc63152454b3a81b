"""Checklist loading: every problem names file, line, column and field, with a did-you-mean."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envprobe.loader import ConfigError, load_file, load_text
from envprobe.registry import Registry
from envprobe.secrets import MASK

GOOD = """\
version: 1
name: {zh-CN: 测试, en: Test}
vars: {port: 8080, disk: /}
checks:
  - id: memory
    title: {zh-CN: 内存, en: Memory}
    probe: memory
    expect: {total_gb: ">= 1"}
  - id: echo
    probe: command
    with: {run: "echo {{ port }}"}
    needs: [memory]
    retry: {times: 2, delay: 500ms}
    timeout: 3s
    severity: recommended
"""

# (file text, expected "line:col: field: message" fragments)
BAD_FILES = [
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n   expect: {}\n", [":5:4: YAML syntax error", "did not find expected '-' indicator"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memroy\n", ["4:12: checks[0].probe: unknown probe 'memroy'; did you mean memory?"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    expect: {totl_gb: 1}\n",
     ["5:14: checks[0].expect.totl_gb: probe 'memory' observes no field 'totl_gb'; did you mean total_gb?"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    expcet: {}\n",
     ["5:5: checks[0].expcet: unknown key 'expcet'; did you mean expect?"]),
    ("version: 1\nchecks:\n  - id: Bad_Id\n    probe: memory\n", ["3:9: checks[0].id: must be kebab-case"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n  - id: a\n    probe: cpu\n",
     ["5:9: checks[1].id: duplicate check id 'a' (first used on line 3)"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    needs: [b]\n", ["5:13: checks[0].needs[0]: unknown check id 'b'"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    needs: [b]\n  - id: b\n    probe: cpu\n    needs: [a]\n",
     ["dependency cycle: a → b → a"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: disk\n    with: {pth: /}\n",
     ["5:12: checks[0].with.pth: unknown key 'pth'; did you mean path?"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    expect: {total_gb: '>= 4 ms'}\n",
     ["5:24: checks[0].expect.total_gb: memory.total_gb: unit ms is a time"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    expect: {total_gb: '~ ([a-'}\n",
     ["checks[0].expect.total_gb", "invalid regular expression"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: command\n    with: {run: 'echo {{ nope }}'}\n",
     ["5:17: checks[0].with.run: template error: 'nope' is undefined (define it under 'vars:'"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: command\n    with: {run: 'echo ${env:ENVPROBE_SURELY_UNSET}'}\n",
     ["5:17: checks[0].with.run: environment variable ENVPROBE_SURELY_UNSET is not set"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    severity: high\n",
     ["5:15: checks[0].severity: Input should be 'blocker', 'required' or 'recommended'"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    retry: {times: -1}\n", ["5:20: checks[0].retry.times"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    timeout: soon\n", ["5:14: checks[0].timeout: a duration"]),
    ("version: 2\nchecks: []\n", ["1:10: version: unsupported version 2"]),
    ("checks:\n  - id: a\n    probe: memory\n    id: b\n", ["4:5: checks[0].id: duplicate key (first defined on line 2)"]),
    ("- just a list\n", ["a checklist is a mapping"]),
    ("version: 1\n", ["missing required field 'checks'"]),
    ("version: 1\nchecks: []\n", ["the checklist has no checks"]),
    ("version: 1\nchecks: {a: 1}\n", ["2:9: checks: must be a list"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    hosts: [db01]\n",
     ["5:13: checks[0].hosts[0]: unknown host 'db01'"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: command\n", ["3:5: checks[0].with: missing required field 'run'"]),
    ("version: 1\nnmae: x\nchecks:\n  - id: a\n    probe: memory\n", ["2:1: nmae: unknown key 'nmae'; did you mean name?"]),
    ("version: 1\nchecks:\n  - id: a\n    probe: memory\n    title: {zh: 内存}\n",
     ["5:13: checks[0].title.zh: unknown key 'zh'"]),
]


@pytest.mark.parametrize(("text", "fragments"), BAD_FILES)
def test_bad_files_name_line_and_field(tmp_path: Path, text: str, fragments: list[str]):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_file(path, Registry(), environ={})
    rendered = str(info.value)
    for frag in fragments:
        assert frag in rendered, rendered
    assert str(path) in rendered


def test_all_problems_reported_at_once(tmp_path: Path):
    text = BAD_FILES[1][0] + "  - id: b\n    probe: memory\n    expect: {totl_gb: 1}\n"
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_file(p, Registry(), environ={})
    assert len(info.value.problems) == 2
    assert [x.line for x in info.value.problems] == [4, 7]


def test_good_file_loads_with_vars_and_options(tmp_path: Path):
    p = tmp_path / "good.yaml"
    p.write_text(GOOD, encoding="utf-8")
    plan = load_file(p, Registry(), cli_vars={"port": "9090"}, environ={})
    assert plan.name == {"zh-CN": "测试", "en": "Test"}
    echo = plan.checks[1]
    assert echo.params.run == "echo 9090"  # --var overrides vars
    assert echo.needs == ["memory"] and echo.retries == 2 and echo.retry_delay == 0.5
    assert echo.timeout == 3.0 and echo.severity.value == "recommended"
    assert plan.checks[0].title == {"zh-CN": "内存", "en": "Memory"}
    assert plan.checks[0].expectations[0].unit == "gb"


def test_template_sandbox_blocks_attribute_escape(tmp_path: Path):
    p = tmp_path / "evil.yaml"
    p.write_text("version: 1\nchecks:\n  - id: a\n    probe: command\n"
                 "    with: {run: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"}\n")
    with pytest.raises(ConfigError) as info:
        load_file(p, Registry(), environ={})
    assert "template error" in str(info.value)


def test_secret_substituted_and_never_in_errors(tmp_path: Path):
    canary = "Canary-S3cret-913"
    p = tmp_path / "s.yaml"
    p.write_text("version: 1\nchecks:\n  - id: a\n    probe: disk\n    with: {path: '${env:PW}'}\n"
                 "  - id: b\n    probe: memory\n    expect: {total_gb: '== ${env:PW}'}\n")
    plan = load_file(p, Registry(), environ={"PW": canary})
    assert plan.checks[0].params.path == canary
    assert plan.masker.text(f"x{canary}y") == f"x{MASK}y"
    assert canary not in str(plan.checks[1].expectations[0].raw)
    # an invalid value that holds a secret: the error names the field, never the value
    p.write_text("version: 1\nchecks:\n  - id: a\n    probe: port\n    with: {port: '${env:PW}'}\n")
    with pytest.raises(ConfigError) as info:
        load_file(p, Registry(), environ={"PW": canary})
    assert "checks[0].with.port" in str(info.value) and canary not in str(info.value)


def test_not_utf8_is_a_clear_error(tmp_path: Path):
    p = tmp_path / "gbk.yaml"
    p.write_bytes("version: 1\nname: 测试\n".encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_file(p, Registry())


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="file not found"):
        load_file(tmp_path / "nope.yaml", Registry())


# -- fuzzing: whatever the input, only clean ConfigErrors -------------------------------------------------
_keys = st.sampled_from(["version", "name", "checks", "id", "probe", "with", "expect", "needs", "retry",
                         "timeout", "severity", "hosts", "title", "vars", "times", "delay", "path", "run",
                         "total_gb", "zh-CN", "en", "from", "hint", "lang", "probe_paths", "x"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False),
                     st.text(alphabet=string.printable + "内存{}$", max_size=12),
                     st.sampled_from(["memory", "disk", "command", ">= 4", "{{ x }}", "${env:HOME}",
                                      "${env:NOPE_X}", "1s", "required", "a-b", "/"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_keys, inner, max_size=5)),
                       max_leaves=25)
_docs = st.one_of(
    st.fixed_dictionaries({"version": st.just(1),
                           "checks": st.lists(st.dictionaries(_keys, _values, max_size=7), max_size=4)}),
    _values,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_docs)
def test_fuzz_structured_documents_only_clean_errors(doc):
    text = yaml.safe_dump(doc, allow_unicode=True)
    try:
        load_text(text, "fuzz.yaml", Registry(), environ={"HOME": "/root"})
    except ConfigError as exc:
        for p in exc.problems:
            assert p.file == "fuzz.yaml" and str(p)


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=string.printable + "内：- {}[]:'\"&*!|>%@`", max_size=200))
def test_fuzz_raw_text_only_clean_errors(text):
    try:
        load_text(text, "raw.yaml", Registry(), environ={})
    except ConfigError as exc:
        assert all(str(p).startswith("raw.yaml") for p in exc.problems)


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(st.sampled_from(["a", "b", "port", "x_1"]),
                              st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                                        st.text(max_size=6), st.booleans()), min_size=1),
       template=st.lists(st.sampled_from(["{{ a }}", "{{b}}", "{{ port }}", "{{x_1 }}", "-", "x", " ", "{{ a|string }}"]),
                         max_size=5))
def test_fast_template_path_renders_like_jinja(values, template):
    from jinja2 import StrictUndefined
    from jinja2.exceptions import UndefinedError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from envprobe.loader import _Renderer

    text = "".join(template)
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    try:
        expected = env.from_string(text).render(values)
    except UndefinedError:
        with pytest.raises(UndefinedError):
            _Renderer(values).render(text)
        return
    assert _Renderer(values).render(text) == expected
