"""envprobe.record: the light data classes used on the scan path."""

from __future__ import annotations

import pytest

from envprobe.record import FrozenInstanceError, field, record


@record
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@record(frozen=True)
class Key:
    a: str
    b: int = 1


@record
class Point3(Point):
    z: int = 5


def test_init_defaults_and_factories():
    p = Point(1)
    assert (p.x, p.y, p.tags) == (1, 0, [])
    q = Point(1)
    q.tags.append("t")
    assert p.tags == []  # one list per instance
    assert Point(1, 2, ["a"]) == Point(x=1, y=2, tags=["a"])
    assert Point(1) != Point(2) and Point(1) != "x"
    assert repr(Point(1)) == "Point(x=1, y=0, tags=[])"


def test_argument_errors():
    with pytest.raises(TypeError, match="missing argument 'x'"):
        Point()
    with pytest.raises(TypeError, match="unexpected arguments"):
        Point(1, w=2)
    with pytest.raises(TypeError, match="two values"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="takes 3 arguments"):
        Point(1, 2, [], 4)


def test_frozen_is_hashable_and_immutable():
    k = Key("a")
    assert {k: 1}[Key("a", 1)] == 1 and hash(k) == hash(Key("a"))
    with pytest.raises(FrozenInstanceError):
        k.a = "b"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(Point(1))  # mutable records are not hashable, like dataclasses


def test_inheritance_appends_fields():
    p = Point3(1, 2)
    assert (p.x, p.y, p.tags, p.z) == (1, 2, [], 5)
    assert repr(p) == "Point3(x=1, y=2, tags=[], z=5)"
