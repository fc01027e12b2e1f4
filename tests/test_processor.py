"""mindbark's BarkProcessor against transformers' on a small hand-made BERT vocabulary (no hub files)."""

import json
import logging

import numpy as np
import pytest

from mindbark.processor import BarkProcessor

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ("Hello hello world the quick brown fox jumps over lazy dog my name is Suno And and uh I like pizza But "
         "also have other interests such as playing tic tac toe In jungle mighty lion barks tonight laughter "
         "laughs music sing L un café va génial Garçon Noël être à ça été").split()
PIECES = ["##s", "##ing", "##ed", "##er", "##llo", "##é", "##té", "##ë", "##ç", "##on", "##a"]
CHINESE = list("你好世界中国人")
PUNCT = list("[].,!?'-()—，！") + ["♪", "🙂"]
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
VOCAB = list(dict.fromkeys(SPECIALS + PUNCT + WORDS + PIECES + CHINESE + LETTERS + ["##" + c for c in LETTERS]))

TEXTS = {
    "english": "Hello, my name is Suno. And, uh — and I like pizza. [laughs] But I also have other interests "
               "such as playing tic tac toe.",
    "chinese": "你好，世界！中国人喜欢",
    "french": "L'été à Noël, ça va être génial ! Garçon, un café. e\u0301te\u0301",
    "laughter": "[laughter]",
    "music": "♪ In the jungle, the mighty jungle, the lion barks tonight ♪",
    "emoji": "Hello 😀 world🙂! 🙂",
    "specials": "hello [MASK] world [PAD]x [UNK]",
    "whitespace": "\thello\u00a0world\n\x00 fox\u200b ",
    "long_word": "a" * 101 + " " + "b" * 100,
}
LONG = "hello world " * 150 + "the fox"  # 302 tokens


@pytest.fixture(scope="module")
def hf_processor():
    from transformers import BarkProcessor as HFBarkProcessor, BertTokenizerFast

    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(VOCAB)}, do_lower_case=False)
    return HFBarkProcessor(tokenizer=tokenizer)


@pytest.fixture(scope="module")
def dirs(hf_processor, tmp_path_factory):
    """A checkpoint-like dir saved by transformers (tokenizer.json), and one holding only vocab.txt."""
    saved = tmp_path_factory.mktemp("tokenizer_json")
    hf_processor("warm up the backend padding", return_tensors="np")  # so tokenizer.json records padding
    hf_processor.tokenizer.save_pretrained(saved)
    vocab_only = tmp_path_factory.mktemp("vocab_txt")
    (vocab_only / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return {"tokenizer.json": saved, "vocab.txt": vocab_only}


@pytest.fixture(scope="module", params=["tokenizer.json", "vocab.txt"])
def processor(request, dirs):
    return BarkProcessor.from_pretrained(dirs[request.param])


def hf_encode(hf_processor, text):
    out = hf_processor(text, return_tensors="np")
    # transformers' processor pads but never truncates (its model cuts at generate): compare the first 256
    return out["input_ids"][:, :256], out["attention_mask"][:, :256]


def test_layouts_on_disk(dirs):
    assert (dirs["tokenizer.json"] / "tokenizer.json").is_file()
    assert json.loads((dirs["tokenizer.json"] / "tokenizer.json").read_text())["padding"] is not None
    assert not (dirs["vocab.txt"] / "tokenizer.json").exists()


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_single_text_matches_transformers(processor, hf_processor, name):
    ids, mask = hf_encode(hf_processor, TEXTS[name])
    out = processor(TEXTS[name])
    assert out["input_ids"].shape == (1, 256) and out["input_ids"].dtype == np.int64
    assert out["attention_mask"].dtype == np.int64
    np.testing.assert_array_equal(out["input_ids"], ids)
    np.testing.assert_array_equal(out["attention_mask"], mask)
    assert out["history_prompt"] is None


def test_vocabulary_is_exercised(processor):
    # guard against a vocabulary so small that every case collapses to [UNK]
    ids = processor(TEXTS["english"])["input_ids"][0]
    assert (ids[:20] > 4).sum() > 15
    assert 1 in processor(TEXTS["emoji"])["input_ids"][0]  # 😀 is not in the vocabulary


def test_batch_matches_transformers(processor, hf_processor):
    texts = [TEXTS[k] for k in sorted(TEXTS)]
    ids, mask = hf_encode(hf_processor, texts)
    out = processor(texts)
    assert out["input_ids"].shape == (len(texts), 256)
    np.testing.assert_array_equal(out["input_ids"], ids)
    np.testing.assert_array_equal(out["attention_mask"], mask)


def test_long_text_truncated_with_warning(processor, hf_processor, caplog):
    hf_ids = hf_processor(LONG, return_tensors="np")["input_ids"]
    assert hf_ids.shape == (1, 302)  # transformers keeps every id
    with caplog.at_level(logging.WARNING, logger="mindbark.processor"):
        out = processor(["short text", LONG])
    assert "302 tokens" in caplog.text and "dropping the last 15.2%" in caplog.text
    np.testing.assert_array_equal(out["input_ids"][1], hf_ids[0, :256])
    assert out["attention_mask"][1].all()
    np.testing.assert_array_equal(out["input_ids"][0], hf_encode(hf_processor, "short text")[0][0])


@pytest.mark.parametrize("text", ["", "   ", "\n\t", ["hello", " "]])
def test_empty_text_is_refused(processor, hf_processor, text):
    if isinstance(text, str):  # transformers pads it to 256 pad ids, with an all-zero mask
        out = hf_processor(text, return_tensors="np")
        assert not out["input_ids"].any() and not out["attention_mask"].any()
    with pytest.raises(ValueError, match="text is empty"):
        processor(text)


def test_bad_arguments(processor):
    with pytest.raises(ValueError, match="text is empty"):
        processor([])
    with pytest.raises(TypeError, match="item 1"):
        processor(["hello", 3])
    with pytest.raises(ValueError, match="return_tensors"):
        processor("hello", return_tensors="pt")


def test_mindspore_tensors(processor):
    import mindspore as ms

    out = processor(["hello world", "fox"], return_tensors="ms")
    assert isinstance(out["input_ids"], ms.Tensor) and out["input_ids"].dtype == ms.int64
    assert out["input_ids"].shape == (2, 256) and out["attention_mask"].dtype == ms.int64
    np.testing.assert_array_equal(out["input_ids"].asnumpy(), processor(["hello world", "fox"])["input_ids"])


def test_voice_preset_matches_transformers(processor, hf_processor, tmp_path):
    from mindbark.voices import load_voice, save_voice

    path = save_voice(tmp_path / "voice.npz", **dict(zip(("semantic", "coarse", "fine"),
                                                         load_voice("announcer").values())))
    ours = processor("hello", voice_preset=str(path))["history_prompt"]
    theirs = hf_processor("hello", voice_preset=str(path), return_tensors="np")["history_prompt"]
    for key in ("semantic_prompt", "coarse_prompt", "fine_prompt"):
        np.testing.assert_array_equal(ours[key], theirs[key])
        assert ours[key].dtype == np.int64
    assert processor("hello", voice_preset="v2/en_speaker_6")["history_prompt"]["fine_prompt"].shape[0] == 8


def test_transformers_from_pretrained_agrees(dirs):
    from transformers import BarkProcessor as HFBarkProcessor

    hf = HFBarkProcessor.from_pretrained(str(dirs["tokenizer.json"]), speaker_embeddings_dict_path=None)
    ours = BarkProcessor.from_pretrained(dirs["tokenizer.json"])
    texts = [TEXTS["french"], TEXTS["specials"]]
    np.testing.assert_array_equal(ours(texts)["input_ids"], hf(texts, return_tensors="np")["input_ids"])


def test_vocab_txt_honours_tokenizer_config(dirs, tmp_path):
    from transformers import BertTokenizerFast

    (tmp_path / "vocab.txt").write_bytes((dirs["vocab.txt"] / "vocab.txt").read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "strip_accents": None}))
    hf = BertTokenizerFast(vocab={t: i for i, t in enumerate(VOCAB)}, do_lower_case=True)
    text = "HELLO World, Été à Noël"
    expected = hf(text, add_special_tokens=False)["input_ids"]
    got = BarkProcessor.from_pretrained(tmp_path)(text)["input_ids"][0]
    assert list(got[: len(expected)]) == expected and not got[len(expected):].any()


def test_missing_tokenizer_files(tmp_path):
    with pytest.raises(ValueError, match="no tokenizer.json or vocab.txt"):
        BarkProcessor.from_pretrained(tmp_path)
