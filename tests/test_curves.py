"""Training curves: a readable PNG, written atomically, without touching the caller's backend."""

from __future__ import annotations

import matplotlib
import matplotlib.colors
import matplotlib.image
import matplotlib.text
import pytest
from matplotlib.figure import Figure

from ner.report.curves import curves_figure, plot_curves

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


def rising_history(epochs: int, steps_per_epoch: int, best: int) -> list[dict]:
    """A demo-like run: scores rise towards the top of the panel and peak at epoch `best`."""
    history = [
        e
        for e in make_history(epochs, steps_per_epoch)
        if "eval_f1" not in e and "best_epoch" not in e
    ]
    for epoch in range(1, epochs + 1):
        f1 = 0.96 - 0.5 / epoch**1.5 if epoch != best else 0.97
        history.append(
            {
                "epoch": float(epoch),
                "step": epoch * steps_per_epoch,
                "train_loss": 1.0 / epoch,
                "eval_loss": 0.5 / epoch,
                "eval_precision": f1 - 0.01,
                "eval_recall": f1 + 0.01,
                "eval_f1": f1,
                "eval_accuracy": 0.99 - 0.14 / epoch**2,  # near the top from epoch 3 on
            }
        )
    history.append(
        {
            "epoch": float(epochs),
            "step": epochs * steps_per_epoch,
            "train_runtime": 1.0,
            "best_epoch": float(best),
            "best_metric": 0.97,
            "monitor": "eval_f1",
        }
    )
    return sorted(history, key=lambda e: (e["step"], "eval_f1" in e, "best_epoch" in e))


def best_label_boxes(fig) -> list:
    """Window extents of every artist whose text names the best epoch (with its box, if any)."""
    renderer = fig.canvas.get_renderer()
    boxes = []
    for text in fig.findobj(matplotlib.text.Text):
        if "best epoch" in text.get_text() and text.get_visible():
            boxes.append(text.get_window_extent(renderer))
            patch = text.get_bbox_patch()
            if patch is not None:
                boxes.append(patch.get_window_extent(renderer))
    return boxes


@pytest.mark.parametrize("sets", [None, ["he", "ar"]], ids=["one set", "two sets"])
def test_best_epoch_label_covers_no_point_of_any_curve(sets):
    """The best epoch is usually among the last, where the scores are highest: its label must
    not be written over them (it was, in the panel's top corner beside the dashed line)."""
    history = rising_history(epochs=10, steps_per_epoch=6, best=9)
    if sets:
        for e in history:
            if "eval_f1" in e:
                e.update({"eval_he_f1": e["eval_f1"] + 0.01, "eval_ar_f1": e["eval_f1"] - 0.01})
    fig = curves_figure(history, sets)
    fig.canvas.draw()
    boxes = best_label_boxes(fig)
    assert boxes, "the best epoch is named somewhere"
    for ax in fig.axes:
        for line in ax.lines:
            if line.get_label().startswith("best epoch"):
                continue
            points = ax.transData.transform(line.get_xydata())
            for box in boxes:
                inside = [
                    tuple(line.get_xydata()[k])
                    for k, (x, y) in enumerate(points)
                    if box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1
                ]
                assert not inside, f"{line.get_label()!r}: points {inside} under the label"


def test_best_epoch_line_has_a_colour_no_curve_has():
    """It was tab:red, the colour of the accuracy curve."""
    for sets in (None, ["en", "he", "ar", "de", "ru", "fa", "x1", "x2", "x3", "x4"]):
        history = rising_history(epochs=4, steps_per_epoch=5, best=3)
        for e in history:
            if "eval_f1" in e:
                e.update({f"eval_{name}_f1": e["eval_f1"] for name in sets or []})
        fig = curves_figure(history, sets)
        for ax in fig.axes:
            best = [line for line in ax.lines if line.get_label().startswith("best epoch")]
            assert len(best) == 1
            mark = matplotlib.colors.to_rgba(best[0].get_color())
            for line in ax.lines:
                if line is not best[0]:
                    for color in (line.get_color(), line.get_markerfacecolor()):
                        assert matplotlib.colors.to_rgba(color) != mark, line.get_label()


@pytest.mark.parametrize("steps_per_epoch", [1, 6])
def test_one_epoch_axis_runs_from_0_to_1(steps_per_epoch):
    """A one-epoch run was drawn over a sliver around its points (ticks 0.96-1.04, or 0.2-1.0 and
    its validation points on the panel's edge); the axis runs from the start of training."""
    fig = curves_figure(rising_history(epochs=1, steps_per_epoch=steps_per_epoch, best=1))
    fig.canvas.draw()
    for ax in fig.axes:
        low, high = ax.get_xlim()
        assert low == 0 and 1 < high <= 1.1
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks[0] == 0 and ticks[-1] == 1 and len(ticks) >= 3, ticks


def test_longer_run_has_whole_epoch_ticks_from_0():
    fig = curves_figure(rising_history(epochs=10, steps_per_epoch=3, best=9))
    fig.canvas.draw()
    for ax in fig.axes:
        low, high = ax.get_xlim()
        assert low == 0 and 10 < high <= 11
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks[0] == 0 and ticks[-1] == 10 and all(t == int(t) for t in ticks), ticks
