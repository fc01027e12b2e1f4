"""Memory and the OS: handing back whole pages of anonymous arrays and glibc's freed heap, and asking for 2 MiB
pages where weights are streamed."""

import ctypes
import ctypes.util
import mmap
import sys

import numpy as np

_MADV_DONTNEED = 4  # Linux's values; Python's mmap module offers madvise only on its own maps
_MADV_HUGEPAGE = 14
_PAGE = 4096
LARGE_PAGE = 2 << 20
_ALIGN = 64  # a cache line: where each of `LargePages`' arrays starts


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
    _madvise(array, _MADV_DONTNEED, inward=True)


def _madvise(array: np.ndarray, advice: int, inward: bool):
    """madvise over the pages of `array`'s memory: the whole pages inside it (`inward`) or every page it touches."""
    if _LIBC is None or not sys.platform.startswith("linux"):
        return
    first, last = array.ctypes.data, array.ctypes.data + array.nbytes
    begin = -(-first // _PAGE) * _PAGE if inward else first // _PAGE * _PAGE
    end = last // _PAGE * _PAGE if inward else -(-last // _PAGE) * _PAGE
    if end > begin:
        _LIBC.madvise(ctypes.c_void_p(begin), ctypes.c_size_t(end - begin), advice)


def advise_large_pages(array: np.ndarray):
    """Ask Linux to map `array`'s pages (a file's, memory-mapped) 2 MiB at a time wherever the page cache holds them
    in 2 MiB folios, as it does for files read under this advice on file systems with large folios (ext4 and XFS
    on recent kernels). A hint: it changes no value and fails silently."""
    _madvise(array, _MADV_HUGEPAGE, inward=False)


class LargePages:
    """One block of fresh memory, `nbytes` long, that Linux is asked to back with 2 MiB pages (transparent huge
    pages, unless they are off), handed out as arrays.

    A decode step reads every projection weight once per token. Over 4 KiB pages the CPU also walks a page table
    entry every 4 KiB it streams, and in a virtual machine that walk goes through two tables. Elsewhere the block
    is ordinary memory.
    """

    def __init__(self, nbytes: int):
        size = nbytes + LARGE_PAGE
        if hasattr(mmap, "MADV_HUGEPAGE"):
            # a map of its own, advised before any page of it is touched: pages faulted in later come 2 MiB at a time
            region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            region.madvise(mmap.MADV_HUGEPAGE)
            block = np.frombuffer(region, np.uint8)
        else:
            block = np.empty(size, np.uint8)
        start = -block.ctypes.data % LARGE_PAGE
        self._block = block[start:start + nbytes]
        self._used = 0

    def array(self, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of `shape` and `dtype`, at the next cache-line boundary."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        begin = -(-self._used // _ALIGN) * _ALIGN
        if begin + nbytes > len(self._block):
            raise ValueError(f"{nbytes} bytes do not fit in the {len(self._block) - begin} left")
        self._used = begin + nbytes
        return self._block[begin:begin + nbytes].view(dtype).reshape(shape)

    @staticmethod
    def size(shapes_and_dtypes) -> int:
        """The `nbytes` a block needs for arrays of these (shape, dtype)s."""
        return sum(-(-int(np.prod(shape)) * np.dtype(dtype).itemsize // _ALIGN) * _ALIGN
                   for shape, dtype in shapes_and_dtypes)
