class ConversionError(ValueError):
    """A checkpoint that cannot be converted: the message names the file or tensor at fault."""
