"""The Hugging Face Trainer side of the benchmark: transformers' `run_ner` recipe, condensed.

What `examples/pytorch/token-classification/run_ner.py` does, with its defaults:
- the first sub-token of each word carries the word's label, the other sub-tokens and the special
  tokens -100 (`label_all_tokens=False`); `padding=False`, `truncation=True` at the tokenizer's
  `model_max_length` (512 here, the length at which our loop windows), tokenized with
  `datasets.map(batched=True)`;
- `DataCollatorForTokenClassification` (dynamic padding; `pad_to_multiple_of` only under fp16);
- `TrainingArguments`: linear schedule, Adam betas 0.9/0.999, eps 1e-8, weight decay 0,
  max_grad_norm 1.0, evaluation every epoch, the library's default optimizer
  (`adamw_torch_fused` on torch >= 2.8);
- `compute_metrics`: argmax of the logits, positions with label -100 dropped, seqeval's overall
  precision/recall/F1/accuracy (what `evaluate.load("seqeval")` returns as `overall_*`; seqeval is
  called directly, with the same default mode, because `evaluate` would fetch its script).

Differences that are only about measuring: no checkpoints (`save_strategy="no"`), no progress
bars, no reporting integrations, and an `EpochTimer` callback. The sentences are read with
`ner.data.corpus.load_corpus`, so both systems see exactly the same (validated) sentences.

Training time: `trainer.train()`'s `train_runtime` includes the per-epoch evaluations when
`eval_strategy="epoch"`. The Trainer calls `on_epoch_end` *before* it evaluates, so the time from
`on_epoch_begin` to `on_epoch_end` is pure training (data, forward, backward, optimizer,
logging); `train_seconds` is the sum over epochs. `train_runtime - sum(eval_runtime)` is written
too, as a cross-check.

    HF_HUB_OFFLINE=1 python experiments/benchmark/trainer_run_ner.py --model DIR --out result.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from build_model import data_config, default_data  # noqa: E402
from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)


class EpochTimer(TrainerCallback):
    """Seconds from on_epoch_begin to on_epoch_end: training only (evaluation comes after)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)


def tokenize_and_align_labels(examples: dict, tokenizer) -> dict:
    """run_ner's function: label the first sub-token of each word, -100 elsewhere."""
    enc = tokenizer(examples["tokens"], padding=False, truncation=True, is_split_into_words=True)
    labels = []
    for i, word_labels in enumerate(examples["ner_tags"]):
        previous, ids = None, []
        for word in enc.word_ids(batch_index=i):
            ids.append(-100 if word is None or word == previous else word_labels[word])
            previous = word
        labels.append(ids)
    enc["labels"] = labels
    return enc


def metrics_fn(label_list: list[str]):
    """run_ner's compute_metrics (return_entity_level_metrics=False)."""

    def compute_metrics(p) -> dict:
        predictions, labels = p
        predictions = np.argmax(predictions, axis=2)
        pred = [
            [label_list[q] for q, g in zip(ps, gs, strict=True) if g != -100]
            for ps, gs in zip(predictions, labels, strict=True)
        ]
        gold = [
            [label_list[g] for q, g in zip(ps, gs, strict=True) if g != -100]
            for ps, gs in zip(predictions, labels, strict=True)
        ]
        return {
            "precision": precision_score(gold, pred, zero_division=0),
            "recall": recall_score(gold, pred, zero_division=0),
            "f1": f1_score(gold, pred, zero_division=0),
            "accuracy": accuracy_score(gold, pred),
        }

    return compute_metrics


def sampling_args(group_by_length: bool) -> dict:
    """`group_by_length=True` is `train_sampling_strategy="group_by_length"` in transformers 5."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "train_sampling_strategy" in names:
        return {"train_sampling_strategy": "group_by_length" if group_by_length else "random"}
    return {"group_by_length": group_by_length}


def run(a: argparse.Namespace) -> dict:
    import datasets

    if a.threads:
        torch.set_num_threads(a.threads)
    set_seed(a.seed)  # run_ner seeds before it builds anything
    name, config = (a.data, a.data_config) if a.data else default_data()
    from ner.data.corpus import load_corpus

    corpus = load_corpus(data_config(name, config, a.max_train_samples, a.max_eval_samples))
    [(_, train)], [held_out] = corpus.train, corpus.eval_sets  # one source, one set
    label_list = corpus.labels
    label_id = {n: i for i, n in enumerate(label_list)}
    raw = {
        split: datasets.Dataset.from_dict(
            {
                "tokens": [s.tokens for s in sents],
                "ner_tags": [[label_id[t] for t in s.tags] for s in sents],
            }
        )
        for split, sents in (("train", train), ("validation", held_out.sentences["validation"]))
    }
    tokenizer = AutoTokenizer.from_pretrained(a.model)
    model_config = AutoConfig.from_pretrained(
        a.model,
        num_labels=len(label_list),
        id2label=dict(enumerate(label_list)),
        label2id=label_id,
        finetuning_task="ner",
    )
    model = AutoModelForTokenClassification.from_pretrained(a.model, config=model_config)
    encoded = {
        split: ds.map(
            tokenize_and_align_labels,
            batched=True,
            fn_kwargs={"tokenizer": tokenizer},
            remove_columns=ds.column_names,
            desc=f"tokenize {split}",
        )
        for split, ds in raw.items()
    }
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this machine has no CUDA device")
    cpu = a.device == "cpu" or not torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as out_dir:
        args = TrainingArguments(
            output_dir=out_dir,
            eval_strategy="epoch",
            save_strategy="no",
            per_device_train_batch_size=a.batch_size,
            per_device_eval_batch_size=a.eval_batch_size or a.batch_size,
            learning_rate=a.lr,
            num_train_epochs=a.epochs,
            lr_scheduler_type="linear",
            warmup_steps=a.warmup_steps,
            adam_beta1=0.9,
            adam_beta2=0.999,
            adam_epsilon=1e-8,
            weight_decay=0.0,
            max_grad_norm=1.0,
            seed=a.seed,
            report_to=[],
            dataloader_num_workers=0,
            disable_tqdm=True,
            use_cpu=cpu,
            bf16=a.bf16,
            **sampling_args(a.group_by_length),
        )
        timer = EpochTimer()
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=encoded["train"],
            eval_dataset=encoded["validation"],
            processing_class=tokenizer,
            data_collator=DataCollatorForTokenClassification(tokenizer),
            compute_metrics=metrics_fn(label_list),
            callbacks=[timer],
        )
        out = trainer.train()
    history = trainer.state.log_history
    evals = [e for e in history if "eval_f1" in e]
    n_train, seconds = len(encoded["train"]), sum(timer.seconds)
    eval_seconds = sum(e["eval_runtime"] for e in evals)
    return {
        "system": "trainer_gbl" if a.group_by_length else "trainer",
        "n_train": n_train,
        "n_eval": len(encoded["validation"]),
        "epochs": a.epochs,
        "train_seconds": seconds,
        "train_samples_per_second": n_train * a.epochs / seconds,
        "steps": trainer.state.global_step,  # optimizer steps in train_seconds
        "epoch_seconds": timer.seconds,
        "trainer_train_runtime": out.metrics["train_runtime"],
        "train_runtime_minus_eval": out.metrics["train_runtime"] - eval_seconds,
        "eval": [
            {
                k: e[k]
                for k in (
                    "epoch",
                    "eval_loss",
                    "eval_precision",
                    "eval_recall",
                    "eval_f1",
                    "eval_accuracy",
                    "eval_runtime",
                    "eval_samples_per_second",
                )
            }
            for e in evals
        ],
        "log_history": history,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model directory (build_model.py)")
    p.add_argument("--out", type=Path, required=True, help="result JSON to write")
    p.add_argument("--data", default=None, help="data.name (default: ../shared/wikiann or demo)")
    p.add_argument("--data-config", default=None)
    p.add_argument("--max-train-samples", type=int, default=None)
    p.add_argument("--max-eval-samples", type=int, default=None)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--eval-batch-size", type=int, default=None, help="default: --batch-size")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--group-by-length", action="store_true")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPU)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    result = run(a)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{result['system']}: {result['train_samples_per_second']:.1f} train sentences/s, "
        f"final eval F1 {result['eval'][-1]['eval_f1']:.4f}"
    )


if __name__ == "__main__":
    main()
