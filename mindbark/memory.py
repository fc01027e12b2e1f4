"""Handing memory back to the OS: whole pages of anonymous arrays, and glibc's freed heap."""

import ctypes
import ctypes.util
import sys

import numpy as np

_MADV_DONTNEED = 4  # Linux's value; Python's mmap module offers madvise only on its own maps
_PAGE = 4096


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # no C library to call (Windows): nothing is handed back
        return None


_LIBC = _libc()


def trim_heap():
    """Return the heap glibc keeps after frees (a finished stage's temporaries) to the OS; glibc only."""
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


def zero_pages(array: np.ndarray):
    """Make the whole pages inside `array`'s anonymous, private memory read as zeros again, with nothing behind
    them: until written, every read of them hits the kernel's one shared zero page instead of DRAM.

    Linux only (MADV_DONTNEED keeps the contents elsewhere), and harmless where it does nothing: callers rely only
    on reads getting cheaper, never on the zeros. The partial pages at either end keep their contents.
    """
    if _LIBC is None or not sys.platform.startswith("linux"):
        return
    begin = -(-array.ctypes.data // _PAGE) * _PAGE
    end = (array.ctypes.data + array.nbytes) // _PAGE * _PAGE
    if end > begin:
        _LIBC.madvise(ctypes.c_void_p(begin), ctypes.c_size_t(end - begin), _MADV_DONTNEED)
