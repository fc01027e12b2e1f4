"""One place that picks the MindSpore backend: CPU, GPU or Ascend."""

import os

import mindspore as ms

_ALIASES = {"cpu": "CPU", "gpu": "GPU", "cuda": "GPU", "ascend": "Ascend", "npu": "Ascend"}
_PREFERENCE = ("Ascend", "GPU", "CPU")


def _available(target: str) -> bool:
    module = getattr(ms.device_context, target.lower(), None)
    try:
        return bool(module.is_available()) if module is not None else False
    except Exception:  # a backend plugin that fails to load counts as absent
        return False


def set_device(device: str | None = None) -> str:
    """Select the backend all later MindSpore work runs on.

    Args:
        device: "cpu", "gpu" or "ascend" (case-insensitive). None reads `MINDBARK_DEVICE`, and if that is unset
            picks the first available of Ascend, GPU, CPU.

    Returns:
        MindSpore's name of the selected target ("CPU", "GPU" or "Ascend").
    """
    name = device or os.environ.get("MINDBARK_DEVICE")
    if name:
        target = _ALIASES.get(name.strip().lower())
        if target is None:
            raise ValueError(f"unknown device {name!r}: choose one of cpu, gpu, ascend")
        if target != "CPU" and not _available(target):
            raise RuntimeError(f"device {name!r} was asked for but MindSpore reports it unavailable here")
    else:
        target = next(t for t in _PREFERENCE if t == "CPU" or _available(t))
    ms.set_device(target)
    return target
