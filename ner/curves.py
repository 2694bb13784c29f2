"""Training curves of a run (curves.png), drawn from its log history.

Uses `Figure` + `FigureCanvasAgg` directly rather than pyplot: no global state, no GUI, and a
caller's interactive backend (a notebook, say) is left as it was.
"""

from __future__ import annotations

import os

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ner import atomic, metrics
from ner.runlog import best_epoch, split_history


def plot_curves(
    history: list[dict], path: str | os.PathLike, sets: list[str] | None = None
) -> None:
    """Plot losses and validation metrics against epoch and write a PNG atomically to `path`.

    Left panel: per-step training loss (thin line), the epoch-mean training loss and the
    validation loss (markers, at the end of each epoch). Right panel: validation precision,
    recall, F1 and accuracy per epoch; with several evaluation sets (`sets`), the F1 of each and
    their mean. The best epoch is a dashed vertical line in both.
    """
    train, evals, _, final = split_history(history)
    if not train and not evals:
        raise ValueError("log history has neither train nor eval entries: nothing to plot")

    fig = Figure(figsize=(13, 5), layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax, metric_ax = fig.subplots(1, 2, sharex=True)
    epochs = [e["epoch"] for e in evals]

    if train:
        loss_ax.plot(
            [e["epoch"] for e in train],
            [e["loss"] for e in train],
            linewidth=0.6,
            alpha=0.5,
            color="tab:blue",
            label="train loss (per logged step)",
        )
    mean_points = [(e["epoch"], e["train_loss"]) for e in evals if e.get("train_loss") is not None]
    if mean_points:
        loss_ax.plot(
            *zip(*mean_points, strict=True),
            "o",
            color="tab:blue",
            markeredgecolor="black",
            label="train loss (epoch mean)",
        )
    if evals:
        loss_ax.plot(
            epochs,
            [e["eval_loss"] for e in evals],
            "s-",
            color="tab:orange",
            label="validation loss",
        )
        if sets:
            for name in sets:
                values = [e[f"eval_{name}_f1"] for e in evals]
                metric_ax.plot(epochs, values, "o-", markersize=3, label=f"F1 ({name})")
            mean = [e["eval_f1"] for e in evals]
            metric_ax.plot(epochs, mean, "k--", linewidth=1.5, label="F1 (mean)")
        else:  # every score (the loss has the left panel)
            for m in metrics.METRICS:
                if m.name != "loss":
                    values = [e[f"eval_{m.name}"] for e in evals]
                    metric_ax.plot(epochs, values, "o-", markersize=3, label=m.label)

        best, monitor, value = best_epoch(evals, final)
        # Put the label on the side of the line with more room, so it stays inside the panel.
        left_side = best["epoch"] > (min(epochs) + max(epochs)) / 2
        for ax in (loss_ax, metric_ax):
            _mark_best(
                ax,
                best["epoch"],
                f"best epoch {best['epoch']:g}\n{monitor} = {value:.4f}",
                left_side,
            )
    else:
        metric_ax.text(
            0.5, 0.5, "no validation yet", ha="center", va="center", transform=metric_ax.transAxes
        )

    loss_ax.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
    metric_ax.set(title="Validation metrics (entity-level)", xlabel="epoch", ylabel="score")
    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize="small")
    fig.suptitle(f"Training curves ({len(evals)} epoch(s) evaluated, {len(train)} train logs)")
    atomic.write_with(path, lambda f: fig.savefig(f, format="png", dpi=100), what="curves")


def _mark_best(ax: Axes, epoch: float, text: str, left_side: bool) -> None:
    ax.axvline(epoch, linestyle="--", color="tab:red", linewidth=1, label="best epoch")
    # Annotate in axes-fraction y so the label sits inside the panel whatever the data range.
    ax.annotate(
        text,
        xy=(epoch, 0.98),
        xycoords=("data", "axes fraction"),
        xytext=(-4 if left_side else 4, 0),
        textcoords="offset points",
        ha="right" if left_side else "left",
        va="top",
        fontsize="small",
        color="tab:red",
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
    )
