"""The long-form splitter: sentence cuts in any script, limits always kept, cues whole, nothing but whitespace lost."""

import re

import pytest

from mindbark.split import split_text

ENGLISH = ("Bark is a transformer-based text-to-audio model. It can generate highly realistic, multilingual speech! "
           "Can it also make music? Yes, and background noise and simple sound effects too. The model can also "
           "produce nonverbal communications like laughing, sighing and crying.")
CHINESE = "你好，欢迎使用模型。今天天气很好！你今天过得怎么样？我很好，谢谢。"
JAPANESE = "こんにちは。今日はいい天気ですね！お元気ですか？はい、元気です。"
MIXED = "Hello world. 你好，世界。This is English again! 再见？Goodbye."
CUES = "Hello [laughter] world. [sighs] Fine... [music] ♪ la la ♪ [clears throat] Okay? [laughs]"
DECIMALS = "Pi is 3.14 and e is 2.718, e.g.x stays whole. It costs 1,000 dollars at 10:30. Done."
PARAGRAPHS = "First line\nstill the first sentence.\n\nSecond paragraph\n\n\n   Third."
LONG_WORDS = " ".join(["word"] * 400)
LONG_RUN = "a" * 2000
TEXTS = [ENGLISH, CHINESE, JAPANESE, MIXED, CUES, DECIMALS, PARAGRAPHS, LONG_WORDS, LONG_RUN,
         "[laughter] [laughs] [music]", "[" + "x" * 2000, "Wait…what?! Really?!\"  Yes.)"]


def words(text: str) -> int:
    return len(text.split())


def strip_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("max_chars", [1, 7, 30, 200])
def test_lossless_within_limits_and_clean(text, max_chars):
    for count_tokens in (None, words):
        chunks = split_text(text, max_chars, count_tokens, max_tokens=4)
        assert strip_space("".join(chunks)) == strip_space(text)
        assert all(c and c == c.strip() and "  " not in c and "\n" not in c for c in chunks)
        assert all(len(c) <= max_chars for c in chunks)
        if count_tokens:
            assert all(words(c) <= 4 for c in chunks)


def test_english_sentences_packed_within_max_chars():
    assert split_text("One. Two! Three? Four.") == ["One. Two! Three? Four."]
    chunks = split_text(ENGLISH, max_chars=120)
    assert chunks == ["Bark is a transformer-based text-to-audio model. It can generate highly realistic, "
                      "multilingual speech!",
                      "Can it also make music? Yes, and background noise and simple sound effects too.",
                      "The model can also produce nonverbal communications like laughing, sighing and crying."]


def test_long_sentence_cut_at_clauses_first():
    assert split_text("Alpha beta gamma, delta epsilon zeta; eta theta.", max_chars=20) == [
        "Alpha beta gamma,", "delta epsilon zeta;", "eta theta."]


def test_chinese_cuts_without_spaces():
    assert split_text(CHINESE, max_chars=20) == ["你好，欢迎使用模型。今天天气很好！", "你今天过得怎么样？我很好，谢谢。"]
    # a 7-character clause in 6 characters: hard cut, never across a sentence end
    assert split_text(CHINESE, max_chars=6) == ["你好，", "欢迎使用模型", "。", "今天天气很好", "！", "你今天过得怎", "么样？",
                                                "我很好，", "谢谢。"]


def test_japanese_sentences():
    assert split_text(JAPANESE, max_chars=12) == ["こんにちは。", "今日はいい天気ですね！", "お元気ですか？", "はい、元気です。"]
    assert split_text(JAPANESE, max_chars=15)[-1] == "お元気ですか？はい、元気です。"


def test_mixed_english_and_chinese():
    assert split_text(MIXED, max_chars=20) == ["Hello world. 你好，世界。", "This is English", "again!",
                                               "再见？Goodbye."]
    # no space is kept after CJK punctuation, even where the source had one
    assert split_text("你好。 世界。") == ["你好。世界。"]


@pytest.mark.parametrize("max_chars", [15, 16, 20, 40, 200])
def test_cues_never_cut(max_chars):
    chunks = split_text(CUES, max_chars)
    assert not any(re.search(r"[\[\]]", re.sub(r"\[[^\[\]]*\]", "", c)) for c in chunks)  # each `[` closes within
    assert all(cue in " ".join(chunks) for cue in re.findall(r"\[[^\]]*\]", CUES))
    assert split_text("Ha [laughs]. Yes.", 12) == ["Ha [laughs].", "Yes."]
    assert split_text("[laughter]", 5) == ["[laug", "hter]"]  # the character limit wins over a cue longer than it


def test_punctuation_inside_a_cue_ends_no_sentence():
    assert split_text("We waited [long pause. really!] then spoke. End.", max_chars=45) == [
        "We waited [long pause. really!] then spoke.", "End."]


def test_decimals_and_abbreviations_stay_whole():
    assert split_text(DECIMALS, max_chars=50) == ["Pi is 3.14 and e is 2.718, e.g.x stays whole.",
                                                  "It costs 1,000 dollars at 10:30. Done."]


def test_paragraphs_are_hard_boundaries_and_newlines_collapse():
    assert split_text(PARAGRAPHS) == ["First line still the first sentence.", "Second paragraph", "Third."]


def test_pathological_long_sentences():
    assert [len(c) for c in split_text(LONG_WORDS)] == [199] * 10  # cut between words: 40 words of 5 characters
    assert split_text(LONG_RUN) == ["a" * 200] * 10
    assert [len(c) for c in split_text(LONG_RUN, 300)] == [300] * 6 + [200]
    # an unclosed `[` is no cue: the run after it is hard-cut like any text
    assert [len(c) for c in split_text("[" + "x" * 2000, 500)] == [500] * 4 + [1]


def test_blank_text_and_only_cues():
    assert split_text("") == [] and split_text(" \n\t\u3000 \n\n ") == []
    assert split_text("[laughter] [laughs] [music]") == ["[laughter] [laughs] [music]"]
    assert split_text("[laughter] [laughs] [music]", 10) == ["[laughter]", "[laughs]", "[music]"]


def test_token_limit_respected():
    chunks = split_text(ENGLISH, max_chars=1000, count_tokens=words, max_tokens=10)
    assert all(words(c) <= 10 for c in chunks)
    assert chunks[0] == "Bark is a transformer-based text-to-audio model."
    assert split_text("one two three four five six seven. eight nine.", 100, words, 3) == [
        "one two three", "four five six", "seven.", "eight nine."]


@pytest.mark.parametrize("kwargs", [{"max_chars": 0}, {"max_chars": -5}, {"max_tokens": 0}])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError, match="max_(chars|tokens) must be >= 1"):
        split_text("Hello.", **kwargs)
