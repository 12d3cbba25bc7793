"""Helpers shared by the YAML configs (scene recipes, training configs)."""

from __future__ import annotations

import re
from dataclasses import fields
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


def dataclass_from_dict(cls, data: Mapping[str, Any], what: str):
    """``cls(**data)`` for a config dataclass; an unknown key is a ValueError listing the valid ones."""
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ValueError(f"{what}: unknown key(s) {unknown}; valid keys: {valid}")
    return cls(**data)
