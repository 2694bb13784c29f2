"""Model card: exact table formatting, front matter, best epoch, and reading tables back."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from card_table import parse_results_table

from ner.report.card import render_card, without_front_matter

# The published card this project reproduces, shipped with the repository.
REFERENCE_CARD = Path(__file__).resolve().parent.parent / "experiments/reference/model_card.md"


def _per_type(p: float, r: float, f: float, support: int) -> dict:
    return {"precision": p, "recall": r, "f1": f, "support": support}


def make_history() -> list[dict]:
    """Three epochs of 10 steps, a test entry and a final entry naming epoch 2 as best."""
    history: list[dict] = []
    evals = [
        # 0.86555 -> "0.8656", 0.12345 -> "0.1235", 0.00015 -> "0.0001", 0.99995 -> "1.0000":
        # the card rounds like Python's f"{x:.4f}" (round-half-even on the binary value).
        (1.0, 10, 0.86555, 0.5, 0.12345, 0.00015, 0.7, 0.99995),
        (2.0, 20, 0.4, 0.3, 0.8, 0.75, 0.77419, 0.95),
        (3.0, 30, 0.2, 0.35, 0.81, 0.7, 0.751, 0.94),
    ]
    for epoch, step, train_loss, loss, p, r, f1, acc in evals:
        for s in range(step - 9, step + 1, 3):
            history.append({"loss": 1.0 / s, "learning_rate": 1e-5, "epoch": s / 10, "step": s})
        history.append(
            {
                "epoch": epoch,
                "step": step,
                "train_loss": train_loss,
                "eval_loss": loss,
                "eval_precision": p,
                "eval_recall": r,
                "eval_f1": f1,
                "eval_accuracy": acc,
                "eval_runtime": 1.5,
                "eval_samples_per_second": 100.0,
                "eval_per_type": {
                    "PER": _per_type(0.9, 0.8, 0.84706, 120),
                    "ORG": _per_type(0.6, 0.55, 0.57391, 80),
                    "LOC": _per_type(0.85, 0.9, 0.87429, 150),
                },
            }
        )
    history.append(
        {
            "epoch": 3.0,
            "step": 30,
            "test_loss": 0.33,
            "test_precision": 0.79,
            "test_recall": 0.74,
            "test_f1": 0.76418,
            "test_accuracy": 0.93,
            "test_per_type": {"PER": _per_type(0.88, 0.81, 0.84357, 118)},
        }
    )
    history.append(
        {
            "epoch": 3.0,
            "step": 30,
            "train_runtime": 12.34,
            "train_samples_per_second": 7.5,
            "best_epoch": 2.0,
            "best_metric": 0.77419,
            "monitor": "eval_f1",
        }
    )
    return history


def _eval_index(history: list[dict], epoch: float) -> int:
    [index] = [i for i, e in enumerate(history) if "eval_f1" in e and e["epoch"] == epoch]
    return index


def make_info(**overrides) -> dict:
    info = {
        "model_name": "xlm-roberta-base-finetuned-ner",
        "base_model": "xlm-roberta-base",
        "encoder": "XLM-RoBERTa",
        "dataset_name": "wikiann",
        "dataset_config": "he",
        "hyperparameters": {
            "learning_rate": 2e-05,
            "train_batch_size": 3,
            "seed": 42,
            "optimizer": "Adam with betas=(0.9,0.999) and epsilon=1e-08",
            "num_epochs": 3,
        },
        "versions": {"Transformers": "5.24.0", "Pytorch": "2.13.0", "seqeval": "1.2.2"},
        "data_summary": "WikiANN he: 20000 train, 10000 validation sentences.",
        "command": "ner-train experiment=wikiann_he_card",
    }
    info.update(overrides)
    return info


EXPECTED_TABLE = """\
| Training Loss | Epoch | Step | Validation Loss | Precision | Recall | F1     | Accuracy |
|:-------------:|:-----:|:----:|:---------------:|:---------:|:------:|:------:|:--------:|
| 0.8656        | 1.0   | 10   | 0.5000          | 0.1235    | 0.0001 | 0.7000 | 1.0000   |
| 0.4000        | 2.0   | 20   | 0.3000          | 0.8000    | 0.7500 | 0.7742 | 0.9500   |
| 0.2000        | 3.0   | 30   | 0.3500          | 0.8100    | 0.7000 | 0.7510 | 0.9400   |
"""


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_without_front_matter_keeps_the_markdown_from_the_title_on():
    card = render_card(make_history(), make_info())
    body = without_front_matter(card)
    assert body.startswith("# xlm-roberta-base-finetuned-ner\n") and card.endswith(body)
    assert "model-index" not in body and front_matter(card)["model-index"]
    assert without_front_matter(body) == body  # a text without front matter is left as it is


def test_results_table_matches_expected_markdown_exactly():
    card = render_card(make_history(), make_info())
    assert "### Training results\n\n" + EXPECTED_TABLE in card


def test_eval_entries_out_of_order_are_tabled_by_epoch():
    history = make_history()
    first, second = _eval_index(history, 1.0), _eval_index(history, 2.0)
    history[first], history[second] = history[second], history[first]
    assert EXPECTED_TABLE in render_card(history, make_info())


def test_summary_is_the_final_epoch():
    card = render_card(make_history(), make_info())
    summary = card.split("It achieves the following results on the evaluation set:\n")[1]
    assert summary.startswith(
        "- Loss: 0.3500\n- Precision: 0.8100\n- Recall: 0.7000\n- F1: 0.7510\n- Accuracy: 0.9400\n"
    )
    assert card.splitlines()[card.splitlines().index("---", 1) + 2] == (
        "# xlm-roberta-base-finetuned-ner"
    )


def test_front_matter_holds_final_validation_metrics():
    meta = front_matter(render_card(make_history(), make_info()))
    assert "generated_by_ner" in meta["tags"]
    assert meta["datasets"] == ["wikiann"]
    assert meta["metrics"] == ["precision", "recall", "f1", "accuracy"]
    [entry] = meta["model-index"]
    assert entry["name"] == "xlm-roberta-base-finetuned-ner"
    [result] = entry["results"]
    assert result["task"] == {"name": "Token Classification", "type": "token-classification"}
    assert result["dataset"]["name"] == "wikiann"
    assert result["dataset"]["type"] == "wikiann"
    assert result["dataset"]["config"] == "he" and result["dataset"]["args"] == "he"
    metrics = {m["type"]: m for m in result["metrics"]}
    # Full precision, straight from the last eval entry (not rounded, not the best epoch).
    assert {k: m["value"] for k, m in metrics.items()} == {
        "precision": 0.81,
        "recall": 0.7,
        "f1": 0.751,
        "accuracy": 0.94,
        "loss": 0.35,
    }
    assert metrics["f1"]["name"] == "F1"


def test_front_matter_without_dataset_config():
    meta = front_matter(render_card(make_history(), make_info(dataset_config=None)))
    dataset = meta["model-index"][0]["results"][0]["dataset"]
    assert "config" not in dataset and "args" not in dataset


def test_sections_in_reference_order_then_extras():
    card = render_card(make_history(), make_info())
    headings = [line for line in card.splitlines() if line.startswith("#")]
    assert headings == [
        "# xlm-roberta-base-finetuned-ner",
        "## Model description",
        "## Intended uses & limitations",
        "## Training and evaluation data",
        "## Training procedure",
        "### Training hyperparameters",
        "### Training results",
        "## Best epoch",
        "## Test results",
        "## Per-type results",
        "### Framework versions",
    ]
    assert "- learning_rate: 2e-05\n- train_batch_size: 3\n- seed: 42\n" in card
    assert "- optimizer: Adam with betas=(0.9,0.999) and epsilon=1e-08\n" in card
    assert "```bash\nner-train experiment=wikiann_he_card\n```" in card
    assert "WikiANN he: 20000 train, 10000 validation sentences." in card
    assert card.endswith("- Transformers 5.24.0\n- Pytorch 2.13.0\n- seqeval 1.2.2\n")


def test_best_epoch_comes_from_final_entry():
    card = render_card(make_history(), make_info())
    assert "Best epoch by `eval_f1`: epoch 2.0 (step 20), eval_f1 = 0.7742." in card
    assert "Training time: 12.3 s (7.5 samples/s)." in card


def test_best_epoch_follows_monitor_even_if_not_max_f1():
    history = make_history()
    history[-1].update(best_epoch=1.0, best_metric=0.5, monitor="eval_loss")
    card = render_card(history, make_info())
    best = card.split("## Best epoch\n\n")[1]
    assert best.startswith("Best epoch by `eval_loss`: epoch 1.0 (step 10), eval_loss = 0.5000.")
    assert "- F1: 0.7000" in best.split("##")[0]


def test_best_epoch_falls_back_to_max_f1_without_final_entry():
    history = [e for e in make_history() if "best_epoch" not in e]
    card = render_card(history, make_info())
    assert "by `eval_f1` (the run wrote no final log entry yet): epoch 2.0 (step 20)" in card
    assert "Training time" not in card


def test_best_epoch_without_eval_entry_is_an_error():
    history = make_history()
    history[-1]["best_epoch"] = 7.0
    with pytest.raises(ValueError, match="best_epoch 7.0"):
        render_card(history, make_info())


def test_test_results_and_per_type_tables():
    card = render_card(make_history(), make_info())
    assert (
        "## Test results\n\nEvaluated on the test split (log entry at epoch 3.0, step 30):\n"
        in card
    )
    assert "- Loss: 0.3300\n- Precision: 0.7900\n- Recall: 0.7400\n- F1: 0.7642\n" in card
    assert (
        "Validation, epoch 3.0:\n\n"
        "| Type | Precision | Recall | F1     | Support |\n"
        "|:----:|:---------:|:------:|:------:|:-------:|\n"
        "| PER  | 0.9000    | 0.8000 | 0.8471 | 120     |\n"
        "| ORG  | 0.6000    | 0.5500 | 0.5739 | 80      |\n"
        "| LOC  | 0.8500    | 0.9000 | 0.8743 | 150     |\n"
    ) in card
    assert "Test:\n\n| Type | Precision | Recall | F1     | Support |" in card
    assert "| PER  | 0.8800    | 0.8100 | 0.8436 | 118     |" in card


def test_no_test_entry_means_no_test_section():
    history = [e for e in make_history() if "test_loss" not in e]
    card = render_card(history, make_info(data_summary=None, command=None))
    assert "## Test results" not in card and "Test:" not in card
    assert "## Training and evaluation data\n\nMore information needed\n" in card
    assert "```" not in card


def test_no_eval_entry_is_a_value_error():
    history = [e for e in make_history() if "eval_f1" not in e]
    with pytest.raises(ValueError, match="no eval entry"):
        render_card(history, make_info())


def test_duplicate_epoch_is_a_value_error():
    history = make_history()
    history.insert(-2, copy.deepcopy(history[_eval_index(history, 1.0)]))
    with pytest.raises(ValueError, match=r"epoch\(s\) \[1.0\]"):
        render_card(history, make_info())


def test_round_trip_equals_log_history_to_four_decimals():
    history = make_history()
    rows = parse_results_table(render_card(history, make_info()))
    keys = ["train_loss", "epoch", "step", "eval_loss", "eval_precision"]
    keys += ["eval_recall", "eval_f1", "eval_accuracy"]
    expected = [
        {k: e[k] if k == "step" else round(e[k], 4) for k in keys}
        for e in history
        if "eval_f1" in e
    ]
    assert rows == expected
    assert isinstance(rows[0]["step"], int)


def test_missing_train_loss_is_no_log():
    history = make_history()
    del history[_eval_index(history, 1.0)]["train_loss"]
    card = render_card(history, make_info())
    assert "| No log        | 1.0   | 10   |" in card
    assert parse_results_table(card)[0]["train_loss"] is None


def test_parse_reference_card():
    rows = parse_results_table(REFERENCE_CARD.read_text())
    assert len(rows) == 100
    assert rows[0] == {
        "train_loss": 0.3537,
        "epoch": 1.0,
        "step": 6667,
        "eval_loss": 0.3621,
        "eval_precision": 0.7951,
        "eval_recall": 0.8054,
        "eval_f1": 0.8002,
        "eval_accuracy": 0.9187,
    }
    assert rows[-1]["epoch"] == 100.0 and rows[-1]["step"] == 666700
    assert rows[-1]["eval_f1"] == 0.8670
    assert rows[90]["train_loss"] == 0.008  # the reference writes "0.008", we write "0.0080"


def test_reference_table_survives_render_and_parse():
    """A history rebuilt from the reference table renders to a table with the same numbers."""
    rows = parse_results_table(REFERENCE_CARD.read_text())
    card = render_card([dict(r) for r in rows], make_info())
    assert parse_results_table(card) == rows
    assert "| 0.0173        | 100.0 | 666700 | 0.5647          | 0.8684    | 0.8656 |" in card
    assert "per-type scores were not logged" in card


@pytest.mark.parametrize(
    "text, message",
    [
        ("# a card without a table\n", "no 'Training results' table"),
        (EXPECTED_TABLE.replace("| 0.7000 |", "| n/a    |"), "eval_f1 is not a number"),
        (EXPECTED_TABLE.replace("| 0.5000          |", ""), "card line 3: expected 8 cells"),
    ],
)
def test_parse_rejects_bad_tables(text, message):
    with pytest.raises(ValueError, match=message):
        parse_results_table(text)


KNOBS = {  # issue 20's keys: override -> (card key, card value, dashboard key, dashboard value)
    "optim.schedule=cosine": ("lr_scheduler_type", "cosine", "schedule", "cosine"),
    "optim.warmup_ratio=0.1": ("lr_scheduler_warmup_ratio", 0.1, "warmup_ratio", 0.1),
    "optim.label_smoothing=0.1": ("label_smoothing_factor", 0.1, "label_smoothing", 0.1),
    "optim.class_weights=inverse_frequency": (
        "class_weights",
        "inverse_frequency",
        "class_weights",
        "inverse_frequency",
    ),
    "trainer.gradient_checkpointing=true": (
        "gradient_checkpointing",
        True,
        "gradient_checkpointing",
        True,
    ),
}


@pytest.mark.parametrize("override", sorted(KNOBS))
def test_each_recipe_knob_is_on_the_card_and_the_dashboard(override):
    from conftest import compose

    from ner.distributed import Env
    from ner.report.hparams import card_hyperparameters, dashboard_hyperparameters

    card_key, card_value, dashboard_key, dashboard_value = KNOBS[override]
    default = card_hyperparameters(compose(["experiment=demo"]), Env())
    cfg = compose(["experiment=demo", override])
    assert card_hyperparameters(cfg, Env())[card_key] == card_value
    assert dashboard_hyperparameters(cfg, Env())[dashboard_key] == dashboard_value
    if card_key != "lr_scheduler_type":  # the reference card's list, unless the knob is set
        assert card_key not in default
