"""gradcalc.records.record builds the class `@dataclass(frozen=True)` builds: each behaviour
is compared with a real frozen dataclass of the same fields."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from gradcalc.records import mutable_record, record


def _make(decorate: Any) -> Any:
    @decorate
    class Sample:
        """A sample record."""

        name: str
        items: tuple[int, ...] = ()
        extra: dict[str, int] = field(default_factory=dict)
        hidden: int = field(default=0, compare=False, repr=False)
        kind: ClassVar[str] = "sample"

        @property
        def size(self) -> int:
            return len(self.items)

    return Sample


Reference, Record = _make(dataclass(frozen=True)), _make(record)
# Picklable: at module level under their own names.
Reference.__qualname__ = Reference.__name__ = "Reference"
Record.__qualname__ = Record.__name__ = "Record"
MutableReference, MutableRecord = _make(dataclass), _make(mutable_record)
MutableReference.__qualname__ = MutableReference.__name__ = "MutableReference"
MutableRecord.__qualname__ = MutableRecord.__name__ = "MutableRecord"


def _outcome(fn: Any) -> Any:
    try:
        return ("value", fn())
    except Exception as exc:  # the same exception type and message
        return ("raises", type(exc).__name__, str(exc).replace("Reference", "Record"))


CHECKS: dict[str, Any] = {
    "repr": lambda C: repr(C("a", (1, 2), {"z": 1}, 5)).replace("Reference", "Record"),
    "eq": lambda C: C("a", (1,)) == C("a", (1,)),
    "eq ignores compare=False": lambda C: C("a", (), {}, 1) == C("a", (), {}, 2),
    "ne": lambda C: C("a") != C("b"),
    "eq other type": lambda C: C("a") == ("a", (), {}, 0),
    "hash": lambda C: hash(C("a", (1,), None)) == hash(C("a", (1,), None, 9)),
    "unhashable field": lambda C: hash(C("a")),
    "factory fresh": lambda C: C("a").extra is not C("a").extra and C("a").extra == {},
    "fields": lambda C: [(f.name, f.compare, f.repr) for f in dataclasses.fields(C)],
    "match_args": lambda C: C.__match_args__,
    "replace": lambda C: dataclasses.replace(C("a", (1,)), name="b").name,
    "asdict": lambda C: dataclasses.asdict(C("a", (1,), {"z": 2})),
    "is_dataclass": lambda C: dataclasses.is_dataclass(C),
    "assign": lambda C: setattr(C("a"), "name", "b"),
    "assign new": lambda C: setattr(C("a"), "other", 1),
    "delete": lambda C: delattr(C("a"), "name"),
    "missing argument": lambda C: C(),
    "unknown keyword": lambda C: C("a", colour=1),
    "too many": lambda C: C("a", (), {}, 0, 1),
    "keywords": lambda C: C(items=(3,), name="k").items,
    "classvar": lambda C: (C.kind, C("a").kind, "kind" in [f.name for f in dataclasses.fields(C)]),
    "property": lambda C: C("a", (1, 2)).size,
    "deepcopy": lambda C: copy.deepcopy(C("a", (1,))) == C("a", (1,)),
    "doc": lambda C: C.__doc__,
}


@pytest.mark.parametrize("check", list(CHECKS))
def test_a_record_behaves_as_a_frozen_dataclass(check: str) -> None:
    assert _outcome(lambda: CHECKS[check](Record)) == _outcome(lambda: CHECKS[check](Reference))


@pytest.mark.parametrize("check", [*CHECKS, "assigned"])
def test_a_mutable_record_behaves_as_a_dataclass(check: str) -> None:
    def assigned(C: Any) -> Any:
        sample = C("a")
        sample.name, sample.other = "b", 1
        del sample.other
        return repr(sample).replace("Reference", "Record")

    fn = assigned if check == "assigned" else CHECKS[check]
    mine, reference = _outcome(lambda: fn(MutableRecord)), _outcome(lambda: fn(MutableReference))
    assert mine == reference


def test_a_record_pickles_and_matches() -> None:
    sample = Record("a", (1,))
    globals()["Record"] = Record
    assert pickle.loads(pickle.dumps(sample)) == sample
    match sample:
        case Record(name, items):
            assert (name, items) == ("a", (1,))
        case _:
            pytest.fail("no match")


def test_a_record_refuses_what_it_does_not_build() -> None:
    with pytest.raises(TypeError, match="__post_init__"):

        @record
        class Checked:
            """x"""

            x: int

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError, match="positional"):

        @record
        class Hidden:
            """x"""

            x: int = field(default=0, init=False)


def _own_methods(decorate: Any) -> tuple[Any, Any, Any]:
    @decorate
    class Repr:
        """Writes its own repr."""

        x: int

        def __repr__(self) -> str:
            return f"<{self.x}>"

    @decorate
    class Eq:
        """Writes its own equality (so Python sets __hash__ to None; the fields' hash is used)."""

        x: int

        def __eq__(self, other: object) -> bool:
            return True

    @decorate
    class Hash:
        """Writes its own hash."""

        x: int

        def __hash__(self) -> int:
            return 7

    return Repr, Eq, Hash


@pytest.mark.parametrize(
    "check",
    [
        lambda R, E, H: repr(R(1)),
        lambda R, E, H: (E(1) == E(2), E(1) == 3),
        lambda R, E, H: hash(E(1)) == hash(E(1)),
        lambda R, E, H: (hash(H(1)), H(1) == H(1), H(1) == H(2)),
    ],
    ids=["own repr", "own eq", "hash with own eq", "own hash"],
)
def test_a_method_the_class_writes_is_kept_as_dataclass_keeps_it(check: Any) -> None:
    assert check(*_own_methods(record)) == check(*_own_methods(dataclass(frozen=True)))
    mine = _outcome(lambda: check(*_own_methods(mutable_record)))
    assert mine == _outcome(lambda: check(*_own_methods(dataclass)))


def test_a_record_cannot_write_its_own_setattr() -> None:
    with pytest.raises(TypeError, match="__setattr__"):

        @record
        class Mutable:
            """x"""

            x: int

            def __setattr__(self, name: str, value: Any) -> None:
                pass
