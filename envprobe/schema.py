"""A small declarative schema layer: typed models with validation, documentation and JSON Schema.

envprobe describes checklists, probe parameters and observed facts as annotated classes. This module gives
them what they need — lax type coercion (``"8080"`` → 8080 for a templated port), field constraints, field and
model validators, aliases, ``extra`` keys refused, error locations for file:line messages, ``model_dump`` and
JSON Schema — with a surface that follows pydantic's names (``Field``, ``field_validator``,
``model_validate``, ``model_fields`` …) so probe authors meet nothing new.

Why not pydantic itself: importing it and building the models costs ~100 ms on every scan, half of what a
30-check local scan may take in total (see docs/decisions.md and bench/README.md). This module imports in
about a millisecond.
"""

from __future__ import annotations

import enum
import sys
import types
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from envprobe.record import record

_MISSING: Any = object()
Loc = tuple[Any, ...]


class ValidationError(ValueError):
    """One or more problems, each with a location (field path), a message and an error type."""

    def __init__(self, title: str, errors: list[dict[str, Any]]):
        self.title = title
        self._errors = errors
        lines = [f"{len(errors)} validation error{'s' if len(errors) != 1 else ''} for {title}"]
        for e in errors:
            lines.append(".".join(str(p) for p in e["loc"]) or "(root)")
            lines.append(f"  {e['msg']} [type={e['type']}]")
        super().__init__("\n".join(lines))

    def errors(self, include_input: bool = False, include_url: bool = False) -> list[dict[str, Any]]:
        """``[{"loc": (...), "msg": ..., "type": ...}]``; input values are never included (they may be secrets)."""
        return [dict(e) for e in self._errors]


class _Invalid(Exception):
    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors


def _err(loc: Loc, msg: str, etype: str) -> _Invalid:
    return _Invalid([{"loc": loc, "msg": msg, "type": etype}])


# -- fields -----------------------------------------------------------------------------------------------
@record
class FieldInfo:
    default: Any = _MISSING
    default_factory: Callable[[], Any] | None = None
    description: str | None = None
    alias: str | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    json_schema_extra: dict[str, Any] | None = None
    annotation: Any = None
    name: str = ""

    def is_required(self) -> bool:
        return self.default is _MISSING and self.default_factory is None

    def get_default(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        return self.default

    @property
    def key(self) -> str:
        return self.alias or self.name


def Field(  # noqa: N802 - named like the class it builds, as in dataclasses and pydantic
    default: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    description: str | None = None,
    alias: str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    json_schema_extra: dict[str, Any] | None = None,
) -> Any:
    return FieldInfo(default, default_factory, description, alias, ge, gt, le, lt, json_schema_extra)


def ConfigDict(**kwargs: Any) -> dict[str, Any]:  # noqa: N802 - pydantic's spelling, accepted for familiarity
    """Accepted for familiarity; models always refuse unknown keys."""
    return dict(kwargs)


def field_validator(*names: str, mode: str = "after") -> Callable[[Any], Any]:
    """Mark a classmethod ``(cls, value) -> value`` that checks or converts the named fields.

    ``mode="before"`` sees the raw input; ``"after"`` (default) sees the converted value. Raise ValueError with a
    message saying what is allowed.
    """

    def mark(fn: Any) -> Any:
        target = fn.__func__ if isinstance(fn, classmethod) else fn
        target.__envprobe_field_validator__ = (names, mode)  # type: ignore[union-attr]
        return fn

    return mark


def model_validator(*, mode: str = "after") -> Callable[[Any], Any]:
    """Mark a method ``(self) -> self`` that checks the model as a whole, after its fields."""
    if mode != "after":
        raise ValueError("only mode='after' model validators are supported")

    def mark(fn: Any) -> Any:
        fn.__envprobe_model_validator__ = True
        return fn

    return mark


# -- models ---------------------------------------------------------------------------------------------
class Model:
    """A typed record validated on construction. Unknown keys are refused."""

    model_fields: ClassVar[dict[str, FieldInfo]] = {}
    model_config: ClassVar[dict[str, Any]] = {}
    _field_validators: ClassVar[dict[str, list[tuple[str, Any]]]] = {}
    _model_validators: ClassVar[list[Any]] = []
    _resolved: ClassVar[bool] = False
    _by_key: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, FieldInfo] = {}
        for base in reversed(cls.__mro__[1:]):
            if issubclass(base, Model) and base is not Model:
                fields.update({k: FieldInfo(**{**vars(v)}) for k, v in base.model_fields.items()})
        own = cls.__dict__.get("__annotations__", {})
        for name in own:
            if name.startswith("_") or _is_classvar(own[name]):
                continue
            value = cls.__dict__.get(name, _MISSING)
            info = value if isinstance(value, FieldInfo) else FieldInfo(default=value)
            info.name = name
            fields[name] = info
            if name in cls.__dict__:
                delattr(cls, name)  # the class attribute would shadow instance values
        cls.model_fields = fields
        fvals: dict[str, list[tuple[str, Any]]] = {}
        mvals: list[Any] = []
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                fn = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
                spec = getattr(fn, "__envprobe_field_validator__", None)
                if spec:
                    for n in spec[0]:
                        fvals.setdefault(n, []).append((spec[1], fn))
                if getattr(fn, "__envprobe_model_validator__", False):
                    mvals.append(fn)
        cls._field_validators = fvals
        cls._model_validators = mvals
        cls._resolved = False

    @classmethod
    def _resolve(cls) -> None:
        """Evaluate the (string) annotations once, on first use, so forward references work."""
        if cls._resolved:
            return
        hints: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if klass is Model or not (isinstance(klass, type) and issubclass(klass, Model)):
                continue
            module = sys.modules.get(klass.__module__)
            globalns = dict(vars(module)) if module else {}
            localns = {k.__name__: k for k in klass.__mro__ if isinstance(k, type)}
            for name, ann in klass.__dict__.get("__annotations__", {}).items():
                if isinstance(ann, str):
                    ann = eval(ann, globalns, localns)  # noqa: S307 - our own source annotations, not input
                hints[name] = ann
        for name, info in cls.model_fields.items():
            info.annotation = hints.get(name, Any)
        cls._by_key = {info.key: name for name, info in cls.model_fields.items()}
        cls._resolved = True

    def __init__(self, **data: Any):
        cls = type(self)
        try:
            values = cls._validate_mapping(data, (), by_name=True)
        except _Invalid as exc:
            raise ValidationError(cls.__name__, exc.errors) from None
        self.__dict__.update(values)
        self._run_model_validators()

    def _run_model_validators(self) -> None:
        for fn in type(self)._model_validators:
            try:
                fn(self)
            except ValueError as exc:
                raise ValidationError(type(self).__name__, [{"loc": (), "msg": f"Value error, {exc}",
                                                             "type": "value_error"}]) from None

    @classmethod
    def _validate_mapping(cls, data: Any, loc: Loc, by_name: bool = False) -> dict[str, Any]:
        cls._resolve()
        if isinstance(data, Model):
            data = data.model_dump()
        if not isinstance(data, dict):
            raise _err(loc, f"Input should be a valid dictionary or instance of {cls.__name__}", "model_type")
        errors: list[dict[str, Any]] = []
        out: dict[str, Any] = {}
        seen: set[str] = set()
        for key, raw in data.items():
            name = cls._by_key.get(key) if isinstance(key, str) else None
            if name is None and by_name and key in cls.model_fields:
                name = key
            if name is None:
                errors.append({"loc": (*loc, key), "msg": "Extra inputs are not permitted", "type": "extra_forbidden"})
                continue
            seen.add(name)
            try:
                out[name] = cls._validate_field(name, raw, (*loc, key))
            except _Invalid as exc:
                errors.extend(exc.errors)
        for name, info in cls.model_fields.items():
            if name in seen:
                continue
            if info.is_required():
                errors.append({"loc": (*loc, info.key), "msg": "Field required", "type": "missing"})
            else:
                out[name] = info.get_default()
        if errors:
            raise _Invalid(errors)
        return out

    @classmethod
    def _validate_field(cls, name: str, raw: Any, loc: Loc) -> Any:
        info = cls.model_fields[name]
        validators = cls._field_validators.get(name, ())
        value = raw
        for mode, fn in validators:
            if mode == "before":
                value = _call_validator(fn, cls, value, loc)
        value = _coerce(info.annotation, value, loc)
        _constrain(info, value, loc)
        for mode, fn in validators:
            if mode != "before":
                value = _call_validator(fn, cls, value, loc)
        return value

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        try:
            values = cls._validate_mapping(data, ())
        except _Invalid as exc:
            raise ValidationError(cls.__name__, exc.errors) from None
        obj = cls.__new__(cls)
        obj.__dict__.update(values)
        obj._run_model_validators()
        return obj

    def model_dump(self, mode: str = "python", by_alias: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            key = info.key if by_alias else name
            out[key] = _dump(self.__dict__.get(name), mode)
        return out

    @classmethod
    def model_json_schema(cls, by_alias: bool = True) -> dict[str, Any]:
        defs: dict[str, Any] = {}
        schema = _model_schema(cls, defs, by_alias)
        if defs:
            schema["$defs"] = defs
        return schema

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({inner})"

    __hash__ = None  # type: ignore[assignment]


def _is_classvar(ann: Any) -> bool:
    return (isinstance(ann, str) and ann.startswith(("ClassVar", "typing.ClassVar"))) or get_origin(ann) is ClassVar


def stripped_nonempty(v: str | None) -> str | None:
    """A shared field-validator body: None stays None; text is stripped and must not end up empty."""
    if v is None:
        return None
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    return v


class ItemErrors(ValueError):
    """Raised by a field validator of a list or mapping to blame items, not the whole value: ``{index or key:
    message}``. Each becomes its own error located at that item (so a file:line message points at it)."""

    def __init__(self, problems: dict[Any, str]):
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems.items()))
        self.problems = problems


def _call_validator(fn: Any, cls: type, value: Any, loc: Loc) -> Any:
    try:
        return fn(cls, value)
    except ItemErrors as exc:
        raise _Invalid([{"loc": (*loc, k), "msg": f"Value error, {m}", "type": "value_error"}
                        for k, m in exc.problems.items()]) from None
    except ValueError as exc:
        raise _err(loc, f"Value error, {exc}", "value_error") from None


def _dump(v: Any, mode: str) -> Any:
    if isinstance(v, Model):
        return v.model_dump(mode)
    if isinstance(v, enum.Enum):
        return v.value if mode == "json" else v
    if isinstance(v, (list, tuple)):
        return [_dump(x, mode) for x in v]
    if isinstance(v, dict):
        return {k: _dump(x, mode) for k, x in v.items()}
    return v


# -- coercion ---------------------------------------------------------------------------------------------
_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}


def _describe_choices(choices: list[Any]) -> str:
    shown = [repr(c) if isinstance(c, str) else str(c) for c in choices]
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def _coerce(tp: Any, v: Any, loc: Loc) -> Any:  # noqa: C901 - one dispatch over the supported types
    if tp is Any or tp is object:
        return v
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        members = get_args(tp)
        if v is None and type(None) in members:
            return None
        candidates = [m for m in members if m is not type(None)]
        # try the member that matches the input's kind first, so its error is the one reported
        candidates.sort(key=lambda m: 0 if _kind_matches(m, v) else 1)
        first: _Invalid | None = None
        for m in candidates:
            try:
                return _coerce(m, v, loc)
            except _Invalid as exc:
                first = first or exc
        assert first is not None
        raise first
    if origin is Literal:
        choices = list(get_args(tp))
        if v in choices and not (isinstance(v, bool) and not any(isinstance(c, bool) for c in choices)):
            return v
        raise _err(loc, f"Input should be {_describe_choices(choices)}", "literal_error")
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        if not isinstance(v, (list, tuple)):
            raise _err(loc, "Input should be a valid list", "list_type")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        errors: list[dict[str, Any]] = []
        out = []
        for i, x in enumerate(v):
            try:
                out.append(_coerce(item_tp, x, (*loc, i)))
            except _Invalid as exc:
                errors.extend(exc.errors)
        if errors:
            raise _Invalid(errors)
        return out
    if origin is dict or tp is dict:
        if not isinstance(v, dict):
            raise _err(loc, "Input should be a valid dictionary", "dict_type")
        args = get_args(tp)
        val_tp = args[1] if len(args) == 2 else Any
        return {k: _coerce(val_tp, x, (*loc, k)) for k, x in v.items()}
    if isinstance(tp, type) and issubclass(tp, Model):
        if isinstance(v, tp):
            return v
        values = tp._validate_mapping(v, loc)
        obj = tp.__new__(tp)
        obj.__dict__.update(values)
        try:
            obj._run_model_validators()
        except ValidationError as exc:
            raise _Invalid([{**e, "loc": (*loc, *e["loc"])} for e in exc.errors()]) from None
        return obj
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if v == member.value or v is member:
                return member
        raise _err(loc, f"Input should be {_describe_choices([m.value for m in tp])}", "enum")
    if tp is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            return v.strip().lower() in _TRUE
        raise _err(loc, "Input should be a valid boolean", "bool_type")
    if tp is int:
        if isinstance(v, bool):
            raise _err(loc, "Input should be a valid integer", "int_type")
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, str):
            try:
                return int(v.strip())
            except ValueError:
                pass
        raise _err(loc, "Input should be a valid integer", "int_type")
    if tp is float:
        if isinstance(v, bool):
            raise _err(loc, "Input should be a valid number", "float_type")
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v.strip())
            except ValueError:
                pass
        raise _err(loc, "Input should be a valid number", "float_type")
    if tp is str:
        if isinstance(v, str):
            return v
        raise _err(loc, "Input should be a valid string", "string_type")
    if tp is type(None):
        if v is None:
            return None
        raise _err(loc, "Input should be None", "none_required")
    raise TypeError(f"envprobe.schema does not support the type {tp!r}")


def _kind_matches(tp: Any, v: Any) -> bool:
    origin = get_origin(tp) or tp
    if isinstance(tp, type) and issubclass(tp, Model):
        return isinstance(v, dict)
    if origin in (list, tuple):
        return isinstance(v, (list, tuple))
    if origin is dict:
        return isinstance(v, dict)
    if isinstance(origin, type) and not isinstance(v, bool):
        return isinstance(v, origin)
    return False


def _constrain(info: FieldInfo, v: Any, loc: Loc) -> None:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return
    if info.ge is not None and v < info.ge:
        raise _err(loc, f"Input should be greater than or equal to {_num(info.ge)}", "greater_than_equal")
    if info.gt is not None and v <= info.gt:
        raise _err(loc, f"Input should be greater than {_num(info.gt)}", "greater_than")
    if info.le is not None and v > info.le:
        raise _err(loc, f"Input should be less than or equal to {_num(info.le)}", "less_than_equal")
    if info.lt is not None and v >= info.lt:
        raise _err(loc, f"Input should be less than {_num(info.lt)}", "less_than")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# -- JSON Schema -------------------------------------------------------------------------------------------
def _model_schema(cls: type[Model], defs: dict[str, Any], by_alias: bool) -> dict[str, Any]:
    cls._resolve()
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, info in cls.model_fields.items():
        key = info.key if by_alias else name
        prop = _type_schema(info.annotation, defs, by_alias)
        if info.description:
            prop["description"] = info.description
        for attr, kw in (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum"), ("lt", "exclusiveMaximum")):
            if getattr(info, attr) is not None:
                prop[kw] = getattr(info, attr)
        if info.default is not _MISSING and _jsonable(info.default):
            prop["default"] = _dump(info.default, "json")
        if info.json_schema_extra:
            prop.update(info.json_schema_extra)
        props[key] = prop
        if info.is_required():
            required.append(key)
    out: dict[str, Any] = {"type": "object", "title": cls.__name__, "properties": props,
                           "additionalProperties": False}
    if required:
        out["required"] = required
    if cls.__doc__ and cls.__doc__ is not Model.__doc__:
        out["description"] = " ".join(cls.__doc__.split())
    return out


def _jsonable(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool, enum.Enum)) or (isinstance(v, list) and not v)


def _type_schema(tp: Any, defs: dict[str, Any], by_alias: bool) -> dict[str, Any]:
    if tp is Any:
        return {}
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return {"anyOf": [_type_schema(m, defs, by_alias) for m in get_args(tp)]}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (list, tuple) or tp in (list, tuple):
        args = get_args(tp)
        return {"type": "array", "items": _type_schema(args[0], defs, by_alias) if args else {}}
    if origin is dict or tp is dict:
        args = get_args(tp)
        return {"type": "object", "additionalProperties": _type_schema(args[1], defs, by_alias) if args else {}}
    if isinstance(tp, type) and issubclass(tp, Model):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # placeholder against recursion
            defs[tp.__name__] = _model_schema(tp, defs, by_alias)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    if tp in simple:
        return {"type": simple[tp]}
    return {}


def type_name(tp: Any) -> str:
    """A short, readable name for a field's type (for ``envprobe probes NAME``)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(m) for m in get_args(tp))
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (list, tuple):
        args = get_args(tp)
        return f"list[{type_name(args[0])}]" if args else "list"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


__all__ = ["ConfigDict", "Field", "FieldInfo", "Model", "ValidationError", "field_validator", "model_validator",
           "type_name"]
