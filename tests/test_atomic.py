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
        checkpoint.atomic_save({"format": 1, "w": torch.zeros(300_000)}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []


def training_state(
    hidden: int, log_entries: int
) -> tuple[torch.nn.Module, torch.optim.Optimizer, dict]:
    """A tiny XLM-R after one AdamW step, and a last.pt's dict of it (ner/checkpoint.py
    TrainState.save) with `log_entries` train entries in its history."""
    import random

    import transformers

    config = transformers.XLMRobertaConfig(
        vocab_size=1000,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=130,
        num_labels=7,
    )
    torch.manual_seed(0)
    model = transformers.XLMRobertaForTokenClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.tensor([[0, 5, 6, 2]]), labels=torch.tensor([[0, 1, 2, 0]])).loss.backward()
    optimizer.step()
    history = [
        {"loss": 1.0 / (i + 1), "learning_rate": 1e-3, "epoch": i / 100, "step": i}
        for i in range(log_entries)
    ]
    last = {
        "format": 1,
        "model": model.state_dict(),
        "labels": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
        "config": "trainer:\n  epochs: 3\n" * 100,
        "progress": {"epoch": 1, "global_step": 3},
        "optimizer": optimizer.state_dict(),
        "scheduler": {"last_epoch": 3, "base_lrs": [1e-3]},
        "scaler": {},
        "history": history,
        "rng": [{"torch": torch.get_rng_state(), "python": random.getstate()}],
        "data": {"train": "0" * 32},
    }
    return model, optimizer, last


@pytest.mark.parametrize(
    "hidden,log_entries",
    [(32, 10), (64, 10_000), (256, 100)],  # 0.4 MiB, 1.6 MiB with a long log, 27 MiB
)
def test_the_free_space_estimate_is_the_checkpoint_size_or_a_little_more(
    tmp_path, hidden, log_entries
):
    """What the free-space check asks for is at least what torch.save writes (else a full disk
    is found only by the write) and not much more (else a checkpoint that fits is refused)."""
    from ner.disk_size import saved_bytes

    _, _, last = training_state(hidden, log_entries)
    weights = {"format": 1, "model": last["model"], "labels": last["labels"]}
    view = {"w": torch.zeros(100_000)[:10]}  # torch.save writes the whole storage of a view
    for state in (last, weights, view, {}):
        torch.save(state, tmp_path / "x.pt")
        size = (tmp_path / "x.pt").stat().st_size
        assert size <= saved_bytes(state) <= size * 1.02 + 32 * 1024, (size, saved_bytes(state))


def test_the_free_space_estimate_of_sharded_checkpoints_is_their_size_or_a_little_more(tmp_path):
    import torch.distributed.checkpoint as dcp

    from ner.disk_size import dcp_bytes
    from ner.sharded_checkpoint import _state

    for hidden in (32, 256):
        model, optimizer, _ = training_state(hidden, 0)
        state = _state(model, optimizer)
        shards = tmp_path / f"shards-{hidden}"
        dcp.save(state, checkpoint_id=shards, no_dist=True)
        size = sum(f.stat().st_size for f in shards.rglob("*") if f.is_file())
        assert size <= dcp_bytes(state, 1) <= size * 1.1 + 64 * 1024, (size, dcp_bytes(state, 1))


def test_a_checkpoint_that_fits_the_free_space_is_written(tmp_path, monkeypatch):
    """Issue 28: a 1.2 MiB checkpoint with 1.7 MiB free was refused (the estimate added 1 MiB)."""
    state = {"format": 1, "w": torch.zeros(315_000)}  # 1.2 MiB
    free = int(1.7 * 1024**2)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: type("Usage", (), {"free": free}))
    checkpoint.atomic_save(state, tmp_path / "last.pt")
    assert (tmp_path / "last.pt").stat().st_size < free
    assert torch.equal(checkpoint.load(tmp_path / "last.pt")["w"], state["w"])
