"""Apply the name tables: source tensors in, per-sub-model tensors out, every source name accounted for."""

import re

import numpy as np

from ..config import BarkConfig
from . import tables
from ..errors import ConversionError


def compile_table(table: dict) -> list:
    return [(re.compile(re.escape(src).replace(r"\{\}", r"(\d+)") + "$"), dst) for src, dst in table.items()]


def _tables(cfg: BarkConfig) -> dict:
    return {
        "semantic": compile_table(tables.CAUSAL),
        "coarse_acoustics": compile_table(tables.CAUSAL),
        "fine_acoustics": compile_table(tables.FINE_TIED if cfg.fine_acoustics.tie_word_embeddings else tables.FINE),
        "codec_model": compile_table(tables.CODEC),
        tables.ENCODER: compile_table(tables.CODEC_ENCODER),
    }


def lookup(rules: list, name: str):
    for pattern, dst in rules:
        m = pattern.match(name)
        if m:
            return True, None if dst is None else dst.format(*m.groups())
    return False, None


def map_tensors(tensors: dict, cfg: BarkConfig) -> dict:
    """Rename `transformers` Bark tensors into {sub-model: {mindbark name: float32 array}}.

    Raises ConversionError on a tensor that no table entry accounts for.
    """
    rules = _tables(cfg)
    out = {name: {} for name in (*tables.SUBMODELS, tables.ENCODER)}
    for name in sorted(tensors):
        sub, _, rest = name.partition(".")
        if name.startswith(tables.ENCODER_PREFIX):
            sub = tables.ENCODER
        known, dst = lookup(rules[sub], rest) if sub in rules else (False, None)
        if not known:
            raise ConversionError(f"unknown tensor {name} in checkpoint: not a Bark weight mindbark can map")
        if dst is not None:
            out[sub][dst] = np.ascontiguousarray(tensors[name], dtype=np.float32)
    return out


def rename(tensors: dict, table: dict, where, what: str = "a Bark weight") -> dict:
    """{name: array} renamed by `table` into float32 arrays; a name no entry accounts for is a ConversionError
    naming `where` (the file) and `what` the tensors should be."""
    rules = compile_table(table)
    out = {}
    for name in sorted(tensors):
        known, dst = lookup(rules, name)
        if not known:
            raise ConversionError(f"{where}: unknown tensor {name}: not {what} mindbark can map")
        if dst is not None:
            out[dst] = np.ascontiguousarray(tensors[name], dtype=np.float32)
    return out
