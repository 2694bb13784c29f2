"""Training curves: a readable PNG, written atomically, without touching the caller's backend."""

from __future__ import annotations

import matplotlib
import matplotlib.image
import pytest
from matplotlib.figure import Figure

from ner.curves import plot_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_history(epochs: int = 8, steps_per_epoch: int = 20) -> list[dict]:
    """A plausible run: falling train loss, validation loss with a minimum, metrics that peak."""
    history: list[dict] = []
    for epoch in range(1, epochs + 1):
        losses = []
        for i in range(1, steps_per_epoch + 1):
            step = (epoch - 1) * steps_per_epoch + i
            losses.append(1.5 / (1 + 0.05 * step) + 0.05 * (i % 3))
            history.append(
                {
                    "loss": losses[-1],
                    "learning_rate": 2e-5,
                    "epoch": step / steps_per_epoch,
                    "step": step,
                }
            )
        f1 = 0.6 + 0.25 * (1 - abs(epoch - 5) / 5)
        history.append(
            {
                "epoch": float(epoch),
                "step": epoch * steps_per_epoch,
                "train_loss": sum(losses) / len(losses),
                "eval_loss": 0.4 + 0.02 * (epoch - 4) ** 2,
                "eval_precision": f1 + 0.01,
                "eval_recall": f1 - 0.01,
                "eval_f1": f1,
                "eval_accuracy": 0.9 + 0.01 * f1,
            }
        )
    history.append(
        {
            "epoch": float(epochs),
            "step": epochs * steps_per_epoch,
            "train_runtime": 9.0,
            "best_epoch": 5.0,
            "best_metric": 0.85,
            "monitor": "eval_f1",
        }
    )
    return history


def test_writes_png_of_expected_size(tmp_path):
    backend = matplotlib.get_backend()
    path = tmp_path / "run" / "curves.png"
    plot_curves(make_history(), path)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 20_000  # two panels of lines and text, not an empty canvas
    image = matplotlib.image.imread(path)
    assert image.shape == (500, 1300, 4)  # figsize (13, 5) at 100 dpi, RGBA
    # Not one flat colour: something was drawn.
    assert image[..., :3].std() > 0.05
    assert [p.name for p in path.parent.iterdir()] == ["curves.png"]  # no temp file left
    assert matplotlib.get_backend() == backend


def test_train_only_history_still_plots(tmp_path):
    history = [e for e in make_history() if "loss" in e and "eval_f1" not in e]
    path = tmp_path / "curves.png"
    plot_curves(history, path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_empty_history_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_curves([], tmp_path / "curves.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "curves.png"
    path.write_bytes(b"old")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", fail)
    with pytest.raises(OSError, match="disk full"):
        plot_curves(make_history(), path)
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]
