"""Memory and the OS: pages read as zeros again, freed heap leaves the resident set, nothing outside them changes;
a block for 2 MiB pages hands out disjoint arrays."""

import ctypes
import ctypes.util
import os
import platform
import sys

import numpy as np
import pytest

from mindbark.memory import LARGE_PAGE, LargePages, trim_heap, zero_pages


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_DONTNEED zeroes pages on Linux only")
def test_zero_pages_clears_whole_pages_only():
    buf = np.ones(5 * 4096 // 4 + 7, np.float32)  # starts page-aligned or not, ends mid-page
    view = buf[3:]  # an unaligned start: its first partial page must keep its values
    zero_pages(view)
    begin = -(-view.ctypes.data // 4096) * 4096 - view.ctypes.data
    end = (view.ctypes.data + view.nbytes) // 4096 * 4096 - view.ctypes.data
    begin, end = begin // 4, end // 4  # bytes -> float32 items
    assert begin < end and not view[begin:end].any()
    assert (view[:begin] == 1).all() and (view[end:] == 1).all()
    view[:] = 2  # the cleared pages take writes again
    assert (view == 2).all() and (buf[:3] == 1).all()


def _resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_heap_hands_freed_heap_back_and_keeps_live_blocks():
    libc = ctypes.CDLL(ctypes.util.find_library("c"))  # a handle of our own: its prototypes stay ours
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 * 1024  # below glibc's mmap threshold: these come from the heap, not maps of their own
    blocks = [libc.malloc(size) for _ in range(1024)]
    for block in blocks:
        ctypes.memset(block, 1, size)  # resident
    # freeing every other block leaves 32 MiB of free heap between live blocks, where free() cannot trim it
    for block in blocks[::2]:
        libc.free(block)
    before = _resident_bytes()
    trim_heap()
    released = before - _resident_bytes()
    live_intact = all(ctypes.string_at(block, size) == b"\x01" * size for block in blocks[1::2])
    for block in blocks[1::2]:
        libc.free(block)
    assert live_intact
    assert released > 16 * 2**20, f"only {released / 2**20:.1f} MiB of 32 handed back"


def test_large_pages_hand_out_disjoint_aligned_arrays():
    wanted = [((3, 5), np.float32), ((1000,), np.uint8), ((7,), np.float64), ((2, 2), np.uint16)]
    block = LargePages(LargePages.size(wanted))
    arrays = [block.array(shape, dtype) for shape, dtype in wanted]
    assert arrays[0].ctypes.data % LARGE_PAGE == 0
    for i, (array, (shape, dtype)) in enumerate(zip(arrays, wanted)):
        assert array.shape == shape and array.dtype == dtype and array.flags.c_contiguous
        assert array.ctypes.data % 64 == 0
        array[...] = i + 1
    for i, array in enumerate(arrays):
        assert (array == i + 1).all()  # no array wrote over another
    with pytest.raises(ValueError, match="do not fit"):
        block.array((1,), np.uint8)
