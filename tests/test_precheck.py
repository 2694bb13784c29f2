"""What can be known before any work is one line before any work (ner/run/precheck.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import CONF, QUICK, compose
from test_rundir import fake_checkpoint

from ner.run.precheck import precheck


def check(*argv: str) -> str | None:
    return precheck(list(argv), str(CONF))


def test_a_monitor_the_run_does_not_log_is_refused_naming_the_choices():
    assert check("trainer.monitor=eval_bogus") == (
        "config: trainer.monitor=eval_bogus is not a metric the run logs; choose one of "
        "eval_loss, eval_precision, eval_recall, eval_f1, eval_accuracy"
    )
    assert check("trainer.monitor=eval_loss", "trainer.monitor_mode=min") is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_device_on_a_machine_without_one_is_refused():
    assert check("trainer.device=cuda") == (
        "config: trainer.device=cuda but this machine has no CUDA device; use "
        "trainer.device=auto or cpu"
    )


def test_a_sweep_is_checked_job_by_job(tmp_path, monkeypatch):
    # Valid only as a sweep: without data.train_file no job could run.
    monkeypatch.chdir(tmp_path)  # the files a sweep names must exist (issue 17)
    for name in ("a.conll", "b.conll"):
        (tmp_path / name).write_text("Moshe B-PER\n", encoding="utf-8")
    assert check("data.name=null", "data.train_file=a.conll,b.conll") is None
    assert check("trainer.batch_size=4,0", "seed=1,2") == (
        "config: trainer.batch_size=0 must be >= 1 (in the sweep job trainer.batch_size='0' "
        "seed='1')"
    )
    assert check("model.dropout=interval(0,0.2)", "optim.lr=tag(log,interval(1e-3,1e-2))") is None


def test_a_weights_only_checkpoint_is_refused_before_any_work(tmp_path):
    best = tmp_path / "checkpoints" / "best.pt"
    fake_checkpoint(best, compose(QUICK), resumable=False)
    problem = check(f"trainer.resume={best}")
    assert problem.startswith(f"checkpoint {best} holds the model weights only")


def test_a_hub_model_the_offline_cache_lacks_is_refused_before_any_work():
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache("xlm-roberta-base", "config.json"), str):
        pytest.skip("xlm-roberta-base is in this machine's Hugging Face cache")
    assert check("model=xlmr_base") == (
        "config: model.name_or_path=xlm-roberta-base: not a local directory, not in the Hugging "
        "Face cache, and the hub is offline (HF_HUB_OFFLINE); give a local directory: "
        "model.name_or_path=DIR"
    )


def test_offline_every_configuration_the_run_reads_is_checked(monkeypatch):
    # Training languages and evaluation sets alike, each once; a list is never passed as one.
    import ner.data.sources
    from ner.run.inputs import check_sources

    seen: list[tuple[str, str | None]] = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(ner.data.sources, "check_reachable", lambda name, c: seen.append((name, c)))
    check_sources(compose(["data=wikiann", "data.config=[he,ar]", "data.eval_configs=[ar,fa]"]))
    assert seen == [("unimelb-nlp/wikiann", c) for c in ("he", "ar", "fa")]
    seen.clear()
    check_sources(compose(["data=wikiann"]))
    assert seen == [("unimelb-nlp/wikiann", "he")]


def test_a_file_or_local_directory_that_is_not_there_is_one_line_before_any_work(tmp_path):
    here = tmp_path / "train.conll"
    here.write_text("Moshe B-PER\n", encoding="utf-8")
    base = ["data.name=null", f"data.train_file={here}"]
    assert check(*base, "data.validation_file=/nonexistent/dev.conll") == (
        "config: data.validation_file=/nonexistent/dev.conll: no such file"
    )
    assert check("data.name=null", f"data.train_file=[{here},/nonexistent/b.conll]") == (
        "config: data.train_file=/nonexistent/b.conll: no such file"
    )
    assert check("+data.extra_eval_files.news=/nonexistent/n.conll") == (
        "config: data.extra_eval_files.news=/nonexistent/n.conll: no such file"
    )
    assert check("model.name_or_path=/nonexistent/xlm-roberta-base") == (
        "config: model.name_or_path=/nonexistent/xlm-roberta-base: no such directory"
    )
    assert check("data.name=./no/wikiann", "data.config=he") == (
        "config: data.name=./no/wikiann: no such directory"
    )
    assert check(*base, f"data.validation_file={here}") is None


def test_a_run_dir_or_cache_dir_that_cannot_be_a_directory_is_one_line(tmp_path):
    taken = tmp_path / "a-file"
    taken.write_text("")
    assert check(f"hydra.run.dir={taken}") == (
        f"config: hydra.run.dir={taken}: cannot be the run directory ({taken} is a file)"
    )
    assert check(f"data.cache_dir={taken}/features") == (
        f"config: data.cache_dir={taken}/features: cannot be created ({taken} is a file); "
        "choose another directory, or data.cache_dir=null (no cache)"
    )
    assert check(f"hydra.run.dir={tmp_path}/new/run", f"data.cache_dir={tmp_path}/c") is None


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc")
def test_a_cache_dir_or_run_dir_where_no_directory_can_be_made_is_one_line():
    """/proc passes access() for root, yet refuses a new entry (issue 28: a FileNotFoundError
    traceback from the cache's mkdir)."""
    problem = check("data.cache_dir=/proc/nope")
    assert problem.startswith("config: data.cache_dir=/proc/nope: cannot be created (")
    assert problem.endswith("); choose another directory, or data.cache_dir=null (no cache)")
    assert check("hydra.run.dir=/proc/nope/run").startswith(
        "config: hydra.run.dir=/proc/nope/run: cannot be the run directory ("
    )
