"""Pydantic base for user-facing configs: validated, frozen, saved as YAML or JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict

from labworks.core.io import atomic_write_text

__all__ = ["Config", "ConfigError", "format_validation_error"]


class ConfigError(ValueError):
    """A config failed validation; the message names each bad field, its value and the rule."""


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def format_validation_error(err: pydantic.ValidationError, source: str) -> str:
    """Turn pydantic's error into one line per bad field: ``field 'a.b': message (got value)``."""
    lines = [f"invalid {err.title} from {source}:"]
    for e in err.errors():
        got = f" (got {e['input']!r})" if e.get("type") != "missing" else ""
        lines.append(f"  field '{_loc(e['loc'])}': {e['msg']}{got}")
    return "\n".join(lines)


class Config(BaseModel):
    """Base class for every labworks config.

    Frozen (hashable, safe to share), rejects unknown keys (a typo is an error, not a silent
    default), validates defaults. Subclass it and declare fields with types and constraints::

        class TrainConfig(Config):
            lr: float = Field(1e-3, gt=0)
            epochs: int = Field(10, ge=1)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "dict") -> Self:
        """Validate ``data``; raises :class:`ConfigError` naming every bad field."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"invalid {cls.__name__} from {source}: expected a mapping, got {type(data).__name__}"
            )
        try:
            return cls.model_validate(dict(data))
        except pydantic.ValidationError as err:
            raise ConfigError(format_validation_error(err, source)) from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Self:
        """Load a ``.yaml``/``.yml`` or ``.json`` file."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        text = p.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot parse {p}: {err}") from None
        return cls.from_dict(data or {}, source=str(p))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (paths and enums as strings)."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_file(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically as JSON or YAML, chosen by the suffix."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in {".json", ".yaml", ".yml"}:
            raise ValueError(f"config files must end in .json, .yaml or .yml, got {p.name!r}")
        return atomic_write_text(p, self.to_json() if suffix == ".json" else self.to_yaml())

    def with_overrides(self, overrides: Mapping[str, Any] | Iterable[str]) -> Self:
        """A copy with dotted-key overrides, validated again.

        ``overrides`` is a mapping ``{"optim.lr": 0.1}`` or CLI-style strings ``["optim.lr=0.1"]``
        whose values are parsed as YAML scalars (``true``, ``3``, ``1e-3``, ``[1, 2]``).
        """
        items: list[tuple[str, Any]] = []
        if isinstance(overrides, Mapping):
            items = list(overrides.items())
        else:
            for item in overrides:
                key, sep, raw = item.partition("=")
                if not sep or not key.strip():
                    raise ConfigError(f"override must look like 'key=value', got {item!r}")
                items.append((key.strip(), yaml.safe_load(raw)))
        data = self.to_dict()
        for key, value in items:
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"unknown config field '{key}' for {type(self).__name__}")
                node = node[part]
            if parts[-1] not in node:
                raise ConfigError(f"unknown config field '{key}' for {type(self).__name__}")
            node[parts[-1]] = value
        return type(self).from_dict(data, source="overrides")
