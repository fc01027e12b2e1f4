"""The `mindbark` command: one-shot text-to-WAV and an interactive console (`mindbark --help`)."""

from .main import main

__all__ = ["main"]
