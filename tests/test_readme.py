"""README's Python snippets run as pasted (on tiny-random, offline): a newcomer's first copy must not fail."""

import re
from pathlib import Path

import soundfile as sf

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(section: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_from_python_runs_as_pasted(tmp_path, monkeypatch):
    monkeypatch.setenv("MINDBARK_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks("From Python")
    assert len(blocks) == 2
    scope = {}
    for block in blocks:  # one session: the second block uses the first's model
        exec(compile(block, str(README), "exec"), scope)
    assert sf.info("hello.wav").samplerate == 24_000 and len(scope["result"].chunks) == 2
    assert sf.info("story.wav").frames == len(scope["result"].audio) > 0
    assert sorted(p.name for p in tmp_path.glob("part*.wav")) == ["part1.wav"]
