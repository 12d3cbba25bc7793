"""Subcommands of the ``spatial-alm`` CLI (see ``spatial_alm.cli``)."""

from __future__ import annotations

import yaml

from spatial_alm.config import load_yaml


def parse_overrides(items: list[str]) -> dict:
    """``--set`` values ``["room.rt60_s=[0.3,0.5]", ...]`` -> ``{"room.rt60_s": [0.3, 0.5], ...}`` (YAML values)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. room.rt60_s=[0.3,0.5]")
        try:
            overrides[key.strip()] = load_yaml(value)
        except yaml.YAMLError as err:
            raise ValueError(f"--set {item!r}: the value is not valid YAML ({err})") from None
    return overrides
