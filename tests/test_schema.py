"""envprobe.schema: the declarative models used for checklists, probe parameters and facts."""

from __future__ import annotations

import enum
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envprobe.schema import Field, Model, ValidationError, field_validator, model_validator, type_name


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


class Inner(Model):
    zh_CN: str | None = Field(default=None, alias="zh-CN")
    en: str | None = None


class Outer(Model):
    port: int = Field(ge=1, le=65535, description="a port")
    ratio: float = 0.5
    flag: bool = False
    name: str | Inner | None = None
    tags: list[str] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict, alias="with")
    proto: Literal["tcp", "udp"] = "tcp"
    color: Color = Color.RED
    pid: int | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("port")
    @classmethod
    def _not_22(cls, v: int) -> int:
        if v == 22:
            raise ValueError("22 is reserved for SSH here")
        return v


class Pair(Model):
    a: int | None = None
    b: int | None = None

    @model_validator(mode="after")
    def _one(self) -> Pair:
        if (self.a is None) == (self.b is None):
            raise ValueError("give exactly one of a or b")
        return self


def errors_of(fn, *args, **kw) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        fn(*args, **kw)
    return [(e["loc"], e["msg"]) for e in info.value.errors()]


def test_lax_coercion_like_a_templated_checklist_needs():
    o = Outer.model_validate({"port": "8080", "ratio": 1, "flag": "yes", "tags": "a", "with": {"x": 1},
                              "name": {"zh-CN": "内存", "en": "Memory"}, "color": "blue", "pid": "12"})
    assert o.port == 8080 and o.ratio == 1.0 and o.flag is True and o.tags == ["a"]
    assert o.extra == {"x": 1} and o.name == Inner(**{"zh_CN": "内存", "en": "Memory"})
    assert o.color is Color.BLUE and o.pid == 12 and o.proto == "tcp"
    assert o.model_dump(mode="json")["color"] == "blue"
    assert o.model_dump(mode="json", by_alias=True)["with"] == {"x": 1}
    assert Outer(port=1).name is None and Outer(port=1, name="x").name == "x"


@pytest.mark.parametrize(("data", "expected"), [
    ({}, [(("port",), "Field required")]),
    ({"port": 0}, [(("port",), "Input should be greater than or equal to 1")]),
    ({"port": 70000}, [(("port",), "Input should be less than or equal to 65535")]),
    ({"port": True}, [(("port",), "Input should be a valid integer")]),
    ({"port": "http"}, [(("port",), "Input should be a valid integer")]),
    ({"port": 22}, [(("port",), "Value error, 22 is reserved for SSH here")]),
    ({"port": 1, "proto": "tpc"}, [(("proto",), "Input should be 'tcp' or 'udp'")]),
    ({"port": 1, "color": "green"}, [(("color",), "Input should be 'red' or 'blue'")]),
    ({"port": 1, "flag": "maybe"}, [(("flag",), "Input should be a valid boolean")]),
    ({"port": 1, "tags": [1]}, [(("tags", 0), "Input should be a valid string")]),
    ({"port": 1, "name": {"zh": "x"}}, [(("name", "zh"), "Extra inputs are not permitted")]),
    ({"port": 1, "prot": "tcp"}, [(("prot",), "Extra inputs are not permitted")]),
    ({"port": 1, "with": []}, [(("with",), "Input should be a valid dictionary")]),
    ({"port": 1, "ratio": "fast", "pid": "x"}, [(("ratio",), "Input should be a valid number"),
                                                (("pid",), "Input should be a valid integer")]),
])
def test_errors_carry_location_and_words(data, expected):
    assert errors_of(Outer.model_validate, data) == expected


def test_model_validator_and_constructor():
    assert Pair(a=1).a == 1
    assert errors_of(Pair, a=1, b=2) == [((), "Value error, give exactly one of a or b")]
    assert "1 validation error for Pair" in str(pytest.raises(ValidationError, Pair).value)


def test_not_a_mapping():
    assert errors_of(Outer.model_validate, [1]) == [((), "Input should be a valid dictionary or instance of Outer")]


def test_fields_are_documented_and_typed():
    f = Outer.model_fields["port"]
    assert f.description == "a port" and f.is_required() and not Outer.model_fields["ratio"].is_required()
    Outer._resolve()
    assert type_name(Outer.model_fields["proto"].annotation) == "'tcp' | 'udp'"
    assert type_name(Outer.model_fields["pid"].annotation) == "int | null"


def test_json_schema():
    s = Outer.model_json_schema()
    props = s["properties"]
    assert s["additionalProperties"] is False and s["required"] == ["port"]
    assert props["port"] == {"type": "integer", "description": "a port", "minimum": 1, "maximum": 65535}
    assert props["proto"]["enum"] == ["tcp", "udp"] and "with" in props
    assert {"$ref": "#/$defs/Inner"} in props["name"]["anyOf"]
    assert "zh-CN" in s["$defs"]["Inner"]["properties"]


def test_inheritance_keeps_parent_fields():
    class Child(Pair):
        c: str = "x"

    assert list(Child.model_fields) == ["a", "b", "c"]
    assert Child(a=1).c == "x"
    with pytest.raises(ValidationError):
        Child(a=1, b=1)


_any = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                              st.text(max_size=8)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner,
                                                                                           max_size=3)),
                    max_leaves=10)


@settings(max_examples=500, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["port", "ratio", "flag", "name", "tags", "with", "proto", "color",
                                             "pid", "zz"]), _any, max_size=6))
def test_fuzz_only_validation_errors(data):
    try:
        Outer.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors():
            assert e["msg"] and isinstance(e["loc"], tuple)
