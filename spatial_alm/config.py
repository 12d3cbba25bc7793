"""Helpers shared by the YAML configs (scene recipes, training configs)."""

from __future__ import annotations

import numbers
import re
import types
import typing
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads exponent floats without a dot (``5e-4``) as floats, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """Parse YAML text (configs, recipes, ``--set`` values); ``1e-3`` is a float, not the string PyYAML makes."""
    return yaml.load(text, Loader=_Loader)


def merge_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """``base`` with ``overrides`` applied; dotted keys (``"room.rt60_s"``) address nested sections."""
    out = dict(base)
    for key, value in overrides.items():
        head, _, rest = str(key).partition(".")
        if rest:
            value = {rest: value}
        if isinstance(value, Mapping) and isinstance(out.get(head), Mapping):
            out[head] = merge_overrides(dict(out[head]), value)
        else:
            out[head] = value
    return out


# (what, dotted prefix) of the config section being built: "finetune config", "projector."
_SECTION: ContextVar[tuple[str, str]] = ContextVar("config_section", default=("", ""))


@contextmanager
def config_section(section: str, what: str = ""):
    """Within: :class:`ConfigError` and :func:`dataclass_from_dict` name fields with the section's dotted
    path (``projector.type``) and the outermost config's name (``finetune config: ...``).

    A config whose ``__post_init__`` builds a nested one from a dict field wraps that in
    ``with config_section("projector", "finetune config"):``.
    """
    outer_what, prefix = _SECTION.get()
    token = _SECTION.set((outer_what or what, f"{prefix}{section}." if section else prefix))
    try:
        yield
    finally:
        _SECTION.reset(token)


class ConfigError(ValueError):
    """A config value that is not allowed: ``"<what>: <dotted field> = <value>; allowed: <allowed>"``.

    Raised inside :func:`config_section` the field gets the section path and ``what`` the outermost
    config's name (a nested config's own name, e.g. ``"projector config"``, gives way to it).
    """

    def __init__(self, field: str, value: Any, allowed: str, what: str = ""):
        outer_what, prefix = _SECTION.get()
        self.what, self.field, self.value, self.allowed = outer_what or what, prefix + field, value, allowed
        head = f"{self.what}: " if self.what else ""
        super().__init__(f"{head}{self.field} = {value!r}; allowed: {allowed}")


def load_yaml_file(path: str | Path, what: str = "config") -> Any:
    """Parse a YAML file; broken YAML is a ValueError naming the file, line and column (one line)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {path}: no such file" if not path.exists() else f"{what} {path}: not a file")
    try:
        return load_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{what} {path}: not valid YAML ({yaml_error_text(err)})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path}: not a text file; allowed: a YAML file") from None


def yaml_error_text(err: yaml.YAMLError) -> str:
    """One line of a PyYAML error: ``line 2, column 3: mapping values are not allowed here``."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(str(problem).split())


def _allowed(tp) -> str | None:
    """What the annotated type ``tp`` allows, in words; None for what is not checked (Any, classes)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        parts = [_allowed(a) for a in args if a is not type(None)]
        if any(p is None for p in parts):
            return None
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp in (list, tuple) or origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            inner = [_allowed(a) or "any value" for a in args]
            return f"a list of {len(args)} ({', '.join(inner)})"
        inner = _allowed(args[0]) if args else None
        return "a list" + (f" of items each {inner}" if inner else "")
    if tp in (dict, Mapping) or origin in (dict, Mapping, typing.Mapping):
        return "a mapping (key: value)"
    return None


def _fits(value, tp) -> bool:
    """Whether a YAML-loaded value fits the annotated type ``tp`` (ints count as floats; lists as tuples)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or isinstance(tp, typing.TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
        return not args or all(_fits(v, args[0]) for v in value)
    if tp in (dict, Mapping) or origin in (dict, Mapping, typing.Mapping):
        return isinstance(value, Mapping)
    return True  # a class or construct this check does not know: left to the config's own checks


def check_fields(cls, data: Mapping[str, Any], what: str) -> None:
    """Check ``data``'s keys against the dataclass ``cls``'s fields and each value against the field's
    annotated type (int, float (ints accepted), bool, str, lists/tuples, mappings, Optional / unions);
    a ValueError names the dotted field, the value and what is allowed. Builds nothing."""
    with config_section("", what):
        what, prefix = _SECTION.get()
        if not isinstance(data, Mapping):
            field = prefix[:-1] or "config"
            raise ValueError(f"{what}: {field} = {data!r}; allowed: a mapping (key: value)")
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(map(str, data)) - set(valid))
        if unknown:
            raise ValueError(f"{what}: unknown key(s) {[prefix + k for k in unknown]}; valid keys: {valid}")
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an annotation that does not resolve at run time: no type checks
            hints = {}
        for name, value in data.items():
            tp = hints.get(name, Any)
            if not _fits(value, tp):
                allowed = _allowed(tp) or str(tp)
                if isinstance(value, bool) and "a string" in allowed:
                    allowed += " (YAML reads unquoted yes/no/on/off as true/false: quote it)"
                raise ConfigError(name, value, allowed, what)


def dataclass_from_dict(cls, data: Mapping[str, Any], what: str):
    """``cls(**data)`` for a config dataclass, after :func:`check_fields` (unknown keys, value types);
    errors of the dataclass's own checks that use :class:`ConfigError` name ``what`` too."""
    check_fields(cls, data, what)
    with config_section("", what):
        return cls(**data)
