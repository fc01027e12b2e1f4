"""mindbark: Suno's Bark text-to-audio model in MindSpore."""

from .api import generate_audio, semantic_to_waveform, text_to_semantic
from .audio import write_wav
from .device import set_device
from .errors import ConversionError
from .models.bark import BarkModel
from .processor import BarkProcessor
from .voices import list_voices, load_voice, save_voice

__all__ = ["BarkModel", "BarkProcessor", "ConversionError", "generate_audio", "list_voices", "load_voice",
           "save_voice", "semantic_to_waveform", "set_device", "text_to_semantic", "write_wav"]
