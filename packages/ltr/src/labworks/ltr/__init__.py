"""labworks.ltr: learning to rank in PyTorch."""

from labworks.ltr.__about__ import __version__

__all__ = ["__version__"]
