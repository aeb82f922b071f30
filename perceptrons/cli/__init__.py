"""The ``perceptrons`` command-line tool (see `perceptrons.cli.main`)."""

from perceptrons.cli.main import main

__all__ = ["main"]
