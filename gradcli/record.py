"""`@record`: a light stand-in for `@dataclass` (keyword/positional __init__ and a repr).

Why: `dataclass` compiles generated source for every class it decorates, about a millisecond
each; gradcli has a score of small record classes on the path of every one-liner, and startup
time is most of a `gradcli shape` call.  Equality stays identity, as with `eq=False`.

Type checkers read `@record` as a dataclass through `typing.dataclass_transform` (PEP 681): the
constructor of every record class is checked like a dataclass's, and `Factory(default_factory=...)`
is its field specifier (the spelling `dataclasses.field` uses, so a checker sees the default).
One difference a checker does not see: names starting with `_` are not constructor arguments.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar, dataclass_transform, overload

_T = TypeVar("_T")
_C = TypeVar("_C", bound=type)


class _Fresh:
    """The marker a `Factory` default leaves in the class body: call `make` for each instance."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]):
        self.make = make


@overload
def Factory(*, default_factory: Callable[[], _T]) -> _T: ...
@overload
def Factory(make: Callable[[], _T], /) -> _T: ...
def Factory(make: Callable[[], Any] | None = None, /, *,
            default_factory: Callable[[], Any] | None = None) -> Any:
    """A default made fresh for every instance, like `dataclasses.field(default_factory=...)`.

    Typed as returning the value it makes, so `notes: list[Note] = Factory(default_factory=list)`
    checks; at run time it returns the marker `record` recognises.  The positional spelling
    `Factory(list)` works too, but a type checker only sees the default in the keyword one.
    """
    maker = default_factory if make is None else make
    if maker is None or (make is not None and default_factory is not None):
        raise TypeError("Factory takes one default factory")
    return _Fresh(maker)


@dataclass_transform(eq_default=False, field_specifiers=(Factory,))
def record(cls: _C) -> _C:
    names: list[str] = []
    defaults: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name in klass.__dict__.get("__annotations__", {}):
            if name.startswith("_") or name in names:
                continue
            names.append(name)
            if name in klass.__dict__:
                defaults[name] = klass.__dict__[name]
    count = len(names)
    fields = tuple(names)

    def __init__(self: Any, *args: Any, **kw: Any) -> None:
        if not kw and len(args) == count:  # every field given in order: the parser's case
            self.__dict__.update(zip(fields, args))  # one call, not one per field
            return
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__} takes {len(names)} arguments")
        values = dict(zip(names, args))
        for name in names[len(args):]:
            if name in kw:
                values[name] = kw.pop(name)
            elif name in defaults:
                d = defaults[name]
                values[name] = d.make() if isinstance(d, _Fresh) else d
            else:
                raise TypeError(f"{cls.__name__} missing argument {name!r}")
        if kw:
            raise TypeError(f"{cls.__name__} got unexpected {', '.join(kw)}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self: Any) -> str:
        return f"{cls.__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"

    if "__init__" not in cls.__dict__:  # a class on a hot path may write its own
        setattr(cls, "__init__", __init__)
    if "__repr__" not in cls.__dict__:
        setattr(cls, "__repr__", __repr__)
    setattr(cls, "_record_fields", fields)
    return cls
