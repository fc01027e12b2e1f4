"""`mindbark serve`: Bark behind an HTTP API (OpenAI's speech request), batching concurrent requests.

Needs the `serve` extra (`pip install -e ".[serve]"`). The library never imports this package; only the CLI does.
"""

from .app import SpeechRequest, create_app, run, server
from .config import ServeConfig, read_api_key

__all__ = ["ServeConfig", "SpeechRequest", "create_app", "read_api_key", "run", "server"]
