"""`@record`: the part of `@dataclass` that diagnose-bundle's records use, without its cost.

`import dataclasses` imports inspect (and with it ast, dis, tokenize), and each @dataclass
class compiles several methods and, without a docstring, calls inspect.signature. For the
~45 record classes on diagnose-bundle's path that was about 40% of a process that must start
within 3x a bare interpreter (issue 13, bench/startup.py). A record compiles one function per
class, its __init__, the same as @dataclass's (positional or keyword arguments, defaults,
default factories, __post_init__), and gets, as from @dataclass, __eq__ (same class, fields
equal), __hash__ (frozen and eq: of the fields; eq alone: None, unhashable), __repr__ and
frozen instances, all shared closures. Methods a class defines itself are kept.
`fields()` lists a record's field names (what report.to_json serializes).

Not supported, and not used by a record: inheritance between records, ClassVar, order=,
kw_only, slots, InitVar. Classes that need dataclasses.asdict/replace stay dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

TYPE_CHECKING = False  # typing is not imported at run time: it is itself ~2 ms
if TYPE_CHECKING:
    from typing import Any

_MISSING = object()


class _Factory:
    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()  # the __init__ default of a field that has a default_factory
FIELDS = "__record_fields__"


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record (dataclasses.FrozenInstanceError's role)."""


class _Field:
    __slots__ = ("default", "default_factory")

    def __init__(self, default: object, default_factory: object) -> None:
        self.default = default
        self.default_factory = default_factory


def field(*, default: object = _MISSING, default_factory: object = _MISSING) -> object:
    """A field's default or default factory, as dataclasses.field(default=, default_factory=)."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory)


def fields(record_or_class: object) -> tuple[str, ...]:
    """The field names of a record (instance or class), in declaration order."""
    return getattr(record_or_class, FIELDS)


def is_record(value: object) -> bool:
    return hasattr(type(value), FIELDS)


def record(cls: type | None = None, /, *, frozen: bool = False, eq: bool = True,
           repr: bool = True) -> Any:
    """Decorate a class as @dataclass(frozen=, eq=, repr=) would (see the module's doc)."""

    def wrap(cls: type) -> type:
        _process(cls, frozen, eq, repr)
        return cls

    return wrap if cls is None else wrap(cls)


def _process(cls: type, frozen: bool, eq: bool, repr_: bool) -> None:
    names = tuple(cls.__dict__.get("__annotations__", {}))
    globs: dict[str, object] = {"_FACTORY": _FACTORY, "_setattr": object.__setattr__}
    params: list[str] = []
    body: list[str] = []
    seen_default = False
    for name in names:
        default, factory = cls.__dict__.get(name, _MISSING), _MISSING
        if isinstance(default, _Field):
            default, factory = default.default, default.default_factory
            if default is _MISSING:
                delattr(cls, name)  # as dataclasses: no class attribute for a factory field
            else:
                setattr(cls, name, default)
        if isinstance(default, (list, dict, set)):
            raise ValueError(f"mutable default {type(default)} for field {name} is not allowed:"
                             " use default_factory")
        value = name
        if factory is not _MISSING:
            globs[f"_factory_{name}"] = factory
            params.append(f"{name}=_FACTORY")
            value = f"_factory_{name}() if {name} is _FACTORY else {name}"
            seen_default = True
        elif default is not _MISSING:
            globs[f"_default_{name}"] = default
            params.append(f"{name}=_default_{name}")
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {name!r} follows default argument")
        else:
            params.append(name)
        body.append(f"_setattr(self, {name!r}, {value})" if frozen else f"self.{name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n    " + "\n    ".join(body or ["pass"])
    local: dict[str, Any] = {}
    exec(source, globs, local)  # one compile per class, as @dataclass's __init__
    local["__init__"].__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, FIELDS, names)
    _set(cls, "__init__", local["__init__"])
    values = _values(names)
    if repr_:
        _set(cls, "__repr__", _repr(names))
    if eq:
        _set(cls, "__eq__", _eq(values))
        if cls.__dict__.get("__hash__") is None:
            # as dataclasses: frozen and eq hash the fields; eq alone makes it unhashable
            hash_ = _hash(values) if frozen else None
            setattr(cls, "__hash__", hash_)  # noqa: B010 - mypy rejects the plain assignment
    if frozen:
        _set(cls, "__setattr__", _frozen_setattr(cls, names))
        _set(cls, "__delattr__", _frozen_delattr(cls, names))


def _values(names: tuple[str, ...]) -> Callable[[object], tuple[object, ...]]:
    """A function from a record to the tuple of its fields' values (what eq and hash use)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return lambda obj: ()


def _set(cls: type, name: str, function: object) -> None:
    if name not in cls.__dict__:  # a method the class defines itself wins, as in dataclasses
        setattr(cls, name, function)


def _repr(names: tuple[str, ...]) -> Callable[[object], str]:
    def __repr__(self: object) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__qualname__}({inner})"

    return __repr__


def _eq(values: Callable[[object], object]) -> Callable[[object, object], bool]:
    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _hash(values: Callable[[object], object]) -> Callable[[object], int]:
    def __hash__(self: object) -> int:
        return hash(values(self))

    return __hash__


def _frozen_setattr(cls: type, names: tuple[str, ...]) -> Callable[[object, str, object], None]:
    def __setattr__(self: object, name: str, value: object) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    return __setattr__


def _frozen_delattr(cls: type, names: tuple[str, ...]) -> Callable[[object, str], None]:
    def __delattr__(self: object, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    return __delattr__
