"""A voice from a recording: the voice preset (history prompt) Bark would need to go on speaking like it.

A preset is three token arrays. The coarse and fine prompts are the recording's EnCodec codes (24 kHz, 8 codebooks
at 6 kbps; coarse the first 2), from Bark's own EnCodec's encoder. The semantic prompt is HuBERT base's layer-9
features (16 kHz) turned into Bark's semantic ids by the community's quantizer (bark-voice-cloning-HuBERT-quantizer,
MIT). That is the reference pipeline of the voice-cloning forks, in MindSpore.

Only the end of a recording is read and encoded: the last KEEP_SECONDS, which the prompts keep (as long as Bark's
longest presets), plus CONTEXT_SECONDS before them that the networks see but the prompts drop. A 30-minute file costs
what a 15 s one does.

Clone only voices you have the right to use.
"""

import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import constants as C
from .audio import SILENCE, Recording, read_audio, resample, to_mono
from .bark import BarkModel
from .checkpoint import load_weights
from .config import BarkConfig, QuantizerConfig
from .convert import convert_cached
from .convert.tables import ENCODER
from .convert.voice import HUBERT_FILE, QUANTIZER_FILE, read_hubert_config
from .device import set_device
from .graphs import GraphStore, default_dir
from .hub import resolve_hubert, resolve_model, resolve_quantizer
from .jit import use_store
from .models.codec import EncodecDecoder
from .models.encodec_encoder import EncodecEncoder
from .models.hubert import HubertModel
from .models.quantizer import HUBERT_LAYER, SemanticQuantizer
from .paths import MARKER
from .voices import Voice, validate_voice

HUBERT_RATE = 16_000
KEEP_SECONDS = 14.0  # the prompts' length: Bark's longest presets hold 14.6 s
CONTEXT_SECONDS = 1.0  # heard by the networks before the kept part, not kept
MIN_SECONDS = 1.0
MAX_COARSE = int(KEEP_SECONDS * C.COARSE_RATE_HZ)  # 1050 frames

Log = Callable[[str], None] | None

__all__ = ["KEEP_SECONDS", "VoiceCloner", "check_recording", "prompt_lengths", "quantizer_config", "voice_from_audio"]


def prompt_lengths(coarse_frames: int, semantic_frames: int) -> tuple[int, int]:
    """(semantic ids, codec frames) a voice keeps of the recording's end: at most KEEP_SECONDS, and the two in
    Bark's ratio (49.9 semantic ids per 75 codec frames), which its coarse stage aligns them by."""
    n_coarse = min(coarse_frames, MAX_COARSE)
    n_semantic = min(semantic_frames, int(n_coarse * C.SEMANTIC_RATE_HZ / C.COARSE_RATE_HZ))
    return n_semantic, n_coarse


class VoiceCloner:
    """The three networks a voice is made with, loaded once: Bark's EnCodec (decoder codebooks and encoder), HuBERT
    and the semantic quantizer. `voice` makes a voice from a recording; `timings` holds its last call's per-part
    seconds.

    Args:
        codec: the Bark model's EnCodec decoder (its residual-VQ codebooks).
        encoder: EnCodec's encoder.
        hubert: HuBERT, running up to the quantizer's layer.
        quantizer: the HuBERT-to-semantic quantizer.
    """

    def __init__(self, codec: EncodecDecoder, encoder: EncodecEncoder, hubert: HubertModel,
                 quantizer: SemanticQuantizer):
        if hubert.config.hidden_size != quantizer.config.input_size:
            raise ValueError(f"the quantizer reads {quantizer.config.input_size}-wide features; this HuBERT gives "
                             f"{hubert.config.hidden_size}")
        self.codec, self.encoder, self.hubert, self.quantizer = codec, encoder, hubert, quantizer
        self.sample_rate = codec.config.sampling_rate
        self.timings: dict[str, float] = {}
        self.graphs: GraphStore | None = None  # where `load` keeps the compiled graphs

    @classmethod
    def load(cls, model="bark-small", hubert="hubert-base", quantizer="quantizer-en", log: Log = None,
             device: str | None = None, graph_cache=None) -> "VoiceCloner":
        """Resolve (download and convert once, as needed) and load the three networks.

        Args:
            model: a loaded `BarkModel`, or a Bark name or directory as `resolve_model` takes (only its EnCodec is
                loaded).
            hubert: a name or directory as `hub.resolve_hubert` takes.
            quantizer: a name, `.pth` file or directory as `hub.resolve_quantizer` takes.
            log: called with a line of news (downloads, conversions).
            device: as `BarkModel.from_pretrained`.
            graph_cache: as `BarkModel.from_pretrained`.
        """
        set_device(device)
        if isinstance(model, BarkModel):
            path, codec = model.path, model.codec_model
            if path is None:
                raise ValueError("the BarkModel was not loaded from a directory, so it has no EnCodec encoder file")
        else:
            path = resolve_model(model, log=log, with_encoder=True)
            if not (path / MARKER).is_file():  # a Hugging Face snapshot: converted once, as from_pretrained does
                path = convert_cached(path)
            codec = EncodecDecoder(BarkConfig.from_file(path / "config.json").codec)
            load_weights(codec, path / "codec_model.safetensors")
        encoder_file = Path(path) / f"{ENCODER}.safetensors"
        if not encoder_file.is_file():
            raise FileNotFoundError(f"{path} has no EnCodec encoder ({encoder_file.name}): it was converted before "
                                    "mindbark kept it; convert the checkpoint again")
        encoder = EncodecEncoder(codec.config, codec.dtype)
        load_weights(encoder, encoder_file)

        hubert_dir = resolve_hubert(hubert, log=log)
        hubert_net = HubertModel(read_hubert_config(hubert_dir / "config.json"), HUBERT_LAYER)
        load_weights(hubert_net, hubert_dir / HUBERT_FILE)
        quantizer_dir = resolve_quantizer(quantizer, log=log)
        quantizer_net = SemanticQuantizer(quantizer_config(quantizer_dir))
        load_weights(quantizer_net, quantizer_dir / QUANTIZER_FILE)

        directory = default_dir() if graph_cache is None or graph_cache is True else graph_cache
        store = GraphStore(Path(directory)) if directory else None
        for cell in (codec, encoder, hubert_net, quantizer_net):
            use_store(cell, store)
        cloner = cls(codec, encoder, hubert_net, quantizer_net)
        cloner.graphs = store
        return cloner

    def voice(self, audio, sample_rate: int | None = None, log: Log = None) -> Voice:
        """The voice of a recording: {"semantic_prompt", "coarse_prompt", "fine_prompt"}, as presets hold.

        Args:
            audio: a path (wav, flac, ogg), or an array of samples (float in [-1, 1] or integer PCM), (samples,) or
                (samples, channels).
            sample_rate: the array's rate; a file gives its own.
            log: called with a note when only the end of a long recording is kept.
        Raises:
            ValueError: unreadable, empty, silent or too short audio, in one line.
        """
        start = time.perf_counter()
        rec, where = check_recording(audio, sample_rate)
        if rec.seconds > KEEP_SECONDS + 0.5 and log is not None:
            log(f"note: {where} is {_clock(rec.seconds)} long; the voice keeps its last {KEEP_SECONDS:.0f} s")
        wav24 = resample(rec.samples, rec.sample_rate, self.sample_rate)
        wav16 = resample(wav24, self.sample_rate, HUBERT_RATE)  # from 24 kHz, as the reference pipeline does
        read = time.perf_counter()

        codes = self.encoder.encode(wav24[None], self.codec.quantizer, C.N_FINE_CODEBOOKS)[0]  # (8, T)
        coded = time.perf_counter()
        features = self.hubert.hidden_states(wav16)
        heard = time.perf_counter()
        semantic = self.quantizer.ids(features, self.hubert.frames(len(wav16)))
        done = time.perf_counter()
        self.timings = {"read": read - start, "codec": coded - read, "hubert": heard - coded,
                        "quantizer": done - heard}

        n_semantic, n_coarse = prompt_lengths(codes.shape[1], len(semantic))
        fine = codes[:, codes.shape[1] - n_coarse:]
        return validate_voice({"semantic_prompt": semantic[len(semantic) - n_semantic:],
                               "coarse_prompt": fine[:C.N_COARSE_CODEBOOKS], "fine_prompt": fine},
                              f"voice from {where}")

def check_recording(audio, sample_rate: int | None = None) -> tuple[Recording, str]:
    """The part of a recording a voice is made from (its last KEEP_SECONDS + CONTEXT_SECONDS, mono) and a name for
    it in messages, after the checks that it can make a voice.

    Raises:
        ValueError: unreadable, empty, silent or too short audio, in one line.
    """
    seconds = KEEP_SECONDS + CONTEXT_SECONDS
    if isinstance(audio, (str, os.PathLike)):
        if sample_rate is not None:
            raise ValueError("sample_rate applies to arrays; an audio file carries its own")
        rec, where = read_audio(audio, seconds), str(audio)
    else:
        if sample_rate is None or sample_rate <= 0:
            raise ValueError("an audio array needs its sample_rate")
        rec, where = to_mono(audio, int(sample_rate), seconds), "the audio"
    if rec.seconds < MIN_SECONDS:
        raise ValueError(f"{where} is {rec.seconds:.2f} s long; a voice needs at least {MIN_SECONDS:.0f} s of speech")
    if not np.isfinite(rec.samples).all():
        raise ValueError(f"{where} holds samples that are not finite numbers")
    if float(np.abs(rec.samples).max()) < SILENCE:
        part = "" if rec.seconds <= seconds else "'s end (what a voice keeps)"
        raise ValueError(f"{where}{part} is silent: there is no voice to take")
    return rec, where


def quantizer_config(path: Path) -> QuantizerConfig:
    """The config of a converted quantizer directory."""
    try:
        return QuantizerConfig(**json.loads((path / "config.json").read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a converted quantizer ({e})") from None


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}" if minutes else f"{seconds:.1f} s"


def voice_from_audio(audio, sample_rate: int | None = None, *, model="bark-small", hubert="hubert-base",
                     quantizer="quantizer-en", log: Log = None) -> Voice:
    """A voice preset made from a recording, usable wherever presets are (`history_prompt=`, `save_voice`).

    Clone only voices you have the right to use.

    Args:
        audio: a path (wav, flac, ogg), or an array (samples,) or (samples, channels).
        sample_rate: the array's sample rate (a file carries its own).
        model: a loaded `BarkModel` or a Bark name or directory: its EnCodec codes the recording.
        hubert: `hubert-base`, `tiny-random` or a directory.
        quantizer: `quantizer-en`, `tiny-random`, a quantizer `.pth` or a directory.
        log: called with lines of news: downloads, conversions, a long recording's trim. None: the trim note goes to
            `warnings`.
    Returns:
        {"semantic_prompt": (T_s,), "coarse_prompt": (2, T_c), "fine_prompt": (8, T_c)}, int64.
    """
    cloner = VoiceCloner.load(model, hubert, quantizer, log)
    return cloner.voice(audio, sample_rate, log or (lambda line: warnings.warn(line, stacklevel=2)))
