"""Embedded defaults: the 29 units of the 2020 circular's table, for the demo and as a starting registry.

The file is package data (``mailbot/data/default_units.toml``) and goes through the same validating loader
as a config file, so it cannot hold a unit that ``mailbot.toml`` would refuse.
"""

from __future__ import annotations

import tomllib
from importlib import resources

from mailbot.config import UnitConfig, config_from_dict
from mailbot.errors import ConfigError

DEFAULT_UNITS_RESOURCE = "default_units.toml"


def load_default_units() -> tuple[UnitConfig, ...]:
    """The embedded units, validated. Raises ConfigError if the packaged file is broken."""
    text = resources.files("mailbot").joinpath("data", DEFAULT_UNITS_RESOURCE).read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"mailbot/data/{DEFAULT_UNITS_RESOURCE}: not valid TOML: {exc}") from exc
    unknown = sorted(set(raw) - {"units"})
    if unknown:
        raise ConfigError(f"mailbot/data/{DEFAULT_UNITS_RESOURCE}: only [[units]] belongs here, not {unknown[0]}")
    return config_from_dict({"units": raw.get("units", [])}).units
