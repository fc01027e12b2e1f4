"""Pages handed back to the OS read as zeros again; nothing outside them changes."""

import sys

import numpy as np
import pytest

from mindbark.memory import trim_heap, zero_pages


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


def test_trim_heap_is_safe():
    trim_heap()
