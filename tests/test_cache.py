"""`mindbark cache`: the inventory of the cache home, pruning what no process of this version loads, clearing; and
the graph directory's size bound."""

import io
import os
import time

import pytest

from mindbark import cache, graphs, kernels
from mindbark.cli import main
from mindbark.paths import write_marker


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A cache home holding a model of each kind, graphs and kernels of this and other versions, and leftovers."""
    monkeypatch.setenv("MINDBARK_HOME", str(tmp_path / "home"))
    home = tmp_path / "home"
    for model in (home / "bark-small", home / "converted" / "mine-0123"):
        model.mkdir(parents=True)
        (model / "semantic.safetensors").write_bytes(b"w" * 1000)
        write_marker(model, {"source_format": "transformers"})
    (home / "converted" / "not-a-model").mkdir()  # no marker: not listed, not removed
    g = home / "graphs"
    g.mkdir()
    (g / f"step-{graphs.stamp()}-{'a' * 32}.mindir").write_bytes(b"g" * 300)
    (g / f"step-{'0' * 12}-{'b' * 32}.mindir").write_bytes(b"g" * 200)  # another version's
    (g / f"codec-{'c' * 32}.mindir").write_bytes(b"g" * 100)  # named before stamps existed
    k = home / "kernels"
    k.mkdir()
    current = kernels.current_library()
    if current is not None:
        (k / current.name).write_bytes(b"k" * 50)
    (k / "cpu_ops-0000000000000000.so").write_bytes(b"k" * 40)
    old = time.time() - 2 * 3600
    for leftover in (home / ".bark.1x2y", home / "graphs" / ".step.mindir.abc.tmp"):
        leftover.mkdir() if leftover.suffix != ".tmp" else leftover.write_bytes(b"t")
        os.utime(leftover, (old, old))
    (home / ".bark.writing").mkdir()  # a conversion still under way: young, kept
    return home


def test_inventory_and_prune(home):
    entries = {(e.kind, e.name): e for e in cache.inventory()}
    assert entries[("model", "bark-small")].size > 1000 and ("model", "converted/mine-0123") in entries
    assert ("model", "converted/not-a-model") not in entries
    assert entries[("graphs", "this version")].size == 300 and entries[("graphs", "other versions")].size == 300
    assert not entries[("graphs", "other versions")].current and not entries[("kernels", "other builds")].current
    assert len(entries[("leftover", "interrupted writes")].paths) == 2

    files, freed = cache.prune()
    assert (files, freed) == (4, 200 + 100 + 40 + 1)  # the leftover directory holds no file
    left = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() or not any(p.iterdir()))
    assert left == sorted(["bark-small/mindbark.json", "bark-small/semantic.safetensors",
                           "converted/mine-0123/mindbark.json", "converted/mine-0123/semantic.safetensors",
                           "converted/not-a-model", ".bark.writing", f"graphs/step-{graphs.stamp()}-{'a' * 32}.mindir",
                           *([f"kernels/{kernels.current_library().name}"] if kernels.current_library() else [])])
    assert cache.prune() == (0, 0)


def test_cache_command(home, capsys):
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{home} (set MINDBARK_HOME to move it)\n")
    assert "bark-small" in out and "converted/mine-0123" in out and "stale: mindbark cache prune" in out
    assert main(["cache", "prune"]) == 0 and capsys.readouterr().out == "removed 4 files, 341 B\n"
    assert main(["cache", "prune"]) == 0 and capsys.readouterr().out == "nothing stale\n"

    assert main(["cache", "bogus"]) == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err
    with pytest.MonkeyPatch.context() as m:  # no terminal to ask at: clearing needs --yes, and keeps everything
        m.setattr("sys.stdin", io.StringIO("y\n"))
        assert main(["cache", "clear"]) == 2 and "pass --yes" in capsys.readouterr().err
    assert (home / "bark-small").is_dir()
    assert main(["cache", "clear", "--yes"]) == 0 and not home.exists()
    assert main(["cache"]) == 0 and capsys.readouterr().out.endswith("  empty\n")


def test_graph_directory_is_bounded(tmp_path):
    sizes = {"old": 400, "used": 400, "new": 400}
    for age, name in enumerate(reversed(list(sizes))):
        path = tmp_path / f"{name}.mindir"
        path.write_bytes(b"g" * sizes[name])
        os.utime(path, (time.time() - 100 * age, time.time() - 100 * age))
    os.utime(tmp_path / "used.mindir")  # loaded just now
    assert graphs.bound(tmp_path, 900, keep=tmp_path / "new.mindir") == [tmp_path / "old.mindir"]
    assert graphs.bound(tmp_path, 100, keep=tmp_path / "new.mindir") == [tmp_path / "used.mindir"]
    assert [p.name for p in tmp_path.iterdir()] == ["new.mindir"]


def test_saving_a_graph_keeps_the_bound(tiny_dir, tiny_processor, tmp_path, monkeypatch):
    from mindbark import BarkModel

    monkeypatch.setenv(graphs.MAX_ENV, "0.000001")  # one byte: every save leaves only the graph just saved
    model = BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=tmp_path)
    model.generate(**tiny_processor("Hello"), do_sample=False, semantic_max_new_tokens=4)
    assert model.graphs.saved >= 4 and len(list(tmp_path.glob("*.mindir"))) == 1
    monkeypatch.setenv(graphs.MAX_ENV, "lots")
    with pytest.raises(ValueError, match="MINDBARK_GRAPH_CACHE_MB='lots' is not a number"):
        graphs.max_bytes()
