"""mindbark: Suno's Bark text-to-audio model in MindSpore."""

from .device import set_device
from .errors import ConversionError
from .models.bark import BarkModel

__all__ = ["BarkModel", "ConversionError", "set_device"]
