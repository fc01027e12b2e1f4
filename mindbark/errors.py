def one_line(e: BaseException) -> str:
    """An exception's message on one line (MindSpore's carry a native backtrace below the first)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


class ConversionError(ValueError):
    """A checkpoint that cannot be converted: the message names the file or tensor at fault."""
