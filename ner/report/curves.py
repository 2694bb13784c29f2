"""Training curves of a run (curves.png), drawn from its log history.

Uses `Figure` + `FigureCanvasAgg` directly rather than pyplot: no global state, no GUI, and a
caller's interactive backend (a notebook, say) is left as it was.

Nothing is written over the data: the legends sit below the panels, and the best epoch is named
in the legend entry of its dashed line (the best epoch is usually among the last, where the
scores are highest, so a label inside the panel would hide them). The best-epoch line has a
colour no curve has.
"""

from __future__ import annotations

import os

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TABLEAU_COLORS
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ner import atomic, metrics
from ner.report.history import best_epoch, split_history

BEST_COLOR = "tab:red"
# The curves' colours, in order: the Tableau palette without the best epoch's.
CURVE_COLORS = [c for c in TABLEAU_COLORS if c != BEST_COLOR]


def plot_curves(
    history: list[dict], path: str | os.PathLike, sets: list[str] | None = None
) -> None:
    """Draw `curves_figure(history, sets)` and write it as a PNG atomically to `path`."""
    fig = curves_figure(history, sets)
    atomic.write_with(path, lambda f: fig.savefig(f, format="png", dpi=100), what="curves")


def curves_figure(history: list[dict], sets: list[str] | None = None) -> Figure:
    """Losses and validation metrics against epoch, as a Figure (13 x 5 inches).

    Left panel: per-step training loss (thin line), the epoch-mean training loss and the
    validation loss (markers, at the end of each epoch). Right panel: validation precision,
    recall, F1 and accuracy per epoch; with several evaluation sets (`sets`), the F1 of each and
    their mean. The best epoch is a dashed vertical line in both. The epoch axis runs from 0
    (the start of training) to the last epoch logged, so a one-epoch run is drawn over [0, 1].
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
            color=CURVE_COLORS[0],
            label="train loss (per logged step)",
        )
    mean_points = [(e["epoch"], e["train_loss"]) for e in evals if e.get("train_loss") is not None]
    if mean_points:
        loss_ax.plot(
            *zip(*mean_points, strict=True),
            "o",
            color=CURVE_COLORS[0],
            markeredgecolor="black",
            label="train loss (epoch mean)",
        )
    if evals:
        loss_ax.plot(
            epochs,
            [e["eval_loss"] for e in evals],
            "s-",
            color=CURVE_COLORS[1],
            label="validation loss",
        )
        if sets:
            curves = [(f"eval_{name}_f1", f"F1 ({name})") for name in sets]
        else:  # every score (the loss has the left panel)
            curves = [(f"eval_{m.name}", m.label) for m in metrics.METRICS if m.name != "loss"]
        for k, (key, label) in enumerate(curves):
            color = CURVE_COLORS[k % len(CURVE_COLORS)]
            values = [e[key] for e in evals]
            metric_ax.plot(epochs, values, "o-", markersize=3, color=color, label=label)
        if sets:
            mean = [e["eval_f1"] for e in evals]
            metric_ax.plot(epochs, mean, "k--", linewidth=1.5, label="F1 (mean)")

        best, monitor, value = best_epoch(evals, final)
        label = f"best epoch {best['epoch']:g} ({monitor} = {value:.4f})"
        for ax in (loss_ax, metric_ax):
            # Under the curves (zorder 1 < 2), so the points of the best epoch stay visible.
            ax.axvline(
                best["epoch"], linestyle="--", color=BEST_COLOR, linewidth=1, zorder=1, label=label
            )
    else:
        metric_ax.text(
            0.5, 0.5, "no validation yet", ha="center", va="center", transform=metric_ax.transAxes
        )

    loss_ax.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
    metric_ax.set(title="Validation metrics (entity-level)", xlabel="epoch", ylabel="score")
    last = max([e["epoch"] for e in train] + epochs)
    loss_ax.set_xlim(0, _with_margin(last))  # shared: both panels
    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
        # Whole epochs; a run shorter than two epochs gets fractions that divide 1 (0, 0.2, ...).
        ax.xaxis.set_major_locator(MaxNLocator(integer=last >= 2, steps=[1, 2, 2.5, 5, 10]))
        _legend_below(ax)
    fig.suptitle(f"Training curves ({len(evals)} epoch(s) evaluated, {len(train)} train logs)")
    return fig


def _with_margin(last: float) -> float:
    """The right end of the epoch axis: the last epoch and 3% of it, so its points are inside."""
    return max(last, 1.0) * 1.03


def _legend_below(ax: Axes) -> None:
    """The legend under the panel, in up to three columns: it never covers a curve."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            ncol=min(3, len(handles)),
            fontsize="small",
            frameon=False,
        )
