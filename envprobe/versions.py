"""Package versions ordered the way the package manager orders them.

Three schemes, each implemented from its documented algorithm:

* ``deb`` — Debian Policy §5.6.12: ``[epoch:]upstream[-revision]``. The epoch compares as a number; upstream and
  revision compare with dpkg's ``verrevcmp``: alternating runs of non-digits and digits; non-digit runs compare
  character by character where ``~`` sorts before everything (even the end of the string), then the end of the
  string, then letters (ASCII order), then every other character (ASCII order); digit runs compare as numbers.
  A missing revision equals ``0``.
* ``rpm`` — rpm's ``rpmvercmp`` on ``[epoch:]version[-release]``: the strings are split into alphanumeric
  segments (anything else only separates); a digit segment is newer than a letter segment; digit segments
  compare as numbers, letter segments as ASCII; ``~`` sorts before everything (pre-releases: ``1.0~rc1`` <
  ``1.0``); ``^`` sorts after the end of the string but before anything else (post-release snapshots:
  ``1.0`` < ``1.0^git1`` < ``1.0.1``); when all shared segments are equal, the one with segments left is newer.
  A missing epoch is 0.
* ``apk`` — Alpine's ``apk version`` order for the common forms ``1.2.3[a][_suffix[N]]...[-rN]``: dotted numbers
  compare as numbers, a trailing letter after them, then suffixes ``_alpha < _beta < _pre < _rc < (none) <
  _cvs < _svn < _git < _hg < _p``, then the ``-rN`` package revision.
* ``generic`` — a program's own version (``java -version`` 1.8.0_381, ``openssl version`` 1.1.1k, nginx 1.22.1):
  rpm's segment order on the whole text (so 1.8.0_381 > 1.8.0_201, 1.1.1w > 1.1.1k, 17.0.15 > 1.8.0_381), with
  no epoch and no revision.

:class:`PackageVersion` is a ``str`` (what the package manager printed) that remembers its scheme and carries
``compare_with(op, raw)``, which the expectation language (``envprobe.expect``) uses for ``>= 2.28-151`` and for
a bare ``version: 2.28-10``.

**What a wanted value without a revision means.** Vendors write upstream versions (``glibc >= 2.28``), while
the package manager reports ``2.28-151.el8`` or ``2.36-9+deb12u4``. So:

* When the wanted value has **no revision/release** (no ``-``), only the upstream part is compared:
  ``>= 2.28`` holds for ``2.28-151.el8`` and for ``2.36-9+deb12u4``; ``< 2.28`` fails for ``2.28-1``.
* ``== 2.36`` (or a bare ``version: 2.36``) holds when the upstream version equals 2.36 or *continues* it after a
  ``.``, ``+`` or ``_`` — ``2.36``, ``2.36-9+deb12u4``, ``2.36.1-2`` and ``2.36+dfsg-1`` all match; ``2.36~rc1-1`` (a
  pre-release) and ``2.361`` do not. ``!= 2.36`` is its negation. This is the same "compare as many components as
  written" rule the expectation language uses for other versions (``== 15`` matches 15.0.4153).
* When the wanted value **has a revision** (``>= 2.28-151``, ``== 5.14.0-70.22.1.el9_0``), upstream and revision
  are compared in full, exactly as dpkg/rpm would.
* When the wanted value has **no epoch**, the observed epoch is ignored (people write ``>= 9.11`` for bind9's
  ``1:9.18.19-1``); when it gives one (``>= 1:9.11``), the epoch is compared first, as the package manager does.
* A wanted value that is not a version at all (``== latest``) is not comparable this way: ``compare_with``
  returns None and the expectation language's generic rules apply.
"""

from __future__ import annotations

import re
from typing import Any, Literal

Scheme = Literal["deb", "rpm", "apk", "generic"]
SCHEMES: tuple[str, ...] = ("deb", "rpm", "apk", "generic")

_OPS = ("==", "!=", ">=", "<=", ">", "<")


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


# ===========================================================================================================
# Debian (dpkg)
# ===========================================================================================================
def _deb_order(c: str) -> int:
    """dpkg's weight of one character in a non-digit run ("" is the end of the string)."""
    if c == "":
        return 0
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def deb_verrevcmp(a: str, b: str) -> int:
    """Compare two upstream versions or two revisions the way dpkg does (-1, 0, 1)."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        # non-digit runs, character by character
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _deb_order(a[i] if i < len(a) and not a[i].isdigit() else "")
            bc = _deb_order(b[j] if j < len(b) and not b[j].isdigit() else "")
            if ac != bc:
                return _sign(ac - bc)
            i += 1
            j += 1
        # digit runs, as numbers (leading zeros do not count)
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return _sign(first_diff)
    return 0


def split_deb(v: str) -> tuple[int | None, str, str | None]:
    """``[epoch:]upstream[-revision]`` → (epoch or None when absent, upstream, revision or None when absent).

    The epoch is what precedes the first ``:``; the revision what follows the last ``-``. Raises ValueError
    for a value dpkg would refuse (non-numeric epoch, empty upstream, no digit to start with).
    """
    v = v.strip()
    epoch: int | None = None
    if ":" in v:
        head, _, rest = v.partition(":")
        if not head.isdigit():
            raise ValueError(f"epoch in {v!r} is not a number")
        epoch, v = int(head), rest
    revision: str | None = None
    if "-" in v:
        v, _, revision = v.rpartition("-")
        if not revision:
            raise ValueError("empty revision")
    if not v:
        raise ValueError("empty version")
    if not v[0].isdigit():
        raise ValueError(f"version {v!r} does not start with a digit")
    if re.search(r"[^A-Za-z0-9.+~:-]", v) or (revision and re.search(r"[^A-Za-z0-9.+~]", revision)):
        raise ValueError(f"invalid character in {v!r}")
    return epoch, v, revision


def deb_compare(a: str, b: str) -> int:
    """dpkg --compare-versions: -1, 0 or 1."""
    ea, ua, ra = split_deb(a)
    eb, ub, rb = split_deb(b)
    if (ea or 0) != (eb or 0):
        return _sign((ea or 0) - (eb or 0))
    c = deb_verrevcmp(ua, ub)
    if c:
        return c
    return deb_verrevcmp(ra or "", rb or "")


# ===========================================================================================================
# RPM
# ===========================================================================================================
def rpmvercmp(a: str, b: str) -> int:
    """rpm's segment comparison of two version (or two release) strings: -1, 0 or 1."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)

    def sep(c: str) -> bool:
        return not (c.isascii() and c.isalnum()) and c not in "~^"

    while i < la or j < lb:
        while i < la and sep(a[i]):
            i += 1
        while j < lb and sep(b[j]):
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        # tilde: before everything, even the end of the string
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        # caret: after the end of the string, before anything else
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        si, sj = i, j
        if ca.isdigit():
            while i < la and a[i].isdigit():
                i += 1
            while j < lb and b[j].isdigit():
                j += 1
            isnum = True
        else:
            while i < la and a[i].isascii() and a[i].isalpha():
                i += 1
            while j < lb and b[j].isascii() and b[j].isalpha():
                j += 1
            isnum = False
        seg_a, seg_b = a[si:i], b[sj:j]
        if not seg_b:  # different segment types: a number is newer than letters
            return 1 if isnum else -1
        if isnum:
            seg_a, seg_b = seg_a.lstrip("0"), seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def split_rpm(v: str) -> tuple[int | None, str, str | None]:
    """``[epoch:]version[-release]`` → (epoch or None, version, release or None)."""
    v = v.strip()
    epoch: int | None = None
    m = re.match(r"^(\d+):(.*)$", v)
    if m:
        epoch, v = int(m.group(1)), m.group(2)
    elif ":" in v:
        raise ValueError(f"epoch in {v!r} is not a number")
    release: str | None = None
    if "-" in v:
        v, _, release = v.rpartition("-")
        if not release:
            raise ValueError("empty release")
    if not v or not re.search(r"[A-Za-z0-9]", v):
        raise ValueError("empty version")
    if re.search(r"\s", v) or (release and re.search(r"\s", release)):
        raise ValueError("whitespace in version")
    return epoch, v, release


def rpm_compare(a: str, b: str) -> int:
    """rpm's EVR comparison (rpmdev-vercmp): -1, 0 or 1. A missing epoch is 0; a release missing on either
    side is not compared (as rpm matches a dependency that names no release)."""
    ea, va, ra = split_rpm(a)
    eb, vb, rb = split_rpm(b)
    if (ea or 0) != (eb or 0):
        return _sign((ea or 0) - (eb or 0))
    c = rpmvercmp(va, vb)
    if c or ra is None or rb is None:
        return c
    return rpmvercmp(ra, rb)


# ===========================================================================================================
# apk (Alpine)
# ===========================================================================================================
_APK_PRE = {"alpha": -4, "beta": -3, "pre": -2, "rc": -1}
_APK_POST = {"cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5}
_APK_RE = re.compile(r"^(\d+(?:\.\d+)*)([a-z]?)((?:_[a-z]+\d*)*)(?:~[0-9a-f]+)?(?:-r(\d+))?$")


def _apk_key(v: str) -> tuple[list[int], int, list[tuple[int, int]], int]:
    m = _APK_RE.match(v.strip())
    if not m:
        raise ValueError(f"{v!r} is not an apk version")
    nums = [int(x) for x in m.group(1).split(".")]
    letter = ord(m.group(2)) if m.group(2) else 0
    suffixes: list[tuple[int, int]] = []
    for part in re.findall(r"_([a-z]+)(\d*)", m.group(3)):
        name, num = part
        if name in _APK_PRE:
            rank = _APK_PRE[name]
        elif name in _APK_POST:
            rank = _APK_POST[name]
        else:
            raise ValueError(f"unknown apk suffix _{name}")
        suffixes.append((rank, int(num or 0)))
    return nums, letter, suffixes, int(m.group(4) or 0)


def split_apk(v: str) -> tuple[int | None, str, str | None]:
    """``1.2.3_rc1-r4`` → (None, "1.2.3_rc1", "4")."""
    _apk_key(v)
    m = re.match(r"^(.*?)(?:-r(\d+))?$", v.strip())
    assert m
    return None, m.group(1), m.group(2)


def apk_compare(a: str, b: str) -> int:
    na, la, sa, ra = _apk_key(a)
    nb, lb, sb, rb = _apk_key(b)
    for x, y in zip(na, nb, strict=False):
        if x != y:
            return _sign(x - y)
    if len(na) != len(nb):
        return 1 if len(na) > len(nb) else -1
    if la != lb:
        return _sign(la - lb)
    for k in range(max(len(sa), len(sb))):
        xa = sa[k] if k < len(sa) else (0, 0)
        xb = sb[k] if k < len(sb) else (0, 0)
        if xa != xb:
            return -1 if xa < xb else 1
    return _sign(ra - rb)


# ===========================================================================================================
# one entry point per scheme
# ===========================================================================================================
def compare(a: str, b: str, scheme: str) -> int:
    """Order two full version strings of one scheme: -1, 0, 1. ValueError if either is not a version."""
    if scheme == "deb":
        return deb_compare(a, b)
    if scheme == "rpm":
        return rpm_compare(a, b)
    if scheme == "apk":
        return apk_compare(a, b)
    if scheme == "generic":
        split_generic(a)
        split_generic(b)
        return rpmvercmp(a.strip(), b.strip())
    raise ValueError(f"unknown version scheme {scheme!r}")


def split_generic(v: str) -> tuple[int | None, str, str | None]:
    """A program's version: all of it is the version (no epoch, no revision)."""
    v = v.strip()
    if not v or not v[0].isdigit() or re.search(r"\s", v):
        raise ValueError(f"{v!r} is not a version")
    return None, v, None


def split(v: str, scheme: str) -> tuple[int | None, str, str | None]:
    if scheme == "deb":
        return split_deb(v)
    if scheme == "rpm":
        return split_rpm(v)
    if scheme == "apk":
        return split_apk(v)
    if scheme == "generic":
        return split_generic(v)
    raise ValueError(f"unknown version scheme {scheme!r}")


def _upstream_compare(a: str, b: str, scheme: str) -> int:
    if scheme == "deb":
        return deb_verrevcmp(a, b)
    if scheme in ("rpm", "generic"):
        return rpmvercmp(a, b)
    return apk_compare(a, b)


def _continues(observed: str, prefix: str) -> bool:
    """``observed`` starts with ``prefix`` and goes on after a component boundary (``.`` or ``+``)."""
    return observed.startswith(prefix) and len(observed) > len(prefix) and observed[len(prefix)] in ".+_"


def matches(observed: str, op: str, wanted: str, scheme: str) -> bool | None:
    """Whether the installed version ``observed`` satisfies ``op wanted`` under the rules in the module
    docstring; None when ``wanted`` (or ``observed``) is not a version of this scheme."""
    if op not in _OPS:
        return None
    try:
        eo, uo, ro = split(observed, scheme)
        ew, uw, rw = split(wanted, scheme)
    except ValueError:
        return None
    if ew is not None and (eo or 0) != ew:
        c = _sign((eo or 0) - ew)
    elif rw is None:  # upstream only
        c = _upstream_compare(uo, uw, scheme)
        if op in ("==", "!="):
            equal = c == 0 or _continues(uo, uw)
            return equal if op == "==" else not equal
    else:
        c = _upstream_compare(uo, uw, scheme)
        if c == 0:
            c = _upstream_compare(ro or "0", rw, scheme) if scheme != "apk" else _sign(int(ro or 0) - int(rw))
    return {"==": c == 0, "!=": c != 0, ">=": c >= 0, "<=": c <= 0, ">": c > 0, "<": c < 0}[op]


class PackageVersion(str):
    """A version string as the package manager printed it, ordered the way that manager orders versions.

    ``PackageVersion("2.36-9+deb12u4", "deb")``; ``.scheme`` is ``deb``, ``rpm`` or ``apk``; ``.epoch``,
    ``.upstream`` and ``.revision`` are its parts (epoch 0 and revision None when absent).
    """

    scheme: str

    def __new__(cls, value: str, scheme: str = "deb") -> PackageVersion:
        if scheme not in SCHEMES:
            raise ValueError(f"unknown version scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
        obj = super().__new__(cls, value)
        obj.scheme = scheme
        return obj

    def __getnewargs__(self) -> tuple[Any, ...]:  # pickling and copying keep the scheme
        return (str(self), self.scheme)

    def parts(self) -> tuple[int, str, str | None]:
        """(epoch, upstream, revision); ValueError if the text is not a version of its scheme."""
        e, u, r = split(str(self), self.scheme)
        return e or 0, u, r

    @property
    def epoch(self) -> int:
        return self.parts()[0]

    @property
    def upstream(self) -> str:
        return self.parts()[1]

    @property
    def revision(self) -> str | None:
        return self.parts()[2]

    def compare_with(self, op: str, raw: str) -> bool | None:
        """``op`` (``>= <= > < == !=``) against the wanted text ``raw``; None when ``raw`` is no version."""
        return matches(str(self), op, str(raw).strip(), self.scheme)

    def __repr__(self) -> str:
        return f"PackageVersion({str(self)!r}, {self.scheme!r})"
