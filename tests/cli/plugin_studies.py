"""A --plugin module for the CLI tests: one study that raises and one that passes."""

from dataclasses import dataclass
from pathlib import Path

from perceptrons.studies import StudyConfig, StudyResult, register_study


@dataclass(frozen=True, kw_only=True)
class PluginConfig(StudyConfig):
    """Config of the plugin studies.

    Attributes:
        level: A number the passing study reports.
    """

    level: int = 3


@register_study(
    "zz-plugin-broken",
    config=PluginConfig,
    presets={"quick": PluginConfig(), "full": PluginConfig()},
    paper="test plugin",
)
def broken(config: PluginConfig, out_dir: Path) -> StudyResult:
    """A study that always raises."""
    raise ZeroDivisionError("deliberate failure for the CLI test")


@register_study(
    "zz-plugin-ok",
    config=PluginConfig,
    presets={"quick": PluginConfig(), "full": PluginConfig(level=5)},
    paper="test plugin",
)
def ok(config: PluginConfig, out_dir: Path) -> StudyResult:
    """A study that passes."""
    result = StudyResult()
    result.claim("level_positive", "level is positive", config.level, 0, ">")
    return result
