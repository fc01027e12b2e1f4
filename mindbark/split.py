"""Long text -> sentence-sized chunks that Bark can speak in one generation each.

Bark speaks about 13 s per generation and its semantic model reads at most `MAX_INPUT_SEMANTIC_LENGTH` text ids (the rest is truncated),
so long-form text is cut into chunks within a character and a token budget. Cuts prefer, in order: sentence ends,
clause punctuation, whitespace, non-verbal cues (`[laughter]`) kept whole, and finally single characters, so any
input fits. Paragraphs (blank lines) are hard boundaries; chunks never cross them.
"""

import re
from collections.abc import Callable, Iterator

from . import constants as C
from .generation.config import LongFormOptions

# A cue Bark was trained on ([laughter], [clears throat]) is at most ~40 characters; an unclosed or longer `[`
# span is plain text, so one stray bracket cannot glue a whole paragraph into one uncuttable atom.
_CUE = re.compile(r"\[[^\[\]]{1,40}\]")
_CLOSERS = "\"'”’)\\]」』）】》"
_CJK_PUNCT = "。！？；，、：｡．」』）】》"
_CJK_CHAR = r"\u3040-\u30ff\u3400-\u9fff"
# Latin ends need a following space so `3.14` and `e.g.x` stay whole; CJK script writes no spaces, so its ends
# (and `…` right after a CJK character) cut on their own.
_SENTENCE_END = re.compile(rf"[.!?…]+[{_CLOSERS}]*(?=\s|$)"
                           rf"|[。！？；｡．]+[{_CLOSERS}]*"
                           rf"|(?<=[{_CJK_CHAR}])…+[{_CLOSERS}]*")
# ASCII clause marks need a following space so `1,000` and `10:30` stay whole.
_CLAUSE_END = re.compile(r"[,;:]+(?=\s)|[—–，、：；]+")
_WORD = re.compile(r"\S+")
_ATOM = re.compile(rf"{_CUE.pattern}|\S")
_CHAR = re.compile(r"\S")
_PARAGRAPH = re.compile(r"\n\s*\n")
_SPACES = re.compile(r"\s+")
_CJK_GAP = re.compile(rf"(?<=[{_CJK_PUNCT}]) ")
_LAST_LEVEL = 4  # sentences, clauses, words, atoms (cue or character), characters


def split_text(text: str, max_chars: int = LongFormOptions.max_chars,
               count_tokens: Callable[[str], int] | None = None,
               max_tokens: int = C.MAX_INPUT_SEMANTIC_LENGTH) -> list[str]:
    """Split `text` into chunks of whole sentences where they fit, in order, whitespace collapsed.

    Every chunk has at most `max_chars` characters and, with `count_tokens`, at most `max_tokens` tokens (a single
    character is the one thing never cut further). Only whitespace is lost: an empty or blank text gives `[]`.

    Args:
        text: any length, any script; `[...]` cues up to 40 characters are never cut unless longer than max_chars.
        max_chars: characters per chunk at most (the default is about 13 s of speech).
        count_tokens: the tokenizer's id count for a string; None checks characters only.
        max_tokens: ids per chunk at most when `count_tokens` is given; Bark's semantic model reads `MAX_INPUT_SEMANTIC_LENGTH`.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars!r}")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens!r}")

    def fits(chunk: str) -> bool:
        return len(chunk) <= max_chars and (count_tokens is None or count_tokens(chunk) <= max_tokens)

    chunks = []
    for paragraph in _PARAGRAPH.split(text):
        # Cues masked with a neutral character: their spaces and punctuation must not end a sentence or a word.
        masked = _CUE.sub(lambda cue: "_" * len(cue.group()), paragraph)
        chunks += _pack(paragraph, masked, 0, len(paragraph), 0, fits)
    return chunks


def _pack(text: str, masked: str, start: int, end: int, level: int, fits: Callable[[str], bool]) -> list[str]:
    """Greedily join `text[start:end]`'s pieces at `level` into chunks that fit; a piece too big is cut finer."""
    chunks, first, last = [], None, None
    for a, b in _pieces(text, masked, start, end, level):
        if first is not None and fits(_clean(text[first:b])):
            last = b
            continue
        if first is not None:
            chunks.append(_clean(text[first:last]))
        first, last = a, b
        if not fits(_clean(text[a:b])):
            chunks += [_clean(text[a:b])] if level == _LAST_LEVEL else _pack(text, masked, a, b, level + 1, fits)
            first = None
    if first is not None:
        chunks.append(_clean(text[first:last]))
    return chunks


def _pieces(text: str, masked: str, start: int, end: int, level: int) -> Iterator[tuple[int, int]]:
    """Spans of `text[start:end]` cut at `level`, trimmed of whitespace, empty ones dropped."""
    if level < 2:
        cuts = [start, *(m.end() for m in (_SENTENCE_END, _CLAUSE_END)[level].finditer(masked, start, end)), end]
        spans = zip(cuts, cuts[1:])
    else:
        pattern, source = ((_WORD, masked), (_ATOM, text), (_CHAR, text))[level - 2]
        spans = (m.span() for m in pattern.finditer(source, start, end))
    for a, b in spans:
        piece = text[a:b]
        a, b = a + len(piece) - len(piece.lstrip()), b - len(piece) + len(piece.rstrip())
        if a < b:
            yield a, b


def _clean(chunk: str) -> str:
    """One space for any whitespace run, none after CJK punctuation (CJK text is written without spaces)."""
    return _CJK_GAP.sub("", _SPACES.sub(" ", chunk).strip())
