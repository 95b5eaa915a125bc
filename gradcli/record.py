"""`@record`: a light stand-in for `@dataclass` (keyword/positional __init__ and a repr).

Why: `dataclass` compiles generated source for every class it decorates, about a millisecond
each; gradcli has a score of small record classes on the path of every one-liner, and startup
time is most of a `gradcli shape` call.  Equality stays identity, as with `eq=False`.
"""

from __future__ import annotations

from typing import Any, Callable


class Factory:
    """A default made fresh for every instance (like dataclasses.field(default_factory=...))."""

    def __init__(self, make: Callable[[], Any]):
        self.make = make


def record(cls):
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

    def __init__(self, *args, **kw):
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
                values[name] = d.make() if isinstance(d, Factory) else d
            else:
                raise TypeError(f"{cls.__name__} missing argument {name!r}")
        if kw:
            raise TypeError(f"{cls.__name__} got unexpected {', '.join(kw)}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __repr__(self):
        return f"{cls.__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"

    if "__init__" not in cls.__dict__:  # a class on a hot path may write its own
        cls.__init__ = __init__
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = __repr__
    cls._record_fields = tuple(names)
    return cls
