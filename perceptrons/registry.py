"""One registry class for everything constructible by name: models and studies.

Registering a name twice raises `ValueError` (timm only warns; we do not tolerate collisions).
Lookups of unknown names raise `KeyError` with a "did you mean" suggestion.

The registries fill themselves on first use: `MODELS` imports ``perceptrons.models`` and the
domain packages' models (``perceptrons.ctr.models``, ``perceptrons.ctr.emofm``), `STUDIES` imports
``perceptrons.studies.catalog`` (the modules that hold the ``register`` calls), so
``list_models()`` works right after ``import perceptrons.registry``.

Example::

    from perceptrons.registry import MODELS, create_model

    @MODELS.register("my_mlp", config=MyMLPConfig, paper="arXiv:0000.00000")
    class MyMLP(nn.Module):
        def __init__(self, config: MyMLPConfig, *, generator: torch.Generator | None = None): ...

    model = create_model("my_mlp", seed=0, hidden_features=(128,))
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from perceptrons.config import Config, ConfigError

__all__ = [
    "MODELS",
    "STUDIES",
    "Entry",
    "Registry",
    "create_model",
    "list_models",
    "list_studies",
    "model_name_of",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object.

    Attributes:
        name: Registry name (snake_case for models, kebab-case for studies).
        obj: The registered class or object.
        config: The `Config` subclass that configures it.
        defaults: Field values that this name presets (a preset of another entry's class).
        paper: Paper reference (title and arXiv id), or "" for library-only entries.
        summary: One line shown by ``perceptrons list``.
        modules: Modules that implement it (the registered object's own module first), shown
            by ``perceptrons info``.
        docs: Its documentation page, relative to the repository root ("" if none).
    """

    name: str
    obj: T
    config: type[Config]
    defaults: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    summary: str = ""
    modules: tuple[str, ...] = ()
    docs: str = ""

    def make_config(self, **overrides: Any) -> Config:
        """The entry's config with its preset defaults, then ``overrides``, applied."""
        return self.config(**{**self.defaults, **overrides})


class Registry(Generic[T]):
    """Name -> `Entry` mapping; duplicates raise.

    Args:
        kind: What is registered ("model", "study"), used in messages.
        discover: Module(s) imported on first lookup so that their registrations exist.
    """

    def __init__(self, kind: str, *, discover: str | tuple[str, ...] | None = None) -> None:
        self.kind = kind
        self._discover = (discover,) if isinstance(discover, str) else tuple(discover or ())
        self._discovered = not self._discover
        self._entries: dict[str, Entry[T]] = {}

    # --------------------------------------------------------------- registration
    def add(
        self,
        name: str,
        obj: T,
        *,
        config: type[Config],
        defaults: dict[str, Any] | None = None,
        paper: str = "",
        summary: str = "",
        modules: tuple[str, ...] = (),
        docs: str = "",
    ) -> Entry[T]:
        """Register ``obj`` under ``name``.

        ``modules`` lists the modules that implement it besides the object's own (a class's
        ``__module__`` is put first); ``docs`` is its documentation page.

        Raises:
            ValueError: ``name`` is already registered, or ``config`` is not a `Config`.
        """
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if not (isinstance(config, type) and issubclass(config, Config)):
            raise ValueError(f"{self.kind} {name!r}: config must be a Config subclass")
        if not summary:
            doc = getattr(obj, "__doc__", None) or ""
            summary = doc.strip().splitlines()[0] if doc.strip() else ""
        own = getattr(obj, "__module__", None) if isinstance(obj, type) else None
        found = tuple(dict.fromkeys(([own] if own else []) + list(modules)))
        entry = Entry(name, obj, config, dict(defaults or {}), paper, summary, found, docs)
        entry.make_config()  # presets must be valid configurations
        self._entries[name] = entry
        return entry

    def register(
        self,
        name: str,
        *,
        config: type[Config],
        defaults: dict[str, Any] | None = None,
        paper: str = "",
        summary: str = "",
        modules: tuple[str, ...] = (),
        docs: str = "",
    ) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def decorate(obj: T) -> T:
            self.add(
                name,
                obj,
                config=config,
                defaults=defaults,
                paper=paper,
                summary=summary,
                modules=modules,
                docs=docs,
            )
            return obj

        return decorate

    # --------------------------------------------------------------- lookup
    def _ensure_discovered(self) -> None:
        if not self._discovered:
            self._discovered = True  # set first: the imported modules register into self
            try:
                for module in self._discover:
                    importlib.import_module(module)
            except BaseException:
                self._discovered = False  # retry (and re-raise) next time, not an empty registry
                raise

    def get(self, name: str) -> Entry[T]:
        """The entry called ``name``.

        Raises:
            KeyError: unknown name; the message suggests the closest names.
        """
        self._ensure_discovered()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """One-line message for an unknown ``name`` with suggestions and the valid names."""
        self._ensure_discovered()
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return (
            f"unknown {self.kind} {name!r}{hint} "
            f"(valid: {', '.join(sorted(self._entries)) or 'none'})"
        )

    def names(self) -> list[str]:
        """Sorted registered names."""
        self._ensure_discovered()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        """Entries sorted by name."""
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._ensure_discovered()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure_discovered()
        return len(self._entries)


MODELS: Registry[Any] = Registry(
    "model", discover=("perceptrons.models", "perceptrons.ctr.models", "perceptrons.ctr.emofm")
)
STUDIES: Registry[Any] = Registry("study", discover="perceptrons.studies.catalog")


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return MODELS.names()


def list_studies() -> list[str]:
    """Names of all registered studies, sorted."""
    return STUDIES.names()


def model_name_of(config: Config) -> str:
    """The registry name whose model class is configured by ``type(config)``.

    When several names (presets) share a config class, the alphabetically first wins; they all
    build the same class, so the choice does not change the model.

    Raises:
        KeyError: no registered model uses this config class.
    """
    for entry in MODELS.entries():
        if type(config) is entry.config:
            return entry.name
    raise KeyError(f"no registered model is configured by {type(config).__name__}")


def create_model(
    name_or_config: str | Config,
    *,
    seed: int | None = None,
    generator: Any = None,
    **overrides: Any,
) -> Any:
    """Build a registered model.

    Args:
        name_or_config: Registry name (its preset defaults apply) or a config instance.
        seed: Seed of a fresh ``torch.Generator`` used for initialisation. ``None`` with no
            ``generator`` uses torch's global generator.
        generator: A ``torch.Generator`` to draw the initial weights from.
        **overrides: Config fields to change.

    Returns:
        The model, an ``nn.Module`` with a ``config`` attribute.

    Raises:
        KeyError: unknown name (with suggestions).
        ConfigError: an override names an unknown field or has a wrong value.
    """
    import torch  # local: registry must stay importable without initialising torch eagerly

    if isinstance(name_or_config, Config):
        entry = MODELS.get(model_name_of(name_or_config))
        config = name_or_config.replace(**overrides) if overrides else name_or_config
    else:
        entry = MODELS.get(name_or_config)
        valid = {f for f in entry.config.__dataclass_fields__}
        for key in overrides:
            if key not in valid:
                raise ConfigError(
                    f"{key}: unknown field of {entry.config.__name__}; valid fields: "
                    + ", ".join(sorted(valid))
                )
        config = entry.make_config(**overrides)
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    return entry.obj(config, generator=generator)
