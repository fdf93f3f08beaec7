"""`record`: a frozen dataclass built with one `exec` instead of six.

`@dataclass(frozen=True)` compiles each method it writes (`__init__`, `__repr__`, `__eq__`,
`__hash__`, `__setattr__`, `__delattr__`) on its own, about 0.2 ms each on Python 3.11: the
dozens of records every command imports (the function registry, the document blocks) cost
more start-up than rich's tables. A record is the same class, with the same fields
(`dataclasses.fields`, `replace`, `asdict` and `match` work as on a dataclass) and methods that
behave as a frozen dataclass's do; only `__init__` is compiled for the class, the others are
shared functions that read the fields by name.

A record's fields are positional with plain or factory defaults: a class that needs
`__post_init__`, `field(init=False)` or keyword-only fields is refused at import (make it a
dataclass). `mutable_record` is `@dataclass` (not frozen: fields may be assigned, and it is not
hashable) made the same way.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # only the type checkers read it (typing has it from Python 3.11 only)

    def dataclass_transform(**kwargs: Any) -> Any:
        return lambda fn: fn


T = TypeVar("T")

_MISSING = dataclasses.MISSING
# The default of a field with a default_factory in the compiled __init__: "not given".
_FACTORY = type("_FACTORY", (), {"__repr__": lambda self: "<factory>"})()


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: type[T]) -> type[T]:
    """``cls`` as ``@dataclass(frozen=True)`` makes it, at a fraction of the cost."""
    return _make(cls, frozen=True)


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def mutable_record(cls: type[T]) -> type[T]:
    """``cls`` as ``@dataclass`` makes it, at a fraction of the cost."""
    return _make(cls, frozen=False)


def _make(cls: type[T], frozen: bool) -> type[T]:
    if any("__post_init__" in c.__dict__ for c in cls.__mro__):
        raise TypeError(f"{cls.__name__}: a record has no __post_init__; use a dataclass")
    undocumented = not cls.__doc__
    if undocumented:
        # Else dataclass writes the signature of the __init__ it is told not to make (object's,
        # whose text the first time costs compiling tokenize's patterns, ~5 ms).
        cls.__doc__ = "record"
    made: Any = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    fields = dataclasses.fields(made)
    if any(not f.init or getattr(f, "kw_only", False) for f in fields):
        raise TypeError(f"{cls.__name__}: a record's fields are positional; use a dataclass")
    if undocumented:
        made.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields)})"
    _add_methods(made, fields, frozen)
    return made


def _add_methods(cls: type, fields: tuple[dataclasses.Field[Any], ...], frozen: bool) -> None:
    names = [f.name for f in fields]
    env: dict[str, Any] = {
        "__object": object,
        "__factory": _FACTORY,
    }
    params, body = [], []
    for f in fields:
        if f.default is not _MISSING:
            env[f"__d_{f.name}"] = f.default
            params.append(f"{f.name}=__d_{f.name}")
            value = f.name
        elif f.default_factory is not _MISSING:
            env[f"__f_{f.name}"] = f.default_factory
            params.append(f"{f.name}=__factory")
            value = f"__f_{f.name}() if {f.name} is __factory else {f.name}"
        else:
            params.append(f.name)
            value = f.name
        body.append(f"  __object.__setattr__(self, {f.name!r}, {value})")
    exec(  # the source is made above from the class's own field names
        f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["  pass"]), env
    )
    # As dataclass does: a method the class writes itself is kept (a frozen class's
    # __setattr__ and __delattr__ cannot be), and so is a __hash__ it sets; a class that is not
    # frozen is not hashable unless it says how.
    for name in ("__setattr__", "__delattr__") if frozen else ():
        if name in cls.__dict__:
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    own_hash = cls.__dict__.get("__hash__", _MISSING)
    keep_hash = not (own_hash is _MISSING or (own_hash is None and "__eq__" in cls.__dict__))
    _install(cls, "__init__", env["__init__"])
    # The other methods read the fields by name, so one function of each serves every record:
    # nothing more to compile (dataclass compiles each for each class).
    shown = [f.name for f in fields if f.repr]
    compared = _getter([f.name for f in fields if f.compare])
    hashed = _getter([f.name for f in fields if (f.compare if f.hash is None else f.hash)])
    fenced = frozenset(names)
    owner: Any = cls
    refused = dataclasses.FrozenInstanceError

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({inner})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return compared(self) == compared(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(hashed(self))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is owner or name in fenced:
            raise refused(f"cannot assign to field {name!r}")
        super(owner, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is owner or name in fenced:
            raise refused(f"cannot delete field {name!r}")
        super(owner, self).__delattr__(name)

    import reprlib

    _install(cls, "__repr__", reprlib.recursive_repr()(__repr__))
    _install(cls, "__eq__", __eq__)
    if not keep_hash:
        cls.__hash__ = None  # type: ignore[assignment]  # so that _install sets it
        if frozen:
            _install(cls, "__hash__", __hash__)
    if frozen:
        _install(cls, "__setattr__", __setattr__)
        _install(cls, "__delattr__", __delattr__)


def _getter(names: list[str]) -> Any:
    """A function giving the tuple of these attributes, as dataclass's methods compare them."""
    if len(names) == 1:
        (name,) = names
        return lambda obj: (getattr(obj, name),)
    if not names:
        return lambda obj: ()
    return operator.attrgetter(*names)


def _install(cls: type, name: str, fn: Any) -> None:
    if cls.__dict__.get(name) is not None:  # written by the class itself
        return
    fn.__qualname__ = f"{cls.__qualname__}.{name}"
    fn.__module__ = cls.__module__
    setattr(cls, name, fn)
