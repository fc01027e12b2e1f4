"""mindbark: Suno's Bark text-to-audio model in MindSpore.

The public names load on first use: `import mindbark` (and the `mindbark` command's start-up, `--help` and argument
errors) does not import MindSpore, which takes seconds and prints its own start-up warnings.
"""

from importlib import import_module

_EXPORTS = {
    "BarkModel": "bark", "BarkProcessor": "processor", "ConversionError": "errors", "LongFormOptions": "longform",
    "generate_audio": "api", "generate_long": "longform", "list_voices": "voices", "load_voice": "voices",
    "save_voice": "voices", "semantic_to_waveform": "api", "set_device": "device", "stream": "longform",
    "text_to_semantic": "api", "voice_from_audio": "voice_clone", "write_wav": "audio",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mindbark' has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted([*globals(), *__all__])
