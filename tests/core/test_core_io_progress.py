from __future__ import annotations

from pathlib import Path

import pytest

from labworks.core import atomic_write, atomic_write_text, progress


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "sub" / "a.txt", "first")
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    with pytest.raises(ZeroDivisionError), atomic_write(path, "w") as f:
        f.write("half")
        1 / 0  # noqa: B018
    assert path.read_text() == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]
    with pytest.raises(ValueError, match="mode"), atomic_write(path, "a"):
        pass


def test_progress_counts_and_can_be_silenced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LABWORKS_NO_PROGRESS", raising=False)
    assert list(progress(range(5), desc="work")) == [0, 1, 2, 3, 4]
    assert "work" in capsys.readouterr().err
    monkeypatch.setenv("LABWORKS_NO_PROGRESS", "1")
    bar = progress(total=3, desc="quiet")
    bar.update(3)
    bar.close()
    assert bar.disable and "quiet" not in capsys.readouterr().err
