"""mindbark: Suno's Bark text-to-audio model in MindSpore."""

from .api import generate_audio, semantic_to_waveform, text_to_semantic
from .audio import write_wav
from .device import set_device
from .errors import ConversionError
from .longform import LongFormOptions, generate_long, stream
from .models.bark import BarkModel
from .processor import BarkProcessor
from .voice_clone import voice_from_audio
from .voices import list_voices, load_voice, save_voice

__all__ = ["BarkModel", "BarkProcessor", "ConversionError", "LongFormOptions", "generate_audio", "generate_long",
           "list_voices", "load_voice", "save_voice", "semantic_to_waveform", "set_device", "stream",
           "text_to_semantic", "voice_from_audio", "write_wav"]
