"""Values typed on a command line, parsed in one place.

`parse_value(raw)` reads a value whose type nobody declared (a notebook parameter given with `-p`, a sweep's
grid point) as a YAML scalar; `parse_value(raw, tp, key)` converts a value to a declared type (a `--set` config
key: bool, int, float, str, or Optional of one), with a one-line UsageError that names the key and an example.
"""
from __future__ import annotations

import math
import re
import typing
from typing import Any

from .errors import UsageError

# YAML 1.1 reads 1e-3 (no dot) as text; a shell user means a number.
_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_NONE = ("none", "null", "")


def parse_value(raw: Any, tp: Any = None, key: str = "value") -> Any:
    """`raw` (a string from the command line, or a JSON value) parsed: as a YAML scalar when `tp` is None,
    else converted to `tp`."""
    if tp is None:
        return _scalar(raw)
    optional = typing.get_origin(tp) is typing.Union and type(None) in typing.get_args(tp)
    if optional:
        if raw is None or (isinstance(raw, str) and raw.lower() in _NONE):
            return None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    wrong = UsageError(f"{key}={raw!r} is not a valid {tp.__name__}; for example --set {key}={_example(tp)}")
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise wrong
    if tp is int:
        if isinstance(raw, bool):
            raise wrong
        try:
            value = float(raw) if isinstance(raw, str) else raw
            if int(value) != value:
                raise ValueError
            return int(value)
        except (TypeError, ValueError, OverflowError):
            raise wrong from None
    if tp is float:
        if isinstance(raw, bool):
            raise wrong
        try:
            value = float(raw)
        except (TypeError, ValueError, OverflowError):
            raise wrong from None
        if not math.isfinite(value):  # nan and inf pass float() but no setting means anything by them
            raise UsageError(f"{key}={raw!r} is not a finite number; for example --set {key}={_example(tp)}")
        return value
    if tp is str:
        return str(raw)
    raise wrong


def _scalar(text: Any) -> Any:
    """Ints, floats, booleans, null/None and lists as YAML reads them; anything else stays a string."""
    import yaml

    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if stripped in ("None", "none"):
        return None  # Python's spelling, which is what the parameters cells themselves use
    if not stripped:
        return text
    try:
        value = yaml.safe_load(stripped)
    except yaml.YAMLError:
        return text
    if isinstance(value, dict) or (value is None and stripped not in ("null", "Null", "NULL", "~")):
        return text  # "a: b" or "# x" were meant as text, not as a mapping or a comment
    if isinstance(value, str) and _DECIMAL.match(stripped):
        return float(stripped)
    return value


def _example(tp) -> str:
    return {bool: "true", int: "10", float: "0.1", str: "name"}.get(tp, "value")
