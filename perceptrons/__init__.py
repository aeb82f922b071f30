"""perceptrons: ten recent papers about multilayer perceptrons as tested, fast PyTorch software."""

__version__ = "0.1.0"
