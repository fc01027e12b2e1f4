"""`mindbark serve`: the HTTP API (`mindbark.serve`, the `serve` extra) from the command line."""

import argparse
import logging
from pathlib import Path

from ..weight_formats import FORMATS
from .args import DEVICES, DTYPES, ArgumentError, _choice, _non_negative, _positive, _positive_int

EPILOG = """examples:
  mindbark serve                                       # bark-small on http://127.0.0.1:8000
  mindbark serve --model tiny-random --port 8001       # offline smoke test, random weights
  MINDBARK_API_KEY=secret mindbark serve --host 0.0.0.0 --voices-dir ./voices
  curl -s 127.0.0.1:8000/v1/audio/speech -H 'Content-Type: application/json' \\
       -d '{"model": "bark-small", "input": "Hello [laughs]", "voice": "v2/en_speaker_6",
            "response_format": "wav"}' -o hello.wav

The API key comes from --api-key-file, else from $MINDBARK_API_KEY; without either, no key is asked for."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ArgumentError(f"{message} (see mindbark serve --help)")


def build_parser() -> argparse.ArgumentParser:
    # options left out are absent, so that ServeConfig's defaults apply (the help repeats them for the reader)
    p = _Parser(prog="mindbark serve", description="Serve Bark over HTTP: OpenAI's speech API, batched.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                argument_default=argparse.SUPPRESS)
    p.add_argument("--model", metavar="NAME|DIR",
                   help="bark-small (default), bark, tiny-random or a directory")
    p.add_argument("--device", type=_choice(DEVICES), metavar="{cpu,gpu,ascend}", help="where to run")
    p.add_argument("--dtype", type=_choice(DTYPES), metavar="{float32,float16,bfloat16}")
    p.add_argument("--weights", type=_choice(FORMATS), metavar="{fp32,bf16,int8}",
                   help="how the GPTs' weights are held on CPU (default fp32; bf16 and int8 decode faster)")
    p.add_argument("--no-offload", dest="offload", action="store_false",
                   help="keep all four sub-models' weights in memory")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_positive_int, help="default 8000")
    p.add_argument("--batch-size", type=_positive_int, metavar="N",
                   help="chunks generated together across requests (default 8)")
    p.add_argument("--batch-wait", type=_non_negative, metavar="SECONDS",
                   help="wait this long for more chunks before an idle model starts a batch (default 0.1)")
    p.add_argument("--max-queue", type=_positive_int, metavar="N",
                   help="requests waiting or running at once; more get 429 (default 64)")
    p.add_argument("--max-input-chars", type=_positive_int, metavar="N",
                   help="longest input accepted (default 4096, as OpenAI's)")
    p.add_argument("--max-duration", type=_positive, metavar="SECONDS",
                   help="the most audio per chunk a request may ask for (default: Bark's ~15 s)")
    p.add_argument("--request-timeout", type=_positive, metavar="SECONDS",
                   help="a request's time limit (default 600)")
    p.add_argument("--shutdown-timeout", type=_non_negative, metavar="SECONDS",
                   help="at shutdown, requests in flight get this long to finish (default 30)")
    p.add_argument("--chunk-chars", type=_positive_int, metavar="N",
                   help="long inputs are cut into chunks of at most N characters (default 200)")
    p.add_argument("--silence", type=_non_negative, metavar="SECONDS",
                   help="silence between chunks (default 0.25)")
    p.add_argument("--voices-dir", metavar="DIR", help="NAME.npz voices the clients may ask for by NAME")
    p.add_argument("--api-key-file", metavar="PATH", help="a file whose first line is the API key")
    p.add_argument("--log-level", type=_choice(("debug", "info", "warning", "error")))
    return p


def main(argv: list[str]) -> int:
    """Run `mindbark serve ARGV` until interrupted; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        from .. import serve
    except ImportError as e:
        raise ValueError(f'mindbark serve needs the serve extra ({e.name} is missing): pip install -e ".[serve]"') \
            from None
    settings = vars(args)
    log_level = settings.pop("log_level", "info")
    if "voices_dir" in settings:
        settings["voices_dir"] = Path(settings["voices_dir"])
    api_key = serve.read_api_key(settings.pop("api_key_file", None))
    config = serve.ServeConfig(**settings, api_key=api_key)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    return serve.run(config, log_level)
