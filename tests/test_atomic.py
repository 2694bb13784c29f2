"""Atomic writes: whole files or none, the umask's mode, and a full disk as one clear line."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from ner import atomic, checkpoint
from ner.errors import UserError


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_written_files_and_directories_follow_the_umask(tmp_path, umask_027):
    atomic.write_json(tmp_path / "r.json", {"a": 1})
    checkpoint.atomic_save({"format": 1, "w": torch.zeros(3)}, tmp_path / "last.pt")

    def fill(d: Path) -> None:
        (d / "model.safetensors").write_bytes(b"x")
        os.chmod(d / "model.safetensors", 0o600)  # what transformers' save_pretrained leaves

    atomic.replace_dir(tmp_path / "best_model", fill)
    assert mode(tmp_path / "r.json") == 0o640 and mode(tmp_path / "last.pt") == 0o640
    assert mode(tmp_path / "best_model") == 0o750
    assert mode(tmp_path / "best_model/model.safetensors") == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_curves_png_follows_the_umask(tmp_path, umask_027):
    from ner.report.curves import plot_curves

    history = [
        {"loss": 1.0, "learning_rate": 0.1, "epoch": 0.5, "step": 1},
        {
            "epoch": 1.0,
            "step": 2,
            "train_loss": 1.0,
            "eval_loss": 0.9,
            "eval_f1": 0.1,
            "eval_precision": 0.1,
            "eval_recall": 0.1,
            "eval_accuracy": 0.5,
        },
    ]
    plot_curves(history, tmp_path / "curves.png")
    assert mode(tmp_path / "curves.png") == 0o640


def test_a_full_disk_keeps_the_previous_file_removes_the_temporary_and_says_so(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.atomic_save({"format": 1, "n": 0}, path)
    before = path.read_bytes()

    def fills_the_disk(f) -> None:
        f.write(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UserError) as full:
        atomic.write_with(path, fills_the_disk, needed=5 * 1024**2, what="checkpoint")
    message = str(full.value)
    assert message.startswith(f"checkpoint {path}: no space left (needs about 5.0 MiB, ")
    assert "free on that file system); nothing was replaced" in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_torch_save_on_a_full_disk_is_recognised_through_its_runtime_error(tmp_path):
    def wrapped(f) -> None:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as e:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from e

    with pytest.raises(UserError, match="no space left"):
        atomic.write_with(tmp_path / "x.pt", wrapped)
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_larger_than_the_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    class Usage:
        free = 10 * 1024

    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: Usage)
    with pytest.raises(UserError, match=r"needs about 1\.[0-9] MiB, 10\.0 KiB free"):
        checkpoint.atomic_save({"format": 1, "w": torch.zeros(1000)}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []
