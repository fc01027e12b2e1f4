"""mindbark's CPU kernels (GELU, LayerNorm, the codec's LSTM) against torch, inside static and dynamic-shape
graphs, and their fallbacks when the library cannot be had."""

import fnmatch
import logging
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import Tensor, ops

from mindbark import kernels
from mindbark.layers import GELU, LayerNorm
from mindbark.models.codec import LSTM, PaddedConv1d


@pytest.fixture
def fresh_library(monkeypatch, tmp_path):
    """A process-wide library cache emptied before and after, and a home of its own to build in."""
    monkeypatch.setenv("MINDBARK_HOME", str(tmp_path))
    kernels.library.cache_clear()
    yield tmp_path
    kernels.library.cache_clear()


def _run(cell, *arrays):
    fn = ms.jit(cell.construct, capture_mode="ast")
    return fn(*(Tensor(a) for a in arrays)).asnumpy()


def test_gelu_matches_torch():
    ms.set_device("CPU")
    cell = GELU()
    assert cell.kernel is not None, "the kernel library did not build here"
    x = np.concatenate([np.linspace(-12, 12, 200_001), np.random.default_rng(0).standard_normal(50_000) * 3])
    x = x.astype(np.float32).reshape(1, -1, 1)
    ours = _run(cell, x)
    ref = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6)


def test_layer_norm_matches_torch():
    ms.set_device("CPU")
    rng = np.random.default_rng(1)
    ln = LayerNorm(768)
    assert ln.kernel is not None
    w, b = rng.standard_normal(768).astype(np.float32), rng.standard_normal(768).astype(np.float32)
    ln.weight.set_data(Tensor(w))
    ln.bias.set_data(Tensor(b))
    # rows far from zero mean; 274 rows: several of the kernel's pieces (85 rows of 768), the last one partial
    x = (rng.standard_normal((2, 137, 768)) * 4 + 3).astype(np.float32)
    ref = torch.nn.functional.layer_norm(torch.from_numpy(x), (768,), torch.from_numpy(w), torch.from_numpy(b))
    np.testing.assert_allclose(_run(ln, x), ref.numpy(), rtol=0, atol=2e-5)


@pytest.mark.parametrize("in_ch, out_ch, k, dilation, batch, t", [
    (6, 4, 3, 2, 2, 9),    # dilated, batched
    (32, 1, 7, 1, 1, 20),  # the decoder's last conv
    (5, 3, 3, 1, 1, 1),    # a chunk shorter than the padding: MindSpore's ops instead
])
@pytest.mark.parametrize("kernel", [True, False])  # False: MindSpore's ops, as on GPU or Ascend
def test_causal_conv_sums_its_taps_as_torch(fresh_library, monkeypatch, kernel, in_ch, out_ch, k, dilation, batch,
                                            t):
    ms.set_device("CPU")
    if not kernel:
        monkeypatch.setenv(kernels.ENV, "off")
    conv = PaddedConv1d(SimpleNamespace(pad_mode="constant"), in_ch, out_ch, k, dilation)
    assert (conv.sum_taps is not None) == kernel
    rng = np.random.default_rng(k + t)
    # weights scaled as a conv's init, so outputs are O(1) and 1e-5 is fp32's rounding, not a loose bound
    weight = rng.standard_normal((out_ch, in_ch, k), np.float32) / np.float32(np.sqrt(in_ch * k))
    bias = rng.standard_normal(out_ch, np.float32)
    conv.conv.weight.set_data(Tensor(conv.conv.checkpoint_layout["weight"][1](weight)))
    conv.conv.bias.set_data(Tensor(bias))
    x, context = (rng.standard_normal((batch, n, in_ch), np.float32) for n in (t, conv.pad))
    full = np.concatenate([context, x], axis=1)
    ref = torch.nn.functional.conv1d(torch.from_numpy(full).transpose(1, 2), torch.from_numpy(weight),
                                     torch.from_numpy(bias), dilation=dilation).transpose(1, 2).numpy()
    fn = ms.jit(conv.construct, capture_mode="ast")
    y, new_context = fn(Tensor(x), Tensor(context), Tensor(False))
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(new_context.asnumpy(), full[:, -conv.pad:])


def test_kernel_in_a_dynamic_shape_graph():
    ms.set_device("CPU")
    gelu = kernels.custom_op("Gelu", 1)

    def f(x, past):
        return gelu(ops.concat([past, x], 0))

    graph = ms.enable_dynamic(past=Tensor(shape=[None, 8], dtype=ms.float32))(ms.jit(f, capture_mode="ast"))
    x = np.ones((2, 8), np.float32)
    for n in (3, 5):
        out = graph(Tensor(x), Tensor(np.full((n, 8), -1.0, np.float32))).asnumpy()
        expected = torch.nn.functional.gelu(torch.from_numpy(np.concatenate([np.full((n, 8), -1.0), x]))).numpy()
        np.testing.assert_allclose(out, expected, atol=1e-6)


def _lstm_pair(dim: int, layers: int, seed: int):
    """A torch LSTM with random weights and mindbark's codec LSTM holding the same."""
    torch.manual_seed(seed)
    ref = torch.nn.LSTM(dim, dim, layers, batch_first=True).eval()
    ours = LSTM(dim, layers)
    params = dict(ours.parameters_and_names())
    for name, value in ref.named_parameters():
        params[f"lstm.{name}"].set_data(Tensor(value.detach().numpy()))
    return ref, ours


def _lstm_chunks(ours, x, state):
    """mindbark's residual LSTM over x (B, T, C) in two chunks, the state carried between them."""
    fn = ms.jit(ours.construct, capture_mode="ast")
    outs = []
    for part in np.array_split(x, 2, axis=1):
        y, state = fn(Tensor(part), Tensor(state))
        outs.append(y.asnumpy())
        state = state.asnumpy()
    return np.concatenate(outs, axis=1), state


@pytest.mark.parametrize("batch,dim,steps", [(1, 512, 24), (2, 37, 9)])  # EnCodec's size; odd, split unevenly
def test_lstm_matches_torch_across_chunks(batch, dim, steps):
    ms.set_device("CPU")
    ref, ours = _lstm_pair(dim, 2, seed=dim)
    assert ours.recurrence is not None
    rng = np.random.default_rng(dim)
    x = rng.standard_normal((batch, steps, dim)).astype(np.float32)
    state = (rng.standard_normal((2, 2, batch, dim)) * 0.5).astype(np.float32)  # (h and c, layer, B, C)
    with torch.no_grad():
        y, (h, c) = ref(torch.from_numpy(x), (torch.from_numpy(state[0]), torch.from_numpy(state[1])))
    out, new_state = _lstm_chunks(ours, x, state)
    np.testing.assert_allclose(out, y.numpy() + x, rtol=0, atol=1e-5)
    np.testing.assert_allclose(new_state, np.stack([h.numpy(), c.numpy()]), rtol=0, atol=1e-5)


_CALL_LSTM_KERNEL = """
import ctypes, sys
import numpy as np
lib, data = sys.argv[1], sys.argv[2]
xp, w, h0, c0 = (np.ascontiguousarray(a, np.float32) for a in np.load(data + "/in.npz").values())
b, t, four_h = xp.shape
out = np.empty((2, b, t, four_h // 4), np.float32)
arrays = [xp, w, h0, c0, out]
params = (ctypes.c_void_p * 5)(*(a.ctypes.data for a in arrays))
dims = (ctypes.c_int * 5)(*(a.ndim for a in arrays))
shapes = [(ctypes.c_int64 * a.ndim)(*a.shape) for a in arrays]
shape_ptrs = (ctypes.POINTER(ctypes.c_int64) * 5)(*(ctypes.cast(s, ctypes.POINTER(ctypes.c_int64)) for s in shapes))
assert ctypes.CDLL(lib).LstmLayer(5, params, dims, shape_ptrs, None, None, None) == 0
assert "mindspore" not in sys.modules
np.save(data + "/out.npy", out)
"""


def test_lstm_kernel_without_mindspores_pool_runs_on_a_thread_of_its_own(tmp_path):
    # a process without MindSpore has no thread pool to find: the path a MindSpore build without it takes
    torch.manual_seed(5)
    batch, steps, dim = 2, 7, 37
    ref = torch.nn.LSTM(dim, dim, 1, batch_first=True).eval()
    w_ih, w_hh, b_ih, b_hh = (p.detach().numpy() for p in ref.parameters())
    rng = np.random.default_rng(5)
    x = rng.standard_normal((batch, steps, dim)).astype(np.float32)
    h0, c0 = (rng.standard_normal((batch, dim)).astype(np.float32) for _ in range(2))
    np.savez(tmp_path / "in.npz", xp=x @ w_ih.T + b_ih + b_hh, w=w_hh, h0=h0, c0=c0)
    subprocess.run([sys.executable, "-c", _CALL_LSTM_KERNEL, str(kernels.library()), str(tmp_path)], check=True)
    with torch.no_grad():
        y, (h, c) = ref(torch.from_numpy(x), (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None]))
    got = np.load(tmp_path / "out.npy")  # h and c after every step
    np.testing.assert_allclose(got[0], y.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[1][:, -1], c.numpy()[0], rtol=0, atol=1e-5)


def test_lstm_fallback_matches_the_kernel(fresh_library, monkeypatch):
    ms.set_device("CPU")
    _, ours = _lstm_pair(48, 2, seed=3)
    monkeypatch.setenv(kernels.ENV, "off")
    kernels.library.cache_clear()
    _, fallback = _lstm_pair(48, 2, seed=3)
    assert ours.recurrence is not None and fallback.recurrence is None
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 10, 48)).astype(np.float32)
    state = np.zeros((2, 2, 1, 48), np.float32)
    for got, want in zip(_lstm_chunks(ours, x, state), _lstm_chunks(fallback, x, state)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_switched_off(fresh_library, monkeypatch):
    monkeypatch.setenv(kernels.ENV, "off")
    assert kernels.custom_op("Gelu", 1) is None
    assert kernels.state() == "off"
    assert GELU().kernel is None


@pytest.mark.parametrize("cxx", ["no-such-compiler-anywhere", "false"])
def test_no_working_compiler_falls_back_with_one_warning(fresh_library, monkeypatch, caplog, cxx):
    monkeypatch.setenv("CXX", cxx)
    with caplog.at_level(logging.WARNING, logger="mindbark.kernels"):
        assert kernels.custom_op("LayerNorm", 3) is None
        assert kernels.custom_op("Gelu", 1) is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "mindbark.kernels"]
    assert len(warnings) == 1 and "GELU, LayerNorm and LSTM" in warnings[0]
    assert list(fresh_library.rglob("*.so*")) == []  # a failed build leaves nothing behind
    # the fallback computes the same function
    x = np.linspace(-5, 5, 1001, dtype=np.float32)
    np.testing.assert_allclose(_run(GELU(), x), torch.nn.functional.gelu(torch.from_numpy(x)).numpy(), atol=2e-6)


def test_library_is_built_once_and_reused(fresh_library):
    first = kernels.library()
    assert first is not None and first.parent == fresh_library / "kernels"
    stamp = first.stat().st_mtime_ns
    kernels.library.cache_clear()
    assert kernels.library() == first and first.stat().st_mtime_ns == stamp


def test_damaged_library_is_built_again(fresh_library):
    # in processes of their own: a process's loader keeps a library it loaded once, whatever the file holds later
    def library_in_a_new_process() -> str:
        code = "from mindbark import kernels; print(kernels.library())"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return done.stdout.strip().splitlines()[-1]

    path = Path(library_in_a_new_process())
    assert path.parent == fresh_library / "kernels"
    path.write_bytes(b"not a shared library")  # damaged on disk after it was written
    assert library_in_a_new_process() == str(path)
    assert path.read_bytes()[:4] == b"\x7fELF" and list(path.parent.iterdir()) == [path]


def test_the_package_ships_every_kernel_source_and_header():
    """An installed (not editable) mindbark builds its library from the package's own files."""
    setup = (Path(kernels.__file__).parents[2] / "setup.py").read_text()
    shipped = re.findall(r'"(kernels/[^"]+)"', setup)
    for path in kernels.SOURCES + kernels.HEADERS:
        assert any(fnmatch.fnmatch(f"kernels/{path.name}", glob) for glob in shipped), path.name
