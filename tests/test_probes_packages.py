"""The package and software probes.

* Parsers on recorded outputs (tests/fixtures/packages): rpm from Rocky 9, RHEL 8, CentOS 7, openEuler 22.03,
  Kylin V10 (multiple kernels, multilib, epochs, "not installed", a broken rpmdb), Alpine's apk database, and
  ``java -version``/``nginx -v``/``ldd --version``/Tomcat/.NET/MySQL/… outputs of many vendors and distributions.
* dpkg databases recorded from Ubuntu 22.04 (multiarch, a removed-but-configured package, a half-configured
  kernel) and UOS 20, queried with the **real** ``dpkg-query`` on this machine (``DPKG_ADMINDIR``).
* Live on this machine: packages against ``dpkg-query``; runtimes (python3, perl, openssl, git, java, psql,
  node, glibc, mysql) against independent sources (the interpreter's own version variables, dpkg's package
  versions, ``os.confstr``); a directory laid out like a Tomcat installation; a custom command.
* End to end through the CLI: expectations such as ``version: ">= 2.28-151"`` judged with the package order,
  locally and over SSH (a real sshd on loopback).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from envprobe.probes.base import ProbeContext, ProbeError
from envprobe.probes.package import PackageParams, PackageProbe, package_command, parse_package
from envprobe.probes.software import SPECS, SoftwareParams, SoftwareProbe
from envprobe.schema import ValidationError
from envprobe.transport.base import CommandResult
from envprobe.transport.local import LocalTransport
from envprobe.versions import PackageVersion, split_deb
from tests.conftest import cli, need

FIX = Path(__file__).resolve().parent / "fixtures" / "packages"
HAVE_DPKG = shutil.which("dpkg-query") is not None
PROBES = [PackageProbe, SoftwareProbe]


def ctx() -> ProbeContext:
    return ProbeContext(LocalTransport(), "local", 30)


# ===========================================================================================================
# registration and documentation
# ===========================================================================================================
def test_entry_points_name_these_classes():
    eps = {ep.name: ep.value for ep in entry_points(group="envprobe.probes")}
    for cls in PROBES:
        assert eps[cls.name] == f"{cls.__module__}:{cls.__name__}"


# ===========================================================================================================
# package: parameters
# ===========================================================================================================
@pytest.mark.parametrize("bad", [
    {}, {"name": "a", "any_of": ["b"]}, {"name": ""}, {"name": "lib aio"}, {"name": "-rf"}, {"name": "libaio*"},
    {"any_of": []}, {"any_of": ["ok", "no way"]},
])
def test_package_params_refused(bad):
    with pytest.raises(ValidationError):
        PackageParams.model_validate(bad)


def test_package_params_accept_arch_qualified_names_and_dedupe():
    assert PackageParams.model_validate({"name": "libc6:i386"}).names() == ["libc6:i386"]
    assert PackageParams.model_validate({"name": "glibc.i686"}).names() == ["glibc.i686"]
    assert PackageParams.model_validate({"any_of": ["a", "b", "a"]}).names() == ["a", "b"]


def test_package_command_quotes_names_and_is_one_source():
    p = PackageParams.model_validate({"any_of": ["libaio1", "libstdc++6"]})
    srcs = PackageProbe().sources(p)
    assert len(srcs) == 1 and srcs[0].kind == "command" and not srcs[0].user
    assert "'libstdc++6'" in srcs[0].target or "libstdc++6" in srcs[0].target


# ===========================================================================================================
# package: recorded rpm / apk outputs
# ===========================================================================================================
RECORDED = [
    # file, names, installed, name, version, versions, arch, arches, manager
    ("rocky9-kernel-glibc.txt", ["kernel"], True, "kernel", "5.14.0-70.22.1.el9_0",
     ["5.14.0-70.22.1.el9_0", "5.14.0-70.13.1.el9_0"], "x86_64", ["x86_64"], "rpm"),
    ("rocky9-kernel-glibc.txt", ["glibc"], True, "glibc", "2.34-28.el9_0.2", ["2.34-28.el9_0.2"], "x86_64",
     ["x86_64", "i686"], "rpm"),
    ("rocky9-kernel-glibc.txt", ["glibc.i686"], True, "glibc.i686", "2.34-28.el9_0.2", ["2.34-28.el9_0.2"],
     "i686", ["i686"], "rpm"),
    ("rocky9-kernel-glibc.txt", ["libaio"], False, None, None, [], None, [], "rpm"),
    ("rhel8-openssl-epoch.txt", ["openssl"], True, "openssl", "1:1.1.1k-12.el8_9", ["1:1.1.1k-12.el8_9"],
     "x86_64", ["x86_64"], "rpm"),
    ("centos7-compat.txt", ["compat-libstdc++-33", "libaio"], True, "libaio", "0.3.109-13.el7",
     ["0.3.109-13.el7"], "x86_64", ["x86_64"], "rpm"),
    ("centos7-compat.txt", ["compat-libstdc++-33"], False, None, None, [], None, [], "rpm"),
    ("openeuler2203-aarch64.txt", ["kernel"], True, "kernel", "5.10.0-136.12.0.86.oe2203sp1",
     ["5.10.0-136.12.0.86.oe2203sp1", "5.10.0-60.18.0.50.oe2203"], "aarch64", ["aarch64"], "rpm"),
    ("kylin-v10-sp2.txt", ["libaio1", "libaio"], True, "libaio", "0.3.111-5.ky10", ["0.3.111-5.ky10"],
     "aarch64", ["aarch64"], "rpm"),
    ("alpine318.txt", ["libaio"], True, "libaio", "0.3.113-r1", ["0.3.113-r1"], "x86_64", ["x86_64"], "apk"),
    ("alpine318.txt", ["glibc"], False, None, None, [], None, [], "apk"),
]


@pytest.mark.parametrize(("file", "names", "installed", "name", "version", "versions", "arch", "arches",
                          "manager"), RECORDED, ids=lambda v: v if isinstance(v, str) else None)
def test_package_parse_recorded(file, names, installed, name, version, versions, arch, arches, manager):
    f = parse_package(names, (FIX / file).read_text())
    assert (f.installed, f.name, f.version, f.versions, f.arch, f.arches, f.manager) == (
        installed, name, version, versions, arch, arches, manager)
    assert f.state == ("installed" if installed else "not-installed")
    if version is not None:
        assert isinstance(f.version, PackageVersion)
        assert f.version.scheme == {"rpm": "rpm", "apk": "apk"}[manager]


def test_package_recorded_versions_compare_as_rpm_does():
    f = parse_package(["kernel"], (FIX / "rocky9-kernel-glibc.txt").read_text())
    assert f.version.compare_with(">", "5.14.0-70.13.1.el9_0") is True
    assert f.version.compare_with(">=", "5.14.0-162") is False
    g = parse_package(["openssl"], (FIX / "rhel8-openssl-epoch.txt").read_text())
    assert g.version.compare_with(">=", "1.1.1") is True and g.version.epoch == 1


def test_package_broken_rpmdb_is_a_clean_error():
    with pytest.raises(ProbeError) as err:
        parse_package(["glibc"], (FIX / "rpmdb-broken.txt").read_text())
    assert "rpm" in err.value.message["en"] and "数据库" in err.value.message["zh-CN"]
    assert err.value.hint


def test_package_without_a_package_manager_is_unknown_not_absent():
    f = parse_package(["glibc"], (FIX / "no-manager.txt").read_text())
    assert f.manager == "none" and f.installed is None
    note = PackageProbe().note(PackageParams.model_validate({"name": "glibc"}), f)
    assert note and "dpkg" in note["en"] and note["zh-CN"]


def test_package_garbage_output_is_a_clean_error():
    with pytest.raises(ProbeError):
        parse_package(["x"], "sh: 1: syntax error\n")


# ===========================================================================================================
# package: recorded dpkg databases, queried with the real dpkg-query
# ===========================================================================================================
def _query_recorded(status_file: str, names: list[str], tmp_path: Path):
    need(HAVE_DPKG, "needs dpkg-query (Debian/Ubuntu)")
    adm = tmp_path / "dpkg"
    (adm / "info").mkdir(parents=True, exist_ok=True)
    (adm / "updates").mkdir(exist_ok=True)
    shutil.copy(FIX / status_file, adm / "status")
    res = LocalTransport().run(package_command(names), timeout=20,
                               env={"LC_ALL": "C", "DPKG_ADMINDIR": str(adm)})
    assert res.rc == 0, res.stderr
    return parse_package(names, res.stdout)


def test_dpkg_multiarch_package_lists_both_architectures(tmp_path):
    f = _query_recorded("ubuntu2204-multiarch.status", ["libc6"], tmp_path)
    assert f.installed and f.manager == "dpkg" and f.version == "2.35-0ubuntu3.8"
    assert set(f.arches) == {"amd64", "i386"}
    assert f.arch == f.arches[0]
    assert f.version.scheme == "deb" and f.version.compare_with(">=", "2.28-151") is True


def test_dpkg_removed_package_with_config_left_is_not_installed(tmp_path):
    f = _query_recorded("ubuntu2204-multiarch.status", ["libaio1"], tmp_path)
    assert (f.installed, f.state, f.version) == (False, "config-files", None)
    note = PackageProbe().note(PackageParams.model_validate({"name": "libaio1"}), f)
    assert note and "rc" in note["en"]


def test_dpkg_half_configured_is_not_installed(tmp_path):
    f = _query_recorded("ubuntu2204-multiarch.status", ["linux-image-5.15.0-91-generic"], tmp_path)
    assert (f.installed, f.state) == (False, "half-configured")


def test_dpkg_any_of_takes_the_first_installed_and_epochs_survive(tmp_path):
    f = _query_recorded("ubuntu2204-multiarch.status", ["libaio1", "bind9-libs", "openssl"], tmp_path)
    assert (f.installed, f.name, f.version) == (True, "bind9-libs", "1:9.18.18-0ubuntu0.22.04.2")
    assert f.version.compare_with(">=", "9.16") is True and f.version.compare_with("==", "9.18.18") is True


def test_dpkg_uos_versions(tmp_path):
    f = _query_recorded("uos20-desktop.status", ["openjdk-11-jre-headless"], tmp_path)
    assert f.installed and f.arch == "arm64"
    assert f.version.compare_with(">=", "11.0.20") is True
    assert f.version.compare_with(">=", "11.0.20+8-1~deb10u1") is True
    assert f.version.compare_with(">", "11.0.20+8-1") is False  # ~deb10u1 sorts before the plain revision
    g = _query_recorded("uos20-desktop.status", ["libc6"], tmp_path)
    assert g.version == "2.28.21-1+deepin-1" and g.version.compare_with("==", "2.28") is True


# ===========================================================================================================
# package: live against dpkg on this machine
# ===========================================================================================================
def _dpkg_rows(name: str) -> list[tuple[str, str, str]]:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Status}\t${Version}\t${Architecture}\n", name],
                         capture_output=True, text=True)
    return [tuple(line.split("\t")) for line in out.stdout.splitlines() if line]  # type: ignore[misc]


@pytest.mark.parametrize("name", ["libc6", "bash", "coreutils", "openssl", "libaio1"])
def test_package_live_matches_dpkg_query(name):
    need(HAVE_DPKG, "needs dpkg-query (Debian/Ubuntu)")
    rows = [r for r in _dpkg_rows(name) if r[0].endswith(" installed")]
    if not rows:
        pytest.skip(f"{name} is not installed here")
    f = PackageProbe().collect(ctx(), PackageParams.model_validate({"name": name}))
    assert f.installed is True and f.manager == "dpkg" and f.name == name
    assert f.version == rows[0][1] and f.version.scheme == "deb"
    assert sorted(f.arches) == sorted(r[2] for r in rows)


def test_package_live_missing_package():
    need(HAVE_DPKG, "needs dpkg-query (Debian/Ubuntu)")
    name = "envprobe-no-such-package"
    assert _dpkg_rows(name) == []
    f = PackageProbe().collect(ctx(), PackageParams.model_validate({"name": name}))
    assert (f.installed, f.state, f.version, f.manager) == (False, "not-installed", None, "dpkg")


def test_package_live_removed_with_config(tmp_path):
    """A real package the test builds, installs and removes (dpkg -r keeps its conffile: state rc), then purges."""
    need(HAVE_DPKG and shutil.which("dpkg-deb") is not None, "needs dpkg and dpkg-deb (Debian/Ubuntu)")
    need(os.geteuid() == 0, "needs root to install a package")
    name = "envprobe-test-rc"
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / f"{name}.conf").write_text("setting = 1\n")
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1:2.5-3\nArchitecture: all\nMaintainer: envprobe tests <t@example.invalid>\n"
        "Description: a package the envprobe tests install and remove\n")
    (root / "DEBIAN" / "conffiles").write_text(f"/etc/{name}.conf\n")
    deb = tmp_path / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True)
    try:
        subprocess.run(["dpkg", "-i", str(deb)], check=True, capture_output=True)
        f = PackageProbe().collect(ctx(), PackageParams.model_validate({"name": name}))
        assert (f.installed, str(f.version), f.manager) == (True, "1:2.5-3", "dpkg")
        subprocess.run(["dpkg", "-r", name], check=True, capture_output=True)
        f = PackageProbe().collect(ctx(), PackageParams.model_validate({"name": name}))
        assert (f.installed, f.state) == (False, "config-files")
    finally:
        subprocess.run(["dpkg", "-P", name], capture_output=True)


# ===========================================================================================================
# software: recorded outputs
# ===========================================================================================================
SOFT = FIX / "software"
SOFT_CASES = [
    # file, name, installed, version, major, vendor
    ("java-oracle8-centos7.txt", "java", True, "1.8.0_381", 8, "Oracle"),
    ("java-bisheng8-openeuler2203.txt", "java", True, "1.8.0_392", 8, "BiSheng"),
    ("java-openjdk11-kylin-v10.txt", "java", True, "11.0.9.1", 11, "OpenJDK"),
    ("java-redhat17-rocky9.txt", "java", True, "17.0.9", 17, "Red Hat"),
    ("java-dragonwell8-anolis.txt", "java", True, "1.8.0_372", 8, "Dragonwell"),
    ("java-kona17-tencentos.txt", "java", True, "17.0.8", 17, "Kona"),
    ("java-temurin21-picked-up.txt", "java", True, "21.0.1", 21, "Temurin"),
    ("java-semeru11-uos.txt", "java", True, "11.0.20.1", 11, "IBM Semeru"),
    ("java-broken-libjvm.txt", "java", True, None, None, None),
    ("nginx-debian12.txt", "nginx", True, "1.22.1", 1, "nginx"),
    ("nginx-openresty.txt", "nginx", True, "1.21.4.1", 1, "OpenResty"),
    ("nginx-tengine-kylin.txt", "nginx", True, "2.3.3", 2, "Tengine"),
    ("httpd-rhel8.txt", "httpd", True, "2.4.37", 2, None),
    ("glibc-centos7-ldd.txt", "glibc", True, "2.17", 2, None),
    ("glibc-kylin-v10.txt", "glibc", True, "2.28", 2, None),
    ("glibc-ubuntu2204-ldd.txt", "glibc", True, "2.35", 2, None),
    ("glibc-alpine-musl.txt", "glibc", False, None, None, None),
    ("tomcat-serverinfo.txt", "tomcat", True, "9.0.65", 9, None),
    ("tomcat-release-notes.txt", "tomcat", True, "8.5.93", 8, None),
    ("tomcat-version-sh-kylin.txt", "tomcat", True, "9.0.83", 9, None),
    ("dotnet-rhel9.txt", "dotnet", True, "8.0.0", 8, None),
    ("python2-centos7.txt", "python2", True, "2.7.5", 2, None),
    ("openssl-rhel8-fips.txt", "openssl", True, "1.1.1k", 1, "OpenSSL"),
    ("openssl-tongsuo.txt", "openssl", True, "8.3.2", 8, "Tongsuo"),
    ("mysql8-client-rocky9.txt", "mysql", True, "8.0.35", 8, "MySQL"),
    ("mariadb11-client.txt", "mysql", True, "11.4.2", 11, "MariaDB"),
    ("docker-podman-emulation-rhel8.txt", "docker", True, "4.6.1", 4, "Podman"),
    ("perl-rhel6.txt", "perl", True, "5.10.1", 5, None),
    ("node16-kylin.txt", "node", True, "16.20.2", 16, None),
    ("missing.txt", "java", False, None, None, None),
]


def _parse_soft(file: str, name: str):
    probe = SoftwareProbe()
    params = SoftwareParams.model_validate({"name": name})
    src = probe.sources(params)[0]
    return probe.parse(params, {src: CommandResult(0, (SOFT / file).read_text(), "", 1.0)})


@pytest.mark.parametrize(("file", "name", "installed", "version", "major", "vendor"), SOFT_CASES,
                         ids=[c[0] for c in SOFT_CASES])
def test_software_parse_recorded(file, name, installed, version, major, vendor):
    f = _parse_soft(file, name)
    assert (f.installed, f.version, f.major, f.vendor) == (installed, version, major, vendor)
    if installed:
        assert f.path and f.path.startswith("/")
        assert f.raw and "@@envprobe" not in f.raw
    if version:
        assert version in f.raw or name == "tomcat" and version in (f.raw or "")


def test_software_raw_is_the_version_line_not_a_notice():
    f = _parse_soft("java-temurin21-picked-up.txt", "java")
    assert f.raw.startswith('openjdk version "21.0.1"')
    g = _parse_soft("tomcat-version-sh-kylin.txt", "tomcat")
    assert g.raw == "Server version: Apache Tomcat/9.0.83"


def test_software_dotnet_lists_every_runtime():
    f = _parse_soft("dotnet-rhel9.txt", "dotnet")
    assert f.versions == ["8.0.0", "6.0.25"] and "Microsoft.NETCore.App 8.0.0" in f.raw


def test_software_versions_order_like_versions():
    oracle = _parse_soft("java-oracle8-centos7.txt", "java").version
    assert oracle.compare_with(">=", "1.8.0_201") is True
    assert oracle.compare_with(">=", "1.8.0_401") is False
    assert oracle.compare_with("==", "1.8") is True and oracle.compare_with("==", "1.8.0") is True
    assert _parse_soft("java-redhat17-rocky9.txt", "java").version.compare_with(">=", "1.8.0_201") is True
    ssl = _parse_soft("openssl-rhel8-fips.txt", "openssl").version
    assert ssl.compare_with(">", "1.1.1g") is True and ssl.compare_with(">=", "3.0") is False


def test_software_broken_java_says_why():
    f = _parse_soft("java-broken-libjvm.txt", "java")
    note = SoftwareProbe().note(SoftwareParams.model_validate({"name": "java"}), f)
    assert f.exit_code == 1 and note and "libjvm" not in note["en"] and "Error: dl failure" in note["en"]


def test_software_musl_is_not_glibc():
    f = _parse_soft("glibc-alpine-musl.txt", "glibc")
    note = SoftwareProbe().note(SoftwareParams.model_validate({"name": "glibc"}), f)
    assert note and "musl" in note["en"] and "GNU libc" in note["en"]


@pytest.mark.parametrize(("params", "msg"), [
    ({"name": "jav"}, "did you mean java"),
    ({"name": "tomcat", "path": "/opt/tomcat"}, "home"),
    ({"command": "x --version"}, "version_regex"),
    ({"name": "java", "version_regex": "x"}, "goes with command"),
    ({"name": "java", "path": "bin/java"}, "absolute"),
    ({"name": "java", "path": "/a", "home": "/b"}, "not both"),
    ({"command": "x", "version_regex": "("}, "regular expression"),
    ({}, "exactly one"),
])
def test_software_params_refused(params, msg):
    with pytest.raises(ValidationError, match=msg):
        SoftwareParams.model_validate(params)


def test_software_aliases():
    assert SoftwareParams.model_validate({"name": "Apache"}).name == "httpd"
    assert SoftwareParams.model_validate({"name": "postgres"}).name == "postgresql"
    assert SoftwareParams.model_validate({"name": "jdk"}).name == "java"


def test_every_known_runtime_has_a_command():
    for name in [*SPECS, "glibc", "tomcat"]:
        src = SoftwareProbe().sources(SoftwareParams.model_validate({"name": name}))
        assert len(src) == 1 and src[0].kind == "command" and not src[0].user
        assert subprocess.run(["sh", "-n", "-c", src[0].target]).returncode == 0, name  # valid POSIX sh


# ===========================================================================================================
# software: live on this machine, against independent sources
# ===========================================================================================================
def _soft(name: str, **kw):
    return SoftwareProbe().collect(ctx(), SoftwareParams.model_validate({"name": name, **kw}))


def _upstream(pkg: str) -> str | None:
    """The upstream version of an installed Debian package (independent of the program's own output)."""
    if not HAVE_DPKG:
        return None
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Status}\t${Version}\n", pkg], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        status, _, version = line.partition("\t")
        if status.endswith(" installed"):
            return split_deb(version)[1]
    return None


def test_software_live_python3():
    exe = shutil.which("python3")
    need(exe is not None, "needs python3 on PATH")
    want = subprocess.run([exe, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True).stdout.strip()
    f = _soft("python3")
    assert (f.installed, f.version, f.major, f.path) == (True, want, int(want.split(".")[0]), exe)


def test_software_live_perl():
    need(shutil.which("perl") is not None, "needs perl")
    want = subprocess.run(["perl", "-e", 'printf "%vd", $^V'], capture_output=True, text=True).stdout
    f = _soft("perl")
    assert (f.installed, f.version, f.path) == (True, want, shutil.which("perl"))


@pytest.mark.parametrize(("name", "pkg"), [("openssl", "openssl"), ("git", "git"), ("mysql", "mariadb-client")])
def test_software_live_against_the_package_version(name, pkg):
    need(shutil.which(SPECS[name].candidates[0]) is not None, f"needs {name}")
    want = _upstream(pkg)
    need(want is not None, f"needs the Debian package {pkg} to know the version independently")
    f = _soft(name)
    assert f.installed and f.version == want, (f.version, want)


def test_software_live_psql_against_the_client_package():
    need(shutil.which("psql") is not None, "needs psql")
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\n", "postgresql-client-[0-9]*"],
                         capture_output=True, text=True).stdout if HAVE_DPKG else ""
    versions = [split_deb(line.split("\t")[1])[1] for line in out.splitlines() if "\t" in line and
                line.split("\t")[1]]
    need(bool(versions), "needs a postgresql-client-N package to know the version independently")
    best = sorted(versions, key=lambda v: [int(x) for x in re.findall(r"\d+", v)])[-1]
    f = _soft("psql")
    assert f.installed and f.version == best and f.major == int(best.split(".")[0])


def test_software_live_java_against_its_properties():
    need(shutil.which("java") is not None, "needs java")
    props = subprocess.run(["java", "-XshowSettings:properties", "-version"], capture_output=True,
                           text=True).stderr
    want = re.search(r"^\s*java\.version = (\S+)", props, re.M).group(1)  # type: ignore[union-attr]
    f = _soft("java")
    assert (f.installed, f.version, f.path) == (True, want, shutil.which("java"))
    assert f.major == (int(want.split(".")[1]) if want.startswith("1.") else int(want.split(".")[0]))
    assert f.raw and want in f.raw  # read from stderr, where java -version writes
    if "OpenJDK" in props:
        assert f.vendor in ("OpenJDK", "Temurin", "Zulu", "Corretto", "Red Hat", "BiSheng", "Dragonwell", "Kona")


def test_software_live_node():
    need(shutil.which("node") is not None, "needs node")
    want = subprocess.run(["node", "-p", "process.versions.node"], capture_output=True, text=True).stdout.strip()
    assert _soft("node").version == want


def test_software_live_glibc():
    need(sys.platform.startswith("linux"), "Linux only")
    want = os.confstr("CS_GNU_LIBC_VERSION")
    need(bool(want) and want.startswith("glibc "), "needs GNU libc")
    f = _soft("glibc")
    assert f.installed and f.version == want.split()[1]


def test_software_live_missing_program_and_explicit_path(tmp_path):
    f = _soft("redis", path=str(tmp_path / "no-such-redis-server"))
    assert (f.installed, f.version, f.path) == (False, None, None)
    need(shutil.which("git") is not None, "needs git")
    g = _soft("git", path=shutil.which("git"))
    assert g.installed and g.path == shutil.which("git")


def test_software_live_home_directory(tmp_path):
    need(shutil.which("perl") is not None, "needs perl")
    (tmp_path / "bin").mkdir()
    os.symlink(shutil.which("perl"), tmp_path / "bin" / "perl")
    f = _soft("perl", home=str(tmp_path))
    assert f.installed and f.path == str(tmp_path / "bin" / "perl") and f.version


def _tomcat_layout(root: Path, version: str, jar: bool = True, notes: bool = True) -> Path:
    """A directory laid out like a Tomcat installation (lib/catalina.jar with ServerInfo.properties, and
    RELEASE-NOTES), for the real unzip / grep on this machine to read."""
    (root / "lib").mkdir(parents=True)
    with zipfile.ZipFile(root / "lib" / "catalina.jar", "w") as z:
        if jar:
            z.writestr("org/apache/catalina/util/ServerInfo.properties",
                       f"server.info=Apache Tomcat/{version}\nserver.number={version}.0\n")
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    if notes:
        (root / "RELEASE-NOTES").write_text(f"\n                     Apache Tomcat Version {version}\n"
                                            "                            Release Notes\n")
    return root


def test_software_live_tomcat_from_catalina_jar(tmp_path):
    need(shutil.which("unzip") is not None, "needs unzip")
    home = _tomcat_layout(tmp_path / "apache-tomcat-9.0.85", "9.0.85", notes=False)
    f = _soft("tomcat", home=str(home))
    assert (f.installed, f.version, f.major, f.path) == (True, "9.0.85", 9, str(home))
    assert f.raw == "server.info=Apache Tomcat/9.0.85"


def test_software_live_tomcat_release_notes_when_the_jar_says_nothing(tmp_path):
    home = _tomcat_layout(tmp_path / "tc", "10.1.18", jar=False)
    f = _soft("tomcat", home=str(home))
    assert (f.installed, f.version) == (True, "10.1.18")
    assert _soft("tomcat", home=str(tmp_path / "nothing-here")).installed is False


def test_software_live_custom_command():
    need(shutil.which("bash") is not None, "needs bash")
    want = subprocess.run(["bash", "-c", 'echo "${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}.${BASH_VERSINFO[2]}"'],
                          capture_output=True, text=True).stdout.strip()
    p = SoftwareParams.model_validate({"command": "bash --version", "version_regex": r"version (\d+\.\d+\.\d+)"})
    src = SoftwareProbe().sources(p)[0]
    assert src.user  # a user's command runs apart, under its own timeout
    f = SoftwareProbe().collect(ctx(), p)
    assert (f.installed, f.version, f.exit_code, f.path) == (True, want, 0, shutil.which("bash"))
    q = SoftwareParams.model_validate({"command": "envprobe-no-such-tool -V", "version_regex": r"(\d+)"})
    g = SoftwareProbe().collect(ctx(), q)
    assert (g.installed, g.version, g.exit_code) == (False, None, 127)


# ===========================================================================================================
# end to end: expectations judged with the package order (CLI), locally and over SSH
# ===========================================================================================================
def _checks(libc: str) -> list[dict]:
    return [
        {"id": "libc-new-enough", "probe": "package", "with": {"name": "libc6"},
         "expect": {"installed": True, "version": ">= 2.28-151"}},
        {"id": "libc-upstream", "probe": "package", "with": {"name": "libc6"}, "expect": {"version": libc}},
        {"id": "libc-too-old", "probe": "package", "with": {"name": "libc6"},
         "expect": {"version": f"< {libc}"}},
        {"id": "aio-any", "probe": "package", "with": {"any_of": ["libaio-envprobe-none", "libaio1", "libaio"]},
         "expect": {"installed": True}},
        {"id": "java", "probe": "software", "with": {"name": "java"}, "expect": {"major": ">= 8"}},
        {"id": "git", "probe": "software", "with": {"name": "git"}, "expect": {"version": ">= 2.0"}},
    ]


def _scan(tmp_path: Path, checks: list[dict], inv: dict | None = None) -> tuple[int, dict[str, dict]]:
    c = tmp_path / f"c{time.monotonic_ns()}.yaml"
    c.write_text(yaml.safe_dump({"version": 1, "checks": checks}), encoding="utf-8")
    out = tmp_path / f"r{time.monotonic_ns()}.json"
    args = ["scan", str(c), "--json", str(out), "--lang", "en"]
    if inv is not None:
        (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
        args += ["-i", str(tmp_path / "inv.yaml"), "--known-hosts", str(tmp_path / "kh"), "--accept-new-hostkeys"]
    res = cli(*args)
    data = json.loads(out.read_text())
    return res.code, {r["check"]: r for r in data["results"]}


def _local_expectations() -> tuple[str, str]:
    libc = _upstream("libc6")
    need(libc is not None, "needs libc6 (Debian/Ubuntu)")
    need(_upstream("libaio1") is not None, "needs libaio1")
    need(shutil.which("java") is not None and shutil.which("git") is not None, "needs java and git")
    assert libc is not None
    return libc, ".".join(libc.split(".")[:2])


def test_scan_judges_package_versions_with_the_package_order(tmp_path):
    libc, _ = _local_expectations()
    code, r = _scan(tmp_path, _checks(libc))
    statuses = {k: v["status"] for k, v in r.items()}
    assert statuses == {"libc-new-enough": "pass", "libc-upstream": "pass", "libc-too-old": "fail",
                        "aio-any": "pass", "java": "pass", "git": "pass"}, {k: v["message"]["en"] for k, v in r.items()}
    assert code == 1
    assert r["aio-any"]["observed"]["name"] == "libaio1"
    assert "expected < " in r["libc-too-old"]["message"]["en"]


def test_scan_over_ssh_agrees_with_the_local_scan(tmp_path):
    from tests.sshfix import SshServer, keygen, need_sshd

    need_sshd()
    libc, _ = _local_expectations()
    key = keygen(tmp_path / "key")
    srv = SshServer(tmp_path / "sshd", key).start()
    try:
        inv = {"hosts": {"remote": {"address": "127.0.0.1", "port": srv.port, "user": "root", "key": str(key)}}}
        checks = [{**c, "hosts": ["remote"]} for c in _checks(libc)]
        code, remote = _scan(tmp_path, checks, inv)
        _, local = _scan(tmp_path, _checks(libc))
        for cid in local:
            assert remote[cid]["status"] == local[cid]["status"], (cid, remote[cid]["message"]["en"])
        for cid in ("libc-new-enough", "aio-any"):
            assert remote[cid]["observed"] == local[cid]["observed"]
        for field in ("version", "major", "vendor", "path"):
            assert remote["java"]["observed"][field] == local["java"]["observed"][field]
        assert srv.exec_requests <= 3  # one batch for all checks (plus the host facts), not one per check
    finally:
        srv.stop()
