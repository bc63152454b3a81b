"""Package-version ordering (envprobe.versions): dpkg, rpm and apk orders, and what expectations mean.

* Debian: a table of ~50 pairs, each checked against our comparison AND against the real
  ``dpkg --compare-versions`` on this machine (so the table itself is verified, not just believed).
* RPM: no rpm here, so the table is rpm's documented outcomes (the cases rpm's own test suite lists for
  ``rpmvercmp``: segments, letters vs digits, leading zeros, separators, ``~`` and ``^``) plus EVR cases from
  real RHEL/Rocky/openEuler/Kylin packages, including the issue's kernel example.
* apk: the documented suffix order.
* The expectation language end to end: ``>= 2.28-151``, ``== 2.36``, a bare ``version: 2.36``.
"""

from __future__ import annotations

import copy
import pickle
import shutil
import subprocess

import pytest

from envprobe import expect
from envprobe.versions import (
    PackageVersion,
    apk_compare,
    deb_compare,
    matches,
    rpm_compare,
    rpmvercmp,
    split_deb,
    split_rpm,
)
from tests.conftest import need

# (a, b, expected sign of compare(a, b))
DEB_PAIRS = [
    ("1.0", "1.0", 0),
    ("1.0", "1.1", -1),
    ("1.10", "1.9", 1),
    ("1.001", "1.1", 0),
    ("1.0", "1.0.0", -1),
    ("1.0", "1.0-0", 0),
    ("1.0-1", "1.0-2", -1),
    ("1.0-10", "1.0-9", 1),
    ("0:1.0", "1.0", 0),
    ("1:1.0", "2.0", 1),
    ("1:0.1", "0:99.9", 1),
    ("2:1.0", "10:0.1", -1),
    ("1.0~rc1", "1.0", -1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~~", "1.0~", -1),
    ("1.0~~a", "1.0~", -1),
    ("1.0~", "1.0", -1),
    ("1.0~rc1-1", "1.0-1", -1),
    ("1.0-1~bpo11+1", "1.0-1", -1),
    ("1.0-1", "1.0-1+b1", -1),
    ("1.0a", "1.0", 1),
    ("1.0a", "1.0+", -1),   # letters sort before non-letters
    ("1.0a", "1.0.", -1),
    ("1.0+", "1.0.", -1),   # '+' (43) before '.' (46)
    ("1.0.", "1.0~", 1),
    ("1.0A", "1.0a", -1),   # ASCII: upper case first
    ("1.0z", "1.0+", -1),
    ("1.0+dfsg", "1.0", 1),
    ("1.0+dfsg-1", "1.0-2", 1),
    ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
    ("2.36-9+deb12u4", "2.36-9", 1),
    ("2.36-9+deb12u4", "2.28-10", 1),
    ("2.31-0ubuntu9.16", "2.31-0ubuntu9.2", 1),
    ("2.35-0ubuntu3.8", "2.35-0ubuntu3", 1),
    ("1:9.18.28-1~deb12u2", "1:9.18.19-1~deb12u1", 1),
    ("3.0.17-1~deb12u2", "3.0.11-1~deb12u2", 1),
    ("7.88.1-10+deb12u12", "7.88.1-10+deb12u5", 1),
    ("5.10.0-9-amd64", "5.10.0-10-amd64", -1),
    ("4.19.90-24.4.v2101.ky10", "4.19.90-23.8.v2101.ky10", 1),
    ("1.2.3", "1.2.3-0ubuntu1", -1),
    ("0.9.8", "0.10", -1),
    ("20230101", "20221231", 1),
    ("1.0.0+git20230101", "1.0.0+git20221231", 1),
    ("10:1.0", "9:1.0", 1),
    ("1.0-a", "1.0-1", 1),  # a letter sorts after the start of a number
    ("1.18.0-6.1+deb11u3", "1.22.1-9", -1),
    ("2.39.5-0+deb12u2", "2.39.2-1.1", 1),
    ("17.0.15+6-1~deb12u1", "17.0.15+6-1", -1),
    ("8u402-ga-2", "8u382-ga-1", 1),
    ("1.0b", "1.0a1", 1),
]


def _sign_of_dpkg(a: str, b: str) -> int:
    for op, sign in (("lt", -1), ("eq", 0), ("gt", 1)):
        if subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0:
            return sign
    raise AssertionError(f"dpkg says neither lt, eq nor gt for {a} {b}")


@pytest.mark.parametrize(("a", "b", "want"), DEB_PAIRS)
def test_deb_table(a, b, want):
    assert deb_compare(a, b) == want
    assert deb_compare(b, a) == -want


def test_deb_table_agrees_with_real_dpkg():
    need(shutil.which("dpkg") is not None, "needs dpkg (Debian/Ubuntu) to cross-check the table")
    disagree = [(a, b, want, _sign_of_dpkg(a, b)) for a, b, want in DEB_PAIRS if _sign_of_dpkg(a, b) != want]
    assert not disagree, disagree
    assert len(DEB_PAIRS) >= 40


# rpm's documented rpmvercmp outcomes (the cases its test suite lists)
RPMVERCMP_TABLE = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0", "1.0", 1),
    ("2.0.1", "2.0.1", 0), ("2.0", "2.0.1", -1), ("2.0.1", "2.0", 1),
    ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1), ("2.0.1", "2.0.1a", -1),
    ("5.5p1", "5.5p1", 0), ("5.5p1", "5.5p2", -1), ("5.5p2", "5.5p1", 1),
    ("5.5p10", "5.5p10", 0), ("5.5p1", "5.5p10", -1), ("5.5p10", "5.5p1", 1),
    ("10xyz", "10.1xyz", -1), ("10.1xyz", "10xyz", 1),
    ("xyz10", "xyz10", 0), ("xyz10", "xyz10.1", -1), ("xyz10.1", "xyz10", 1),
    ("xyz.4", "xyz.4", 0), ("xyz.4", "8", -1), ("8", "xyz.4", 1), ("xyz.4", "2", -1), ("2", "xyz.4", 1),
    ("5.5p2", "5.6p1", -1), ("5.6p1", "5.5p2", 1), ("5.6p1", "6.5p1", -1), ("6.5p1", "5.6p1", 1),
    ("6.0.rc1", "6.0", 1), ("6.0", "6.0.rc1", -1),
    ("10b2", "10a1", 1), ("10a2", "10b2", -1),
    ("1.0aa", "1.0aa", 0), ("1.0a", "1.0aa", -1), ("1.0aa", "1.0a", 1),
    ("10.0001", "10.0001", 0), ("10.0001", "10.1", 0), ("10.1", "10.0001", 0),
    ("10.0001", "10.0039", -1), ("10.0039", "10.0001", 1),
    ("4.999.9", "5.0", -1), ("5.0", "4.999.9", 1),
    ("20101121", "20101121", 0), ("20101121", "20101122", -1), ("20101122", "20101121", 1),
    ("2_0", "2_0", 0), ("2.0", "2_0", 0), ("2_0", "2.0", 0),
    ("a", "a", 0), ("a+", "a+", 0), ("a+", "a_", 0), ("a_", "a+", 0), ("+a", "+a", 0), ("+a", "_a", 0),
    ("_a", "+a", 0), ("+_", "+_", 0), ("_+", "+_", 0), ("_+", "_", 0), ("+", "_", 0), ("_", "+", 0),
    ("1.0~rc1", "1.0~rc1", 0), ("1.0~rc1", "1.0", -1), ("1.0", "1.0~rc1", 1),
    ("1.0~rc1", "1.0~rc2", -1), ("1.0~rc2", "1.0~rc1", 1),
    ("1.0~rc1~git123", "1.0~rc1~git123", 0), ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0~rc1", "1.0~rc1~git123", 1),
    ("1.0^", "1.0^", 0), ("1.0^", "1.0", 1), ("1.0", "1.0^", -1),
    ("1.0^git1", "1.0^git1", 0), ("1.0^git1", "1.0", 1), ("1.0", "1.0^git1", -1),
    ("1.0^git1", "1.0^git2", -1), ("1.0^git2", "1.0^git1", 1),
    ("1.0^git1", "1.01", -1), ("1.01", "1.0^git1", 1),
    ("1.0^20160101", "1.0^20160101", 0), ("1.0^20160101", "1.0.1", -1), ("1.0.1", "1.0^20160101", 1),
    ("1.0^20160101^git1", "1.0^20160101^git1", 0), ("1.0^20160102", "1.0^20160101^git1", 1),
    ("1.0^20160101^git1", "1.0^20160102", -1),
    ("1.0~rc1^git1", "1.0~rc1^git1", 0), ("1.0~rc1^git1", "1.0~rc1", 1), ("1.0~rc1", "1.0~rc1^git1", -1),
    ("1.0^git1~pre", "1.0^git1~pre", 0), ("1.0^git1", "1.0^git1~pre", 1), ("1.0^git1~pre", "1.0^git1", -1),
]


@pytest.mark.parametrize(("a", "b", "want"), RPMVERCMP_TABLE)
def test_rpmvercmp_documented_outcomes(a, b, want):
    assert rpmvercmp(a, b) == want


# full EVRs as rpm -q prints them on RHEL/Rocky/openEuler/Kylin, ordered as rpm orders them
RPM_EVR = [
    ("5.14.0-70.22.1.el9_0", "5.14.0-70.13.1.el9_0", 1),   # the kernel example
    ("5.14.0-70.22.1.el9_0", "5.14.0-162.6.1.el9_1", -1),
    ("2.28-151.el8", "2.28-225.el8", -1),
    ("2.28-225.el8_8.6", "2.28-225.el8", 1),
    ("2.17-326.el7_9", "2.17-325.el7_9", 1),
    ("1:1.1.1k-12.el8_9", "1.1.1w-1.el8", 1),       # epoch wins
    ("0:3.0.7-25.el9_3", "3.0.7-25.el9_3", 0),       # a missing epoch is 0
    ("4.19.90-24.4.v2101.ky10", "4.19.90-23.8.v2101.ky10", 1),
    ("5.10.0-60.18.0.50.oe2203", "5.10.0-136.12.0.86.oe2203sp1", -1),
    ("2.34-105.oe2203sp2", "2.34-70.oe2203", 1),
    ("1.8.0.392.b08-4.el8", "1.8.0.382.b05-2.el8", 1),
    ("11.0.21.0.9-2.el8", "11.0.9.11-2.el8", 1),
    ("2.0-1.el9~beta", "2.0-1.el9", -1),
    ("10.5.22-1.el8", "10.5.9-1.el8", 1),
    ("3.10.0-1160.el7", "3.10.0-1160.119.1.el7", -1),
]


@pytest.mark.parametrize(("a", "b", "want"), RPM_EVR)
def test_rpm_evr_table(a, b, want):
    assert rpm_compare(a, b) == want
    assert rpm_compare(b, a) == -want


def test_rpm_release_is_not_compared_when_one_side_has_none():
    assert rpm_compare("2.28-151.el8", "2.28") == 0
    assert rpm_compare("2.28", "2.29-1") == -1


@pytest.mark.parametrize(("a", "b", "want"), [
    ("1.2.3-r0", "1.2.3-r1", -1),
    ("1.2.3_rc1-r0", "1.2.3-r0", -1),
    ("1.2.3_alpha1", "1.2.3_beta1", -1),
    ("1.2.3_pre2", "1.2.3_rc1", -1),
    ("1.2.3_p1", "1.2.3", 1),
    ("1.2.3_git20230101", "1.2.3", 1),
    ("1.2.3a", "1.2.3", 1),
    ("1.2.10", "1.2.9", 1),
    ("3.0.8-r3", "3.0.8-r3", 0),
    ("1.36.1-r15", "1.36.1-r2", 1),
])
def test_apk_order(a, b, want):
    assert apk_compare(a, b) == want
    assert apk_compare(b, a) == -want


def test_splitting():
    assert split_deb("1:9.18.28-1~deb12u2") == (1, "9.18.28", "1~deb12u2")
    assert split_deb("5.10.0-9-amd64") == (None, "5.10.0-9", "amd64")  # the last hyphen starts the revision
    assert split_deb("2.36") == (None, "2.36", None)
    assert split_rpm("5.14.0-70.22.1.el9_0") == (None, "5.14.0", "70.22.1.el9_0")
    assert split_rpm("1:1.1.1k-12.el8_9") == (1, "1.1.1k", "12.el8_9")
    for bad in ("x:1.0", "abc", "", "1.0-"):
        with pytest.raises(ValueError):
            split_deb(bad)


# ---------------------------------------------------------------------------------------------------------
# what a wanted value means (module docstring)
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("observed", "scheme", "op", "wanted", "ok"), [
    # no revision in the wanted value: upstream only
    ("2.36-9+deb12u4", "deb", "==", "2.36", True),
    ("2.36-9+deb12u4", "deb", ">=", "2.28", True),
    ("2.28-10", "deb", ">=", "2.28", True),
    ("2.28-10", "deb", "<", "2.28", False),
    ("2.36.1-2", "deb", "==", "2.36", True),      # continues after '.'
    ("2.36+dfsg-1", "deb", "==", "2.36", True),   # continues after '+'
    ("2.36~rc1-1", "deb", "==", "2.36", False),   # a pre-release is not 2.36
    ("2.36~rc1-1", "deb", ">=", "2.36", False),
    ("2.361-1", "deb", "==", "2.36", False),
    ("2.36-9+deb12u4", "deb", "!=", "2.36", False),
    ("2.37-1", "deb", "!=", "2.36", True),
    # a revision in the wanted value: full comparison
    ("2.28-151", "deb", ">=", "2.28-151", True),
    ("2.28-10", "deb", ">=", "2.28-151", False),
    ("2.36-9+deb12u4", "deb", ">=", "2.28-151", True),
    ("2.36-9+deb12u4", "deb", "==", "2.36-9+deb12u4", True),
    ("2.36-9+deb12u4", "deb", "==", "2.36-9", False),
    # epochs: ignored unless the wanted value names one
    ("1:9.18.28-1~deb12u2", "deb", ">=", "9.11", True),
    ("1:9.18.28-1~deb12u2", "deb", "==", "9.18.28", True),
    ("1:9.18.28-1~deb12u2", "deb", ">=", "2:1.0", False),
    ("1:9.18.28-1~deb12u2", "deb", ">=", "1:9.18", True),
    # rpm
    ("5.14.0-70.22.1.el9_0", "rpm", ">", "5.14.0-70.13.1.el9_0", True),
    ("5.14.0-70.13.1.el9_0", "rpm", ">=", "5.14.0-70.22.1.el9_0", False),
    ("5.14.0-70.22.1.el9_0", "rpm", "==", "5.14", True),
    ("2.28-151.el8", "rpm", ">=", "2.28-151", True),
    ("2.28-127.el8", "rpm", ">=", "2.28-151", False),
    ("2.28-225.el8", "rpm", ">=", "2.28", True),
    ("1:1.1.1k-12.el8_9", "rpm", ">=", "1.1.1", True),
    ("1:1.1.1k-12.el8_9", "rpm", "<", "3.0", True),
    # apk
    ("3.0.8-r3", "apk", ">=", "3.0.8", True),
    ("3.0.8-r3", "apk", ">=", "3.0.8-r4", False),
    ("1.36.1-r15", "apk", "==", "1.36", True),
])
def test_matches(observed, scheme, op, wanted, ok):
    assert matches(observed, op, wanted, scheme) is ok


def test_not_a_version_is_not_comparable():
    v = PackageVersion("2.36-9", "deb")
    assert v.compare_with("==", "latest") is None
    assert v.compare_with("~", "2.36") is None
    assert PackageVersion("garbage", "deb").compare_with(">=", "1.0") is None


def test_package_version_is_a_str_that_keeps_its_scheme():
    v = PackageVersion("5.14.0-70.22.1.el9_0", "rpm")
    assert v == "5.14.0-70.22.1.el9_0" and isinstance(v, str)
    assert (v.epoch, v.upstream, v.revision) == (0, "5.14.0", "70.22.1.el9_0")
    for other in (pickle.loads(pickle.dumps(v)), copy.deepcopy(v), copy.copy(v)):
        assert other.scheme == "rpm" and other == v
    with pytest.raises(ValueError):
        PackageVersion("1.0", "msi")


@pytest.mark.parametrize(("spec", "observed", "ok"), [
    (">= 2.28-151", PackageVersion("2.28-225.el8", "rpm"), True),
    (">= 2.28-151", PackageVersion("2.28-127.el8", "rpm"), False),
    (">= 2.28-151", PackageVersion("2.36-9+deb12u4", "deb"), True),
    ("> 5.14.0-70.13.1.el9_0", PackageVersion("5.14.0-70.22.1.el9_0", "rpm"), True),
    ("2.36", PackageVersion("2.36-9+deb12u4", "deb"), True),            # bare equality
    ("2.28-10", PackageVersion("2.28-10", "deb"), True),
    ("2.28-10", PackageVersion("2.28-9", "deb"), False),
    ("~ deb12", PackageVersion("2.36-9+deb12u4", "deb"), True),          # regex still works on the text
    ("in ['2.28', '2.36']", PackageVersion("2.36-9+deb12u4", "deb"), True),
    ([">= 2.28", "< 3"], PackageVersion("2.36-9+deb12u4", "deb"), True),
    # the generic dotted-version rule would call 1.0~rc1 >= 1.0 true; the package order says no
    (">= 1.0", PackageVersion("1.0~rc1-1", "deb"), False),
])
def test_expectation_language_uses_the_package_order(spec, observed, ok):
    e = expect.parse(spec, None, "version")
    assert e.check(observed).ok is ok
