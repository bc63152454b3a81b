"""``@record``: plain data classes that cost next to nothing to define.

``dataclasses.dataclass`` generates its methods with ``exec`` — about a millisecond per class, and envprobe
defines some twenty on the path of every scan. ``record`` gives the part envprobe uses (``__init__`` from
annotations with defaults and ``field(default_factory=...)``, ``__eq__``, ``__repr__``, ``frozen`` with
``__hash__``) with generic methods instead. Type checkers see it as a dataclass (PEP 681).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_kwargs: Any) -> Callable[[Any], Any]:
        return lambda fn: fn

_MISSING: Any = object()
C = TypeVar("C", bound=type)


class _Field:
    __slots__ = ("default", "default_factory")

    def __init__(self, default: Any, default_factory: Callable[[], Any] | None):
        self.default = default
        self.default_factory = default_factory


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | None = None) -> Any:
    return _Field(default, default_factory)


class FrozenInstanceError(AttributeError):
    pass


def _is_classvar(ann: Any) -> bool:
    return isinstance(ann, str) and ann.replace("typing.", "").startswith("ClassVar")


@dataclass_transform(field_specifiers=(field,))
def record(cls: C | None = None, *, frozen: bool = False) -> Any:
    def wrap(klass: C) -> C:
        # fields of the nearest record base first (inherited attribute), then this class's own
        specs: list[tuple[str, Any, Callable[[], Any] | None]] = list(getattr(klass, "__record_specs__", ()))
        for name, ann in klass.__dict__.get("__annotations__", {}).items():
            if _is_classvar(ann):
                continue
            value = klass.__dict__.get(name, _MISSING)
            if isinstance(value, _Field):
                default, factory = value.default, value.default_factory
                if default is _MISSING:
                    delattr(klass, name)
                else:
                    setattr(klass, name, default)
            else:
                default, factory = value, None
            specs = [s for s in specs if s[0] != name]
            specs.append((name, default, factory))
        names = tuple(s[0] for s in specs)
        klass.__record_specs__ = tuple(specs)  # type: ignore[attr-defined]
        klass.__record_fields__ = names  # type: ignore[attr-defined]
        setter = object.__setattr__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
            if len(args) > len(specs):
                raise TypeError(f"{klass.__name__}() takes {len(specs)} arguments, got {len(args)}")
            for i, (name, default, factory) in enumerate(specs):
                if i < len(args):
                    if name in kwargs:
                        raise TypeError(f"{klass.__name__}() got two values for {name!r}")
                    value = args[i]
                elif name in kwargs:
                    value = kwargs.pop(name)
                elif factory is not None:
                    value = factory()
                elif default is not _MISSING:
                    value = default
                else:
                    raise TypeError(f"{klass.__name__}() missing argument {name!r}")
                setter(self, name, value)
            if kwargs:
                raise TypeError(f"{klass.__name__}() got unexpected arguments {sorted(kwargs)}")
            post = getattr(self, "__post_init__", None)
            if post is not None:
                post()

        def __eq__(self: Any, other: object) -> bool:  # noqa: N807
            if other.__class__ is not self.__class__:
                return NotImplemented
            return all(getattr(self, n) == getattr(other, n) for n in names)

        def __repr__(self: Any) -> str:  # noqa: N807
            return f"{klass.__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"

        klass.__init__ = __init__  # type: ignore[misc]
        klass.__eq__ = __eq__  # type: ignore[assignment, method-assign]
        klass.__repr__ = __repr__  # type: ignore[assignment, method-assign]
        if frozen:
            def __setattr__(self: Any, name: str, value: Any) -> None:  # noqa: N807
                raise FrozenInstanceError(f"cannot assign to field {name!r}")

            def __hash__(self: Any) -> int:  # noqa: N807
                return hash(tuple(getattr(self, n) for n in names))

            klass.__setattr__ = __setattr__  # type: ignore[assignment, method-assign]
            klass.__hash__ = __hash__  # type: ignore[assignment, method-assign]
        else:
            klass.__hash__ = None  # type: ignore[assignment]
        return klass

    return wrap(cls) if cls is not None else wrap
