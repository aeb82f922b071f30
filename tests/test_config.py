"""Tests of `perceptrons.config`: type checks, validation, JSON round-trips, docs, parsing."""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

import pytest

from perceptrons.config import Config, ConfigError, field_docs, field_types, parse_value, require


@dataclasses.dataclass(frozen=True, kw_only=True)
class Inner(Config):
    """A nested config.

    Attributes:
        steps: Number of steps.
        rate: Learning rate.
    """

    steps: int = 10
    rate: float = 0.1

    def validate(self) -> None:
        require(self.steps >= 1, "steps", "must be >= 1", self.steps)


@dataclasses.dataclass(frozen=True, kw_only=True)
class OtherInner(Config):
    """Another nested config.

    Attributes:
        flag: A flag.
    """

    flag: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outer(Config):
    """A config using every supported field type.

    Attributes:
        name: A string.
        widths: Hidden widths, a variable-length tuple
            continued on a second line.
        pair (tuple): A fixed-length tuple.
        scale: Optional float.
        act: One of a few names.
        verbose: A boolean.
        fit: A nested config.
        maybe: An optional nested config.
        inners: A tuple of nested configs.
    """

    name: str = "x"
    widths: tuple[int, ...] = (4, 8)
    pair: tuple[int, str] = (1, "a")
    scale: float | None = None
    act: Literal["relu", "tanh"] = "relu"
    verbose: bool = False
    fit: Inner = dataclasses.field(default_factory=Inner)
    maybe: Inner | None = None
    inners: tuple[Inner, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Child(Inner):
    """A subclass adding a field (inherits the docs of `Inner`).

    Attributes:
        extra: An extra field.
    """

    extra: int = 0


def full_outer() -> Outer:
    return Outer(
        name="run",
        widths=(1, 2, 3),
        pair=(5, "b"),
        scale=2.5,
        act="tanh",
        verbose=True,
        fit=Inner(steps=3, rate=0.5),
        maybe=Inner(steps=7),
        inners=(Inner(steps=1), Inner(steps=2, rate=1.0)),
    )


# --------------------------------------------------------------------------- round-trips
@pytest.mark.parametrize("config", [Outer(), full_outer(), Inner(), Child(extra=3)])
def test_json_round_trip(config: Config) -> None:
    text = config.to_json()
    assert type(config).from_json(text) == config
    assert type(config).from_json(config.to_json(indent=None)) == config


@pytest.mark.parametrize("config", [Outer(), full_outer()])
def test_dict_round_trip_through_plain_json(config: Outer) -> None:
    plain = json.loads(json.dumps(config.to_dict()))
    assert Outer.from_dict(plain) == config


def test_to_dict_is_plain_json_with_typed_nested_configs() -> None:
    data = full_outer().to_dict()
    assert data["widths"] == [1, 2, 3]
    assert data["pair"] == [5, "b"]
    assert data["fit"] == {"type": "Inner", "params": {"steps": 3, "rate": 0.5}}
    assert data["maybe"]["type"] == "Inner"
    assert data["inners"][1] == {"type": "Inner", "params": {"steps": 2, "rate": 1.0}}
    assert json.loads(full_outer().to_json())["type"] == "Outer"


def test_from_dict_accepts_lists_ints_and_plain_nested_dicts() -> None:
    config = Outer.from_dict({"widths": [1], "scale": 3, "fit": {"steps": 2}, "maybe": None})
    assert config.widths == (1,)
    assert config.scale == 3.0 and isinstance(config.scale, float)
    assert config.fit == Inner(steps=2)
    assert config.maybe is None


def test_constructor_coerces_lists_and_ints() -> None:
    config = Outer(widths=[1, 2], scale=2)  # type: ignore[arg-type]
    assert config.widths == (1, 2)
    assert isinstance(config.scale, float)
    assert hash(config) == hash(Outer(widths=(1, 2), scale=2.0))


def test_from_dict_with_subclass_type() -> None:
    data = {"type": "Child", "params": {"steps": 2, "extra": 5}}
    assert Inner.from_dict(data) == Child(steps=2, extra=5)


# --------------------------------------------------------------------------- error paths
@pytest.mark.parametrize(
    ("kwargs", "field", "needle"),
    [
        ({"name": 3}, "name", "expected str"),
        ({"widths": (1, "a")}, "widths[1]", "expected int"),
        ({"widths": 3}, "widths", "expected tuple of int"),
        ({"widths": (True,)}, "widths[0]", "expected int"),
        ({"pair": (1, "a", 2)}, "pair", "expected 2 items"),
        ({"pair": ("a", "a")}, "pair[0]", "expected int"),
        ({"scale": "big"}, "scale", "expected float or None"),
        ({"scale": float("nan")}, "scale", "nan"),
        ({"act": "gelu"}, "act", "one of 'relu', 'tanh'"),
        ({"verbose": 1}, "verbose", "expected bool"),
        ({"fit": {"steps": 2}}, "fit", "expected Inner"),
        ({"fit": None}, "fit", "expected Inner"),
        ({"maybe": OtherInner()}, "maybe", "expected Inner or None"),
        ({"inners": (Inner(), 3)}, "inners[1]", "expected Inner"),
    ],
)
def test_type_errors_name_the_field(kwargs: dict, field: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        Outer(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{field}:"), message
    assert needle in message
    assert isinstance(info.value, ValueError)


def test_int_field_rejects_bool_and_float() -> None:
    with pytest.raises(ConfigError, match=r"^steps: expected int, got True"):
        Inner(steps=True)
    with pytest.raises(ConfigError, match=r"^steps: expected int, got 2.0"):
        Inner(steps=2.0)  # type: ignore[arg-type]


def test_validate_errors_name_the_field_and_value() -> None:
    with pytest.raises(ConfigError, match=r"^steps: must be >= 1, got 0$"):
        Inner(steps=0)


def test_require_without_value() -> None:
    require(True, "x", "never raised")
    with pytest.raises(ConfigError, match=r"^x: must hold$"):
        require(False, "x", "must hold")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"bogus": 1}, r"^bogus: unknown field of Outer; valid fields: name, widths"),
        ({"fit": {"bogus": 1}}, r"^fit\.bogus: unknown field of Inner"),
        ({"fit": {"steps": 0}}, r"^fit\.steps: must be >= 1, got 0"),
        ({"fit": {"steps": "a"}}, r"^fit\.steps: expected int"),
        ({"maybe": {"steps": 0}}, r"^maybe\.steps: must be >= 1"),
        ({"inners": [{"steps": 0}]}, r"^inners\[0\]\.steps: must be >= 1"),
        ({"fit": {"type": "OtherInner", "params": {}}}, r"^fit: type 'OtherInner' is not Inner"),
        ({"fit": 3}, r"^fit: expected Inner"),
        ({"widths": "abc"}, r"^widths: expected tuple of int"),
    ],
)
def test_from_dict_errors_name_the_field(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Outer.from_dict(data)


def test_from_dict_rejects_non_mapping_and_wrong_type() -> None:
    with pytest.raises(ConfigError, match=r"^Outer: expected a mapping"):
        Outer.from_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"type 'Inner' is not Outer"):
        Outer.from_dict({"type": "Inner", "params": {}})


def test_from_json_invalid_json() -> None:
    with pytest.raises(ConfigError, match=r"^Outer: invalid JSON"):
        Outer.from_json("{not json")


def test_unsupported_field_type_raises_type_error() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Bad(Config):
        """Bad.

        Attributes:
            values: A list (unsupported: configs are immutable).
        """

        values: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="values: unsupported config field type"):
        Bad()


# --------------------------------------------------------------------------- frozen, replace
def test_frozen_and_keyword_only() -> None:
    config = Inner()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        Inner(3)  # type: ignore[misc]


def test_replace_validates_and_rejects_unknown_fields() -> None:
    config = Inner()
    assert config.replace(steps=5) == Inner(steps=5)
    assert config == Inner()  # unchanged
    with pytest.raises(ConfigError, match=r"^steps: must be >= 1"):
        config.replace(steps=0)
    with pytest.raises(ConfigError, match=r"^stepz: unknown field of Inner; valid fields: steps"):
        config.replace(stepz=1)


def test_replace_path() -> None:
    config = Outer()
    assert config.replace_path("name", "y").name == "y"
    changed = config.replace_path("fit.steps", 4)
    assert changed.fit == Inner(steps=4)
    assert changed.widths == config.widths
    assert config.fit == Inner()


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("nope", 1, r"^nope: unknown field of Outer"),
        ("name.x", 1, r"^name: is not a nested config"),
        ("fit.nope", 1, r"^fit\.nope: unknown field of Inner"),
        ("fit.steps", 0, r"^fit\.steps: must be >= 1"),
        ("fit.steps", "a", r"^fit\.steps: expected int"),
    ],
)
def test_replace_path_errors_name_the_dotted_field(path: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Outer().replace_path(path, value)


# --------------------------------------------------------------------------- field docs
def test_field_docs_parse_attributes_section() -> None:
    docs = field_docs(Outer)
    assert list(docs) == [f.name for f in dataclasses.fields(Outer)]
    assert docs["name"] == "A string."
    assert docs["widths"] == "Hidden widths, a variable-length tuple continued on a second line."
    assert docs["pair"] == "A fixed-length tuple."  # "(tuple)" type annotation is dropped


def test_field_docs_include_inherited_fields() -> None:
    docs = field_docs(Child)
    assert docs == {
        "steps": "Number of steps.",
        "rate": "Learning rate.",
        "extra": "An extra field.",
    }


def test_field_docs_stop_at_next_section() -> None:
    class Documented:
        """Summary.

        Attributes:
            a: First.
            b: Second,
                continued.

        Example:
            c: not a field.
        """

    assert field_docs(Documented) == {"a": "First.", "b": "Second, continued."}


def test_field_types_resolve_annotations() -> None:
    hints = field_types(Outer)
    assert hints["fit"] is Inner
    assert hints["widths"] == tuple[int, ...]


# --------------------------------------------------------------------------- parse_value
@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("3", "steps", 3),
        ("0.5", "rate", 0.5),
        ("2", "rate", 2.0),
        ("[1, 2]", "widths", (1, 2)),
        ("1,2,3", "widths", (1, 2, 3)),
        ("64", "widths", (64,)),
        ("[]", "widths", ()),
        ('[3, "c"]', "pair", (3, "c")),
        ("3,c", "pair", (3, "c")),
        ("null", "scale", None),
        ("1e-3", "scale", 1e-3),
        ("tanh", "act", "tanh"),
        ('"tanh"', "act", "tanh"),
        ("true", "verbose", True),
        ("hello world", "name", "hello world"),
        ("3", "name", "3"),
        ("null", "name", "null"),
    ],
)
def test_parse_value(text: str, field: str, expected: object) -> None:
    cls = Inner if field in ("steps", "rate") else Outer
    value = parse_value(text, field_types(cls)[field], field)
    assert value == expected
    assert type(value) is type(expected)


def test_parse_value_optional_str_keeps_text() -> None:
    assert parse_value("3", str | None, "label") == "3"
    assert parse_value("null", str | None, "label") is None


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        ("abc", "steps", r"^steps: expected int"),
        ("1.5", "steps", r"^steps: expected int"),
        ("gelu", "act", r"^act: expected one of"),
        ("yes", "verbose", r"^verbose: expected bool"),
        ("1,x", "widths", r"^widths\[1\]: expected int"),
        ("{}", "fit", r"^fit: is a nested config; set its fields as fit\.FIELD=VALUE"),
    ],
)
def test_parse_value_errors_name_the_field(text: str, field: str, needle: str) -> None:
    cls = Inner if field == "steps" else Outer
    with pytest.raises(ConfigError, match=needle):
        parse_value(text, field_types(cls)[field], field)
