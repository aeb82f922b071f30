"""Typed, frozen configuration objects that round-trip through JSON.

Every registered model and study is constructed from a `Config` subclass::

    @dataclass(frozen=True, kw_only=True)
    class MLPConfig(Config):
        \"\"\"Configuration of an MLP.

        Attributes:
            in_features: Size of the input's last dimension.
            dropout: Dropout probability after each hidden activation.
        \"\"\"

        in_features: int = 64
        dropout: float = 0.0

        def validate(self) -> None:
            require(self.in_features >= 1, "in_features", "must be >= 1", self.in_features)

Rules enforced here:

* fields are type-checked on construction against their annotations (``int``, ``float``,
  ``bool``, ``str``, ``Literal[...]``, ``tuple[T, ...]``, ``X | None`` and nested configs);
  a wrong type or value raises `ConfigError` (a `ValueError`) whose message names the field;
* subclasses add value checks in `validate`, called from ``__post_init__``;
* `to_dict` gives plain JSON values, nested configs as ``{"type": ClassName, "params": {...}}``;
  `from_dict` accepts lists where tuples are declared and ints where floats are declared;
* the ``Attributes:`` section of the class docstring is the documentation of each field
  (`field_docs`), shown by ``perceptrons info`` and checked by the contract tests.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from typing import Any, Literal, Self, TypeVar, get_args, get_origin

__all__ = [
    "Config",
    "ConfigError",
    "differences",
    "field_docs",
    "field_types",
    "parse_value",
    "require",
]

C = TypeVar("C", bound="Config")


class ConfigError(ValueError):
    """Invalid configuration value; the message starts with the field's name."""


def require(condition: bool, field: str, message: str, value: Any = dataclasses.MISSING) -> None:
    """Raise `ConfigError` naming ``field`` unless ``condition`` holds.

    Args:
        condition: The check that must be true.
        field: Name of the offending field (dotted for nested configs).
        message: What the value must satisfy, e.g. ``"must be >= 1"``.
        value: The offending value, quoted in the message when given.
    """
    if not condition:
        got = "" if value is dataclasses.MISSING else f", got {value!r}"
        raise ConfigError(f"{field}: {message}{got}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """Base class of all configurations (frozen, keyword-only dataclasses)."""

    def __post_init__(self) -> None:
        hints = field_types(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            coerced = _check_type(value, hints[f.name], f.name)
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)
        self.validate()

    def validate(self) -> None:
        """Value checks of a subclass; raise `ConfigError` via `require`."""

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary of the fields (nested configs as typed dictionaries)."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: str = "") -> Self:
        """Build from `to_dict` output; also accepts ``{"type": ..., "params": ...}``.

        Raises:
            ConfigError: unknown field, wrong type, or a ``type`` that is not this class.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{path or cls.__name__}: expected a mapping, got {data!r}")
        if set(data) == {"type", "params"}:
            target = _resolve_subclass(cls, data["type"], path)
            return target.from_dict(data["params"], path=path)
        hints = field_types(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            where = f"{path}." if path else ""
            raise ConfigError(
                f"{where}{unknown[0]}: unknown field of {cls.__name__}; valid fields: "
                + ", ".join(names)
            )
        kwargs = {}
        for name, value in data.items():
            full = f"{path}.{name}" if path else name
            kwargs[name] = _from_plain(value, hints[name], full)
        try:
            return cls(**kwargs)
        except ConfigError as err:
            if path:
                raise ConfigError(f"{path}.{err}") from None
            raise

    def to_json(self, *, indent: int | None = 2) -> str:
        """JSON text ``{"type": ClassName, "params": {...}}``."""
        return json.dumps({"type": type(self).__name__, "params": self.to_dict()}, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Self:
        """Inverse of `to_json` (plain `to_dict` JSON is accepted too)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{cls.__name__}: invalid JSON ({err})") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Self:
        """Copy with some fields changed (validated like the constructor).

        Raises:
            ConfigError: a change names an unknown field or has an invalid value.
        """
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ConfigError(
                f"{unknown[0]}: unknown field of {type(self).__name__}; valid fields: "
                + ", ".join(names)
            )
        return dataclasses.replace(self, **changes)

    def replace_path(self, path: str, value: Any) -> Self:
        """Copy with the (possibly dotted, e.g. ``"fit.max_steps"``) field set to ``value``."""
        head, _, rest = path.partition(".")
        names = [f.name for f in dataclasses.fields(self)]
        if head not in names:
            raise ConfigError(
                f"{head}: unknown field of {type(self).__name__}; valid fields: " + ", ".join(names)
            )
        if rest:
            child = getattr(self, head)
            if not isinstance(child, Config):
                raise ConfigError(f"{head}: is not a nested config, cannot set {path!r}")
            try:
                new_child = child.replace_path(rest, value)
            except ConfigError as err:  # name the full dotted path, as from_dict does
                raise ConfigError(f"{head}.{err}") from None
            return self.replace(**{head: new_child})
        return self.replace(**{head: value})


# ---------------------------------------------------------------------- comparison
MISSING = "<missing>"
"""Stands for a field that one side of `differences` does not have."""


def _is_typed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"type", "params"}


def differences(old: Config | dict[str, Any], new: Config | dict[str, Any]) -> dict[str, Any]:
    """Fields whose values differ between two configs, by dotted path: ``{path: (old, new)}``.

    Either side may be a config or its `Config.to_dict` form (e.g. read back from a JSON file
    written by an older version: a field only one side has is paired with `MISSING`). Nested
    configs of the same class are compared field by field (``"optimizer.lr"``); nested configs
    of different classes differ at their own path, as ``(old class name, new class name)``.
    """
    a = old.to_dict() if isinstance(old, Config) else old
    b = new.to_dict() if isinstance(new, Config) else new
    out: dict[str, Any] = {}
    for key in list(a) + [k for k in b if k not in a]:
        x, y = a.get(key, MISSING), b.get(key, MISSING)
        if _is_typed(x) and _is_typed(y):
            if x["type"] != y["type"]:
                out[key] = (x["type"], y["type"])
            else:
                for sub, pair in differences(x["params"], y["params"]).items():
                    out[f"{key}.{sub}"] = pair
        elif x != y:
            out[key] = (x, y)
    return out


# ---------------------------------------------------------------------- introspection
def field_types(cls: type) -> dict[str, Any]:
    """Resolved type annotations of a config class's fields."""
    return typing.get_type_hints(cls)


_ATTR_LINE = re.compile(r"^(\s*)(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def field_docs(cls: type) -> dict[str, str]:
    """Field documentation parsed from the ``Attributes:`` section of the class docstrings.

    Docstrings of base classes are read too, so inherited fields keep their documentation.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        text = klass.__dict__.get("__doc__") or ""
        lines = text.expandtabs().splitlines()
        inside, indent, current = False, None, None
        for line in lines:
            if line.strip() == "Attributes:":
                inside, indent, current = True, None, None
                continue
            if not inside:
                continue
            if not line.strip():
                continue
            lead = len(line) - len(line.lstrip())
            match = _ATTR_LINE.match(line)
            if indent is None and match:
                indent = lead
            if indent is not None and lead < indent:
                inside = False
                continue
            if match and lead == indent:
                current = match.group(2)
                docs[current] = match.group(3).strip()
            elif current is not None:
                docs[current] = (docs[current] + " " + line.strip()).strip()
    return docs


# ---------------------------------------------------------------------- type checking
def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        return f"tuple of {_type_name(args[0])}" if args else "tuple"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _check_type(value: Any, tp: Any, name: str) -> Any:
    """Return ``value`` (possibly coerced: int->float, list->tuple) or raise `ConfigError`."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        for arg in get_args(tp):
            try:
                return _check_type(value, arg, name)
            except ConfigError:
                continue
        raise ConfigError(f"{name}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in get_args(tp)):
            return value
        raise ConfigError(f"{name}: expected {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, tuple | list):
            raise ConfigError(f"{name}: expected {_type_name(tp)}, got {value!r}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            items = tuple(_check_type(v, args[0], f"{name}[{i}]") for i, v in enumerate(value))
        else:
            if len(args) != len(value):
                raise ConfigError(f"{name}: expected {len(args)} items, got {value!r}")
            items = tuple(
                _check_type(v, a, f"{name}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        return items
    if tp is type(None):
        if value is None:
            return value
        raise ConfigError(f"{name}: expected None, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected bool, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected int, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = float(value)
            if math.isnan(value):
                raise ConfigError(f"{name}: expected a number, got nan")
            return value
        raise ConfigError(f"{name}: expected float, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name}: expected str, got {value!r}")
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{name}: expected {tp.__name__}, got {value!r}")
    raise TypeError(f"{name}: unsupported config field type {tp!r}")


def _to_plain(value: Any) -> Any:
    if isinstance(value, Config):
        return {"type": type(value).__name__, "params": value.to_dict()}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def _from_plain(value: Any, tp: Any, name: str) -> Any:
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        configs = [a for a in get_args(tp) if isinstance(a, type) and issubclass(a, Config)]
        if configs and isinstance(value, dict):
            return configs[0].from_dict(value, path=name)
        return value
    if isinstance(tp, type) and issubclass(tp, Config) and isinstance(value, dict):
        return tp.from_dict(value, path=name)
    if origin is tuple and isinstance(value, list):
        args = get_args(tp)
        inner = args[0] if args else Any
        return tuple(_from_plain(v, inner, f"{name}[{i}]") for i, v in enumerate(value))
    return value


def _resolve_subclass(cls: type[C], type_name: Any, path: str) -> type[C]:
    """Find ``cls`` or one of its subclasses named ``type_name`` (no global lookup table)."""
    stack: list[type] = [cls]
    while stack:
        klass = stack.pop()
        if klass.__name__ == type_name:
            return klass  # type: ignore[return-value]
        stack.extend(klass.__subclasses__())
    raise ConfigError(
        f"{path or cls.__name__}: type {type_name!r} is not {cls.__name__} or a subclass of it"
    )


def parse_value(text: str, tp: Any, name: str) -> Any:
    """Parse a command-line string into a value of field type ``tp``.

    Accepts JSON (``3``, ``0.5``, ``true``, ``[64, 64]``, ``null``, ``"relu"``) and, for string
    fields, the bare string. Comma-separated lists are accepted for tuple fields.

    Raises:
        ConfigError: the text cannot be read as ``tp``.
    """
    if isinstance(tp, type) and issubclass(tp, Config):
        raise ConfigError(f"{name}: is a nested config; set its fields as {name}.FIELD=VALUE")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
        if get_origin(tp) is tuple:
            parts = [p for p in text.split(",") if p.strip()]
            value = []
            for p in parts:
                try:
                    value.append(json.loads(p))
                except json.JSONDecodeError:
                    value.append(p.strip())
    if get_origin(tp) is tuple and value is not None and not isinstance(value, list):
        value = [value]  # "64" is the one-item list (64,)
    value = _from_plain(value, tp, name)
    options = get_args(tp) if get_origin(tp) in (types.UnionType, typing.Union) else (tp,)
    if str in options and not isinstance(value, str):
        if not (value is None and type(None) in options):
            value = text  # "3" for a str field (or str | None) is the string "3"
    return _check_type(value, tp, name)
