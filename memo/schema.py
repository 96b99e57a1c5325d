"""Typed config schemas: a dataclass, TypedDict or constructor signature says which keys a config
node has and what each may hold; `Schema.check` refuses anything else with one line that names the
key and the allowed values, so a bad value ends before any data loads.

Types are Python's: `int`, `float` (an int is accepted), `bool`, `str`, `None`, `Literal[...]`,
unions, `list[...]`, `dict[str, ...]`, `Any`, a TypedDict or dataclass for a nested node, and
`Annotated[int | float, Range(...)]` for a bound (`PositiveInt`, `Probability`, ...) and
`Annotated[str, NonBlank()]` for a string that must say something (`Text`: a path, a name).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from memo.errors import MemoError, config_error


@dataclass(frozen=True)
class Range:
    """A numeric bound for `Annotated[int | float, Range(...)]`; open ends exclude the limit."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return low_ok and high_ok

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        return f"{'<' if self.high_open else '<='} {_number(self.high)}"


@dataclass(frozen=True)
class NonBlank:
    """For `Annotated[str, NonBlank()]`: a string with something besides white space (an empty
    path or name is a typo or an unset shell variable, never a choice)."""

    def contains(self, value: str) -> bool:
        return bool(value.strip())

    def describe(self) -> str:
        return "that is not blank"


@dataclass(frozen=True)
class Pattern:
    """For `Annotated[str, Pattern(regex, words)]`: a string that `regex` matches from its
    start; `words` says in the error what that means."""

    regex: str
    words: str

    def contains(self, value: str) -> bool:
        return re.match(self.regex, value) is not None

    def describe(self) -> str:
        return f"({self.words})"


CONSTRAINTS = (Range, NonBlank, Pattern)  # the `Annotated` extras that check_value applies

PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, low_open=True)]
NonNegativeFloat = Annotated[float, Range(0)]
Probability = Annotated[float, Range(0, 1)]
DropoutRate = Annotated[float, Range(0, 1, high_open=True)]  # 1 would zero every activation
Seed = Annotated[int, Range(0, 2**32 - 1)]  # numpy's legacy seeding takes 32 bits
Text = Annotated[str, NonBlank()]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _yaml(value: object) -> str:
    """A literal as it is written on the command line: true, null, lstm."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe(hint: Any) -> str:
    """The values `hint` allows, in words: 'an integer >= 1', 'lstm | gru', 'a number, or null'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        bounds = " ".join(a.describe() for a in args[1:] if isinstance(a, CONSTRAINTS))
        return f"{describe(args[0])} {bounds}".strip()
    if origin is Literal:
        return " | ".join(_yaml(a) for a in args)
    if origin in (Union, types.UnionType):
        named = [describe(a) for a in args if a is not type(None)]
        return ", or ".join(named) + (", or null" if type(None) in args else "")
    if origin is list:
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin is dict or _is_record(hint):
        return "a mapping"
    names = {int: "an integer", float: "a number", bool: "true | false", str: "a string"}
    return "null" if hint is type(None) else names.get(hint, "any value")


def _plural(hint: Any) -> str:
    names = {int: "integers", float: "numbers", bool: "true/false", str: "strings"}
    return names.get(hint, f"({describe(hint)})")


def _is_record(hint: Any) -> bool:
    """A TypedDict or dataclass: a node with its own named keys."""
    return typing.is_typeddict(hint) or dataclasses.is_dataclass(hint)


def _matches(value: Any, hint: Any) -> bool:
    """Whether `value` has the type `hint` names, looking at a container, not its items (those
    `check_value` checks one by one), and not at bounds."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin is Annotated:
        return _matches(value, args[0])
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in args)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is list:
        return isinstance(value, list)
    if origin is dict or _is_record(hint):
        return isinstance(value, dict)
    if hint is type(None):
        return value is None
    if hint is float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return number and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def check_value(value: Any, hint: Any, key: str) -> None:
    """Refuse `value` at `key` unless it has the type and bounds `hint` names; a bad item of a
    list or mapping is named by its own key (`dataset.counts.train.anger`)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        for branch in args:
            try:
                return check_value(value, branch, key)
            except MemoError:
                pass
        containers = [a for a in args if _matches(value, a)]
        if len(containers) == 1 and isinstance(value, (list, dict)):
            check_value(value, containers[0], key)  # names the bad item
        raise config_error(key, value, describe(hint))
    if not _matches(value, hint):
        raise config_error(key, value, describe(hint))
    if origin is Annotated:
        check_value(value, args[0], key)
        if not all(a.contains(value) for a in args[1:] if isinstance(a, CONSTRAINTS)):
            raise config_error(key, value, describe(hint))
    elif origin is list:
        for i, item in enumerate(value):
            check_value(item, args[0], f"{key}[{i}]")
    elif origin is dict:
        for name, item in value.items():
            check_value(name, args[0], f"{key} (a key)")
            check_value(item, args[1], f"{key}.{name}")
    elif _is_record(hint):
        Schema.of_record(hint, key).check(value, key)


@dataclass(frozen=True)
class Schema:
    """The keys of one config node, their types, and which of them may be left out."""

    fields: Mapping[str, Any]  # key -> type
    what: str  # names the node in messages: "trainer", "model=eea (memo.models.eea.EEA)"
    optional: frozenset[str] = frozenset()  # keys with a default in the code

    @classmethod
    def of_record(cls, record: type, what: str) -> Schema:
        """A TypedDict's or dataclass's keys (ClassVars and init=False fields left out)."""
        hints = typing.get_type_hints(record, include_extras=True)
        if not dataclasses.is_dataclass(record):  # a TypedDict; total=False keys are optional
            return cls(hints, what, frozenset(getattr(record, "__optional_keys__", ())))
        fields = [f for f in dataclasses.fields(record) if f.init]
        optional = {f.name for f in fields if f.default is not dataclasses.MISSING}
        optional |= {f.name for f in fields if f.default_factory is not dataclasses.MISSING}
        return cls({f.name: hints[f.name] for f in fields}, what, frozenset(optional))

    @classmethod
    def of_parameters(
        cls, function: Callable[..., Any], what: str, bound: Iterable[str] = (), typed: bool = True
    ) -> Schema:
        """The keyword parameters of `function` (a class: its constructor), less those memo
        passes itself (`bound`); `typed=False` keeps only the annotations made of config types
        (foreign code, such as torch's optimizers: `patience: int` is checked, `lr: float |
        Tensor` is not)."""
        target = function.__init__ if isinstance(function, type) else function
        hints = typing.get_type_hints(target, include_extras=True) if typed else _plain(target)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        parameters = [
            p
            for name, p in inspect.signature(function).parameters.items()
            if p.kind in kinds and name not in {*bound, "self"}
        ]
        optional = frozenset(p.name for p in parameters if p.default is not p.empty)
        return cls({p.name: hints.get(p.name, Any) for p in parameters}, what, optional)

    def check(self, values: Mapping[str, Any], key: str) -> None:
        """Refuse the node `values` at `key` if it has a key this schema lacks, lacks a required
        one, or holds a value of the wrong type or out of bounds. Keys starting with `_`
        (`_target_`, `_partial_`) belong to Hydra and are left alone."""
        prefix = f"{key}." if key else ""
        for name in values:
            if name not in self.fields and not str(name).startswith("_"):
                raise unknown_key(f"{prefix}{name}", self.fields, self.what)
        for name, hint in self.fields.items():
            if name in values:
                check_value(values[name], hint, f"{prefix}{name}")
            elif name not in self.optional:
                allowed = describe(hint)
                raise MemoError(f"config key '{prefix}{name}' is missing; allowed: {allowed}")


PLAIN = (int, float, bool, str, type(None))  # what a config value can be, besides containers


def _is_plain(hint: Any) -> bool:
    """Whether `hint` names only config types: PLAIN, Literal, and unions, lists and dicts of
    them."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in PLAIN or origin is Literal:
        return True
    return origin in (Union, types.UnionType, list, dict) and all(map(_is_plain, args))


def _plain(function: Callable[..., Any]) -> dict[str, Any]:
    """The annotations of foreign `function` that name config types only (none if they cannot
    be read)."""
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # an annotation naming what its module does not import
        return {}
    return {name: hint for name, hint in hints.items() if _is_plain(hint)}


def unknown_key(key: str, known: Iterable[str], what: str) -> MemoError:
    """`key` is not a setting of `what`: one line with the closest known key, or all of them."""
    parent, _, name = key.rpartition(".")
    known = sorted(known)
    prefix = f"{parent}." if parent else ""
    close = [f"'{prefix}{k}'" for k in difflib.get_close_matches(name, known, n=2, cutoff=0.6)]
    hint = f"did you mean {' or '.join(close)}?" if close else f"its keys: {', '.join(known)}"
    return MemoError(f"config key '{key}' is not a setting of {what}; {hint}")
