"""Text → BERT token ids (and a voice preset): the inputs of Bark's semantic stage.

Bark reads text with `bert-base-multilingual-cased`'s WordPiece tokenizer, without [CLS]/[SEP], as 256 ids padded
with the tokenizer's pad id; the semantic model adds TEXT_ENCODING_OFFSET and swaps padding for TEXT_PAD_TOKEN.
"""

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np
from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from .constants import MAX_INPUT_SEMANTIC_LENGTH
from .voices import VoiceLike, list_voices, load_voice

logger = logging.getLogger(__name__)

# bert-base-multilingual-cased. Used for a checkpoint with only vocab.txt and for keys its tokenizer_config.json
# leaves out; transformers would lowercase when `do_lower_case` is absent, but Bark's tokenizer is cased.
_BERT_DEFAULTS = {"do_lower_case": False, "strip_accents": None, "tokenize_chinese_chars": True,
                  "pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                  "mask_token": "[MASK]"}
_SPECIAL_KEYS = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
_MAX_CHARS_PER_WORD = 100  # BERT's: a longer word becomes one [UNK]


class BarkProcessor:
    """Turns text and a voice preset into the keyword arguments of `BarkModel.generate`.

    Args:
        tokenizer: a `tokenizers.Tokenizer` for Bark's BERT vocabulary; its own padding and truncation are unused.
        pad_id: the id that fills positions after the text (BERT's [PAD], 0 in Bark's vocabulary).
        model_dir: the checkpoint directory whose `speaker_embeddings_path.json` names voices, if any.
    """

    def __init__(self, tokenizer: Tokenizer, pad_id: int, model_dir: Union[str, os.PathLike, None] = None):
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.model_dir = model_dir

    @classmethod
    def from_pretrained(cls, path: Union[str, os.PathLike]) -> "BarkProcessor":
        """Read a checkpoint directory's tokenizer: `tokenizer.json` if present, else `vocab.txt` as cased BERT.

        Args:
            path: a Bark checkpoint directory (Hugging Face layout, or one converted by mindbark).
        """
        path = Path(path)
        cfg = {**_BERT_DEFAULTS, **_read_json(path / "special_tokens_map.json"),
               **_read_json(path / "tokenizer_config.json")}
        pad_token = _content(cfg["pad_token"])
        if (path / "tokenizer.json").is_file():
            tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        elif (path / "vocab.txt").is_file():
            tokenizer = _bert_wordpiece(path / "vocab.txt", cfg)
        else:
            raise ValueError(f"{path}: no tokenizer.json or vocab.txt")
        # transformers saves the padding it last used into tokenizer.json; we pad and truncate ourselves
        tokenizer.no_padding()
        tokenizer.no_truncation()
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ValueError(f"{path}: pad token {pad_token!r} is not in the vocabulary")
        return cls(tokenizer, pad_id, path)

    def __call__(self, text: Union[str, Sequence[str]], voice_preset: Optional[VoiceLike] = None,
                 return_tensors: str = "np", max_length: int = MAX_INPUT_SEMANTIC_LENGTH) -> dict:
        """Tokenize `text` (one string or a batch) and load `voice_preset`.

        Args:
            text: a string or a list of strings.
            voice_preset: a voice name, `.npz` path or dict of arrays (see `mindbark.voices.load_voice`), or None.
            return_tensors: "np" for numpy arrays, "ms" for MindSpore tensors (input_ids and attention_mask only).
            max_length: ids per text; Bark's semantic model reads 256. Longer texts are cut, with a warning.
        Returns:
            {"input_ids": (B, max_length) int64, "attention_mask": (B, max_length) int64,
             "history_prompt": the `load_voice` dict of numpy arrays, or None}.
        """
        if return_tensors not in ("np", "ms"):
            raise ValueError(f"return_tensors must be 'np' or 'ms', not {return_tensors!r}")
        texts = [text] if isinstance(text, str) else list(text)
        if not texts:
            raise ValueError("text is empty (an empty batch)")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text must be a string or a list of strings, item {i} is {type(t).__name__}")
            # transformers pads an empty text to 256 pad ids and the model then babbles; Suno's bark asserts.
            if not t.strip():
                raise ValueError("text is empty" if isinstance(text, str) else f"text is empty (batch item {i})")

        input_ids = np.full((len(texts), max_length), self.pad_id, dtype=np.int64)  # (B, T)
        attention_mask = np.zeros((len(texts), max_length), dtype=np.int64)  # (B, T)
        for i, enc in enumerate(self.tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = enc.ids
            if len(ids) > max_length:
                # Suno's warning; transformers' processor keeps every id and the model cuts silently
                logger.warning("text %d is %d tokens, Bark reads %d: dropping the last %.1f%%",
                               i, len(ids), max_length, 100 * (len(ids) - max_length) / len(ids))
                ids = ids[:max_length]
            input_ids[i, : len(ids)] = ids
            attention_mask[i, : len(ids)] = 1

        history_prompt = None if voice_preset is None else load_voice(voice_preset, self.model_dir)
        if return_tensors == "ms":
            import mindspore as ms  # slow to import: only when asked for

            input_ids, attention_mask = ms.Tensor(input_ids, ms.int64), ms.Tensor(attention_mask, ms.int64)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "history_prompt": history_prompt}

    def count_tokens(self, text: str) -> int:
        """Ids the semantic model would read for `text` before truncation (it reads MAX_INPUT_SEMANTIC_LENGTH)."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def list_voices(self) -> list[str]:
        """Voice names this processor resolves: the checkpoint's and the shipped presets."""
        return list_voices(self.model_dir)


def _bert_wordpiece(vocab_path: Path, cfg: dict) -> Tokenizer:
    """WordPiece over `vocab_path` with BERT's normalizer and pre-tokenizer, as transformers' BertTokenizer builds."""
    vocab = WordPiece.read_file(str(vocab_path))  # the Rust reader transformers uses too (trims line ends)
    tokenizer = Tokenizer(WordPiece(vocab, unk_token=_content(cfg["unk_token"]),
                                    max_input_chars_per_word=_MAX_CHARS_PER_WORD))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=cfg["tokenize_chinese_chars"], strip_accents=cfg["strip_accents"],
        lowercase=cfg["do_lower_case"])
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # special tokens match whole before normalization: "[MASK]" in a text is one id, not "[", "MASK", "]"
    specials = [AddedToken(_content(cfg[k]), special=True, normalized=False) for k in _SPECIAL_KEYS if cfg.get(k)]
    for entry in cfg.get("added_tokens_decoder", {}).values():
        specials.append(AddedToken(entry["content"], single_word=entry.get("single_word", False),
                                   lstrip=entry.get("lstrip", False), rstrip=entry.get("rstrip", False),
                                   normalized=entry.get("normalized", False), special=entry.get("special", True)))
    tokenizer.add_special_tokens(specials)
    return tokenizer


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable ({e})") from None
    # a null means "unset" in these files: the default stands
    return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else {}


def _content(token) -> str:
    """A special token as tokenizer configs write it: a string, or a dict with its `content`."""
    return token["content"] if isinstance(token, dict) else str(token)
