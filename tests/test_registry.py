"""The probe registry: entry points (built-ins and a real installed plugin), local folders, conflicts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from envprobe.loader import ConfigError, load_file
from envprobe.probes.base import Probe
from envprobe.registry import Registry, RegistryError

BUILTINS = ["command", "cpu", "disk", "file", "memory", "os", "port", "process", "service"]


def test_builtins_register_through_entry_points():
    reg = Registry()
    for name in BUILTINS:
        assert name in reg.names()
        cls = reg.get(name)
        assert issubclass(cls, Probe) and cls.name == name
        assert reg.origin(name).startswith("envprobe.probes.")


def test_installed_plugin_distribution_is_a_probe_like_any_other():
    # tests/plugin_dist is pip-installed by scripts/test: a separate distribution with its own entry point
    reg = Registry()
    assert "sample_clock" in reg.names(), "run scripts/test (it installs tests/plugin_dist)"
    cls = reg.get("sample_clock")
    assert reg.origin("sample_clock") == "envprobe_sample_plugin:ClockProbe"
    assert "epoch_s" in cls.fields()


def test_unknown_name_gets_did_you_mean():
    with pytest.raises(RegistryError, match="did you mean memory"):
        Registry().get("memroy")
    with pytest.raises(RegistryError, match="unknown probe 'zzzz'$"):
        Registry().get("zzzz")


def _fake_dist(tmp_path: Path, dist: str, body: str) -> None:
    info = tmp_path / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(body)


def test_two_plugins_claiming_one_name_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_dist(tmp_path, "plugin_a", "[envprobe.probes]\nclash = plugin_a:Clash\n")
    _fake_dist(tmp_path, "plugin_b", "[envprobe.probes]\nclash = plugin_b:Clash\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry()
    with pytest.raises(RegistryError, match="claimed by several plugins"):
        reg.get("clash")
    assert reg.get("memory").name == "memory"  # the rest of the registry still works


def test_broken_plugin_is_reported_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_dist(tmp_path, "plugin_c", "[envprobe.probes]\nbroken = plugin_c_missing_module:Broken\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RegistryError, match="probe 'broken' .* failed to load: ModuleNotFoundError"):
        Registry().get("broken")


LOCAL_PROBE = '''
from typing import Any
from envprobe.schema import Field, Model
from envprobe.model import t
from envprobe.probes.base import Facts, Probe


class Params(Model):
    word: str = "hi"


class SiteFacts(Facts):
    echoed: str = Field(description="the word")


class SiteProbe(Probe):
    name = "site_echo"
    summary = t("echo a word", "回显")
    Params = Params
    Facts = SiteFacts

    def collect(self, ctx, params: Any) -> SiteFacts:
        return SiteFacts(echoed=params.word)
'''


def test_probe_paths_load_a_local_folder(tmp_path: Path):
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "site.py").write_text(LOCAL_PROBE)
    cl = tmp_path / "c.yaml"
    cl.write_text("version: 1\nprobe_paths: [./probes]\nchecks:\n  - id: a\n    probe: site_echo\n"
                  "    with: {word: yo}\n    expect: {echoed: yo}\n")
    plan = load_file(cl, Registry(), environ={})
    assert plan.checks[0].probe.name == "site_echo"
    assert plan.checks[0].params.word == "yo"
    sys.modules.pop("envprobe_local_probes.probes.site", None)


def test_local_probe_cannot_shadow_a_builtin(tmp_path: Path):
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "shadow.py").write_text(LOCAL_PROBE.replace('"site_echo"', '"memory"'))
    cl = tmp_path / "c.yaml"
    cl.write_text("version: 1\nprobe_paths: [./probes]\nchecks:\n  - id: a\n    probe: command\n"
                  "    with: {run: 'true'}\n")
    with pytest.raises(ConfigError, match=r"2:15: probe_paths\[0\]: .*probe 'memory' is already provided by "
                                          r"envprobe.probes.system:MemoryProbe"):
        load_file(cl, Registry(), environ={})


def test_probe_path_that_is_missing(tmp_path: Path):
    cl = tmp_path / "c.yaml"
    cl.write_text("version: 1\nprobe_paths: [./nowhere]\nchecks:\n  - id: a\n    probe: command\n"
                  "    with: {run: 'true'}\n")
    with pytest.raises(ConfigError, match="is not a directory"):
        load_file(cl, Registry(), environ={})


@pytest.mark.parametrize("group", ["envprobe.probes", "console_scripts", "pytest11"])
def test_fast_entry_point_scan_agrees_with_importlib_metadata(group):
    import importlib.metadata

    from envprobe.registry import entry_points

    ours = sorted((e.name, e.value) for e in entry_points(group))
    theirs = sorted((e.name, e.value.split("[", 1)[0].strip()) for e in importlib.metadata.entry_points(group=group))
    assert ours == theirs and ours
