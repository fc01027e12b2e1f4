"""CPU kernels as MindSpore custom ops, from a library compiled on first use: exact GELU and LayerNorm
(`cpu_ops.cc`), the codec's LSTM recurrence (`lstm.cc`), the tap sums of its causal convolutions (`conv.cc`), the
GPTs' projections of a few rows over fp32, bf16 or int8 weights (`gemv.cc`), a whole decode step of a GPT
(`decode_step.cc`) and the attention of many query rows (`attention.cc`, over oneDNN's sgemm, which MindSpore's CPU
backend ships), all `ops.Custom(func_type="aot")` functions, each splitting its work over MindSpore's thread pool
(`pool.cc`).

MindSpore 2.10's CPU kernels for these are several times slower than torch's on Bark's shapes (README,
Performance): GELU goes through `ops.erf` (scalar libm erf, value-dependent), `nn.LSTM` takes twice torch's time,
and the convolutions' copied input windows cost more than their matmuls at EnCodec's last stages.

The library is built with the system C++ compiler (`$CXX`, else `c++`) and `-march=native` into mindbark's cache
home, named by a digest of the sources, the compiler and the CPU, so a new machine or a new source builds its own;
a library the dynamic loader refuses (damaged on disk) is built again.
Without a compiler, on GPU or Ascend, or with `MINDBARK_CPU_KERNELS=off`, layers use MindSpore's ops instead.
"""

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import mindspore as ms
from mindspore import ops
from mindspore.ops import CustomRegOp, DataType

from ..files import replacing
from ..paths import kernels_dir

log = logging.getLogger(__name__)

ENV = "MINDBARK_CPU_KERNELS"
SOURCES = sorted(Path(__file__).parent.glob("*.cc"))
HEADERS = sorted(Path(__file__).parent.glob("*.h"))
# -fopenmp-simd: the sources' `omp simd` hints without OpenMP's runtime, whose idle threads would spin
FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-pthread", "-shared", "-fPIC"]


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return os.uname().machine


def _compiler() -> str | None:
    name = os.environ.get("CXX") or "c++"
    return shutil.which(name)


def _loads(path: Path) -> bool:
    """Whether the dynamic loader takes the library: one it refuses would otherwise fail at a graph's first call."""
    try:
        ctypes.CDLL(str(path))
    except OSError:
        return False
    return True


@lru_cache(maxsize=1)
def library() -> Path | None:
    """The compiled kernel library, built on the first call of a process that lacks it; None if unavailable."""
    if os.environ.get(ENV, "").strip().lower() in {"0", "off", "false", "no"}:
        return None
    cxx = _compiler()
    if cxx is None:
        log.warning("mindbark: no C++ compiler (set CXX); MindSpore's slower GELU, LayerNorm and LSTM (and codec "
                    "conv tap sums) are used on CPU")
        return None
    try:
        path = library_path(cxx)
        if not _loads(path):  # missing, or damaged on disk since it was written: build it (again)
            path.parent.mkdir(parents=True, exist_ok=True)
            with replacing(path) as tmp:
                done = subprocess.run([cxx, *FLAGS, *map(str, SOURCES), "-o", str(tmp)], capture_output=True,
                                      text=True, timeout=300)
                if done.returncode:
                    raise RuntimeError((done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0])
            if not _loads(path):
                raise RuntimeError(f"{path} was built but does not load")
        return path
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        log.warning("mindbark: could not build the CPU kernels (%s); MindSpore's slower GELU, LayerNorm and LSTM "
                    "(and codec conv tap sums) are used", e)
        return None


def library_path(cxx: str) -> Path:
    """Where the library built by compiler `cxx` from the current sources for this CPU is kept."""
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    sources = [s.read_text() for s in SOURCES + HEADERS]
    key = hashlib.sha256("\0".join([*sources, cxx, version, *FLAGS, _cpu_flags()]).encode())
    return kernels_dir() / f"cpu_ops-{key.hexdigest()[:16]}.so"


def current_library() -> Path | None:
    """The library this process would use (built or not yet), or None where no compiler is found."""
    cxx = _compiler()
    try:
        return None if cxx is None else library_path(cxx)
    except (OSError, subprocess.SubprocessError):
        return None


_disabled = [0]


@contextmanager
def disabled():
    """Layers built inside use MindSpore's ops, as on GPU and Ascend: the device engine runs that path on CPU too."""
    _disabled[0] += 1
    try:
        yield
    finally:
        _disabled[0] -= 1


def _library_here() -> Path | None:
    """The library, where graphs built now would use it: on MindSpore's CPU backend only."""
    return library() if ms.get_context("device_target") == "CPU" and not _disabled[0] else None


@lru_cache(maxsize=1)
def _sgemm() -> bool:
    """Whether MindSpore ships oneDNN's sgemm, which `attention.cc` calls (its CPU backend loads the library)."""
    try:
        return hasattr(ctypes.CDLL(str(Path(ms.__file__).parent / "lib" / "libdnnl.so.3")),
                       "dnnl_threadpool_interop_sgemm")
    except OSError:
        return False


def custom_op(name: str, inputs: int, formats: list[tuple] | None = None, sgemm: bool = False):
    """The library's function `name` of `inputs` inputs and one output as a MindSpore op, or None where the
    kernels do not apply (another backend, no library; with `sgemm`, a MindSpore without oneDNN's sgemm). The
    library infers the output's shape.

    `formats`: the accepted dtypes, one (input dtypes..., output dtype) tuple of `DataType`s each; all fp32 if
    not given."""
    lib = _library_here()
    if lib is None or (sgemm and not _sgemm()):
        return None
    # registered under its input count too: MindSpore keeps one registration per name, and a second one of other
    # inputs (the decode step's kernel at another layer count) failed kernel selection
    reg = CustomRegOp(f"{name}_{inputs}")
    for i in range(inputs):
        reg = reg.input(i, f"x{i}")
    reg = reg.output(0, "y")
    for fmt in formats or [(DataType.F32_Default,) * (inputs + 1)]:
        reg = reg.dtype_format(*fmt)
    # no out_shape/out_dtype: the library's own inference functions, which dynamic shapes and MindIR loads need
    return ops.Custom(f"{lib}:{name}", out_shape=None, out_dtype=None, func_type="aot",
                      reg_info=reg.target("CPU").get_op_info())


def state() -> str:
    """What graphs built now use, for the keys of saved graphs: the library's name, or "off"."""
    lib = _library_here()
    return lib.name if lib is not None else "off"
