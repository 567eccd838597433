"""Load untrusted YAML (profiles, scenarios, load shapes) and report errors by file, line and field.

PyYAML's safe loader forgets where values came from; here the node tree is composed first so every value's
line is known by its path, then validated against a JSON Schema. A violation becomes one line such as
``profile.yaml:7: credentials.oidc_client_id: 'x' is too short``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from haicap.errors import HaicapError

__all__ = ["YamlDocument", "load_yaml_document"]

PathKey = tuple[str | int, ...]


@dataclass
class YamlDocument:
    path: Path
    data: Any
    lines: dict[PathKey, int]

    def line_of(self, key: PathKey) -> int:
        """Line (1-based) of the value at ``key``, or of its nearest enclosing value."""
        while key not in self.lines and key:
            key = key[:-1]
        return self.lines.get(key, 1)

    def error(self, key: PathKey, message: str) -> HaicapError:
        field = ".".join(str(k) if isinstance(k, str) else f"[{k}]" for k in key).replace(".[", "[") or "(top level)"
        return HaicapError(f"{self.path}:{self.line_of(key)}: {field}: {message}")

    def validate(self, schema: dict[str, Any]) -> None:
        """Raise a one-line HaicapError for the first violation of ``schema`` (the most specific one)."""
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(self.data), key=lambda e: (-len(e.absolute_path), e.message))
        if not errors:
            return
        best = jsonschema.exceptions.best_match(errors) or errors[0]
        key: PathKey = tuple(best.absolute_path)
        message = best.message
        if best.validator == "required":
            missing = [r for r in best.validator_value if r not in (best.instance or {})]
            if missing:
                key = (*key, missing[0])
                message = "is required but missing"
        elif best.validator == "additionalProperties":
            extra = sorted(set(best.instance) - set(best.schema.get("properties", {})))
            if extra:
                key = (*key, extra[0])
                allowed = ", ".join(best.schema.get("properties", {}))
                message = f"unknown field (allowed: {allowed})"
        raise self.error(key, message)


def _construct(
    node: yaml.Node, key: PathKey, lines: dict[PathKey, int], path: Path, loader: yaml.SafeLoader
) -> Any:
    lines[key] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            name = loader.construct_object(key_node)  # scalars only
            if not isinstance(name, str | int | float | bool):
                raise HaicapError(f"{path}:{key_node.start_mark.line + 1}: keys must be scalars")
            name = str(name)
            if name in out:
                raise HaicapError(f"{path}:{key_node.start_mark.line + 1}: duplicate key {name!r}")
            out[name] = _construct(value_node, (*key, name), lines, path, loader)
            lines[(*key, name)] = key_node.start_mark.line + 1  # the key's line reads best in errors
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*key, i), lines, path, loader) for i, item in enumerate(node.value)]
    field = ".".join(str(k) if isinstance(k, str) else f"[{k}]" for k in key).replace(".[", "[") or "(value)"
    try:
        value = loader.construct_object(node)
    except (ValueError, OverflowError, yaml.YAMLError) as exc:  # e.g. a date 2026-13-31: month must be in 1..12
        raise HaicapError(f"{path}:{node.start_mark.line + 1}: {field}: {node.value!r} cannot be read "
                          f"({exc})") from None
    if isinstance(value, float) and not math.isfinite(value):
        # JSON Schema bounds do not exclude NaN, and an infinite wait or rate is never what a file means
        raise HaicapError(f"{path}:{node.start_mark.line + 1}: {field}: must be a finite number, not {value}")
    return value


def load_yaml_document(path: Path | str) -> YamlDocument:
    """Parse one YAML file safely, remembering the line of every value."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HaicapError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HaicapError(f"{path}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise HaicapError(f"{path}:{line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise HaicapError(f"{path}: invalid YAML: {exc}") from None
    lines: dict[PathKey, int] = {}
    data = None if node is None else _construct(node, (), lines, path, yaml.SafeLoader(""))
    return YamlDocument(path=path, data=data, lines=lines)
