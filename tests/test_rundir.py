"""Where a run starts, and what a refused run leaves behind: nothing (fake checkpoints, no model)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml
from conftest import QUICK, compose
from omegaconf import OmegaConf

from ner import checkpoint, config
from ner.distributed import Env
from ner.errors import UserError
from ner.run import stamp
from ner.run.rundir import RunDir
from ner.run.stamp import run_stamp
from ner.run.start import decide
from ner.train import train


def fake_checkpoint(path: Path, cfg, epoch: int = 2, resumable: bool = True) -> None:
    """A checkpoint as the loop writes it, minus the weights: enough to decide a start."""
    ckpt = {
        "format": checkpoint.FORMAT_VERSION,
        "model": {"w": torch.zeros(3)},
        "labels": ["O"],
        "config": OmegaConf.to_yaml(cfg, resolve=True),
        "progress": {"epoch": epoch, "global_step": 60, "evals_without_improvement": 0},
        "rng": [{}],  # one process's streams: it ran on 1 process
    }
    if resumable:
        ckpt["optimizer"] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)


@pytest.fixture
def finished_run(tmp_path):
    """A run directory whose run finished (2 epochs of QUICK), as the files show it."""
    cfg = compose(QUICK)
    run = tmp_path / "run"
    fake_checkpoint(run / "checkpoints" / "last.pt", cfg)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (run / "run_info.json").write_text('{"command": "the first launch"}\n')
    (run / "result.json").write_text('{"status": "finished", "best": 0.5, "monitor": "eval_f1"}')
    (run / "train.log").write_text("epoch 1: ...\n")
    return run


def snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under `directory` with its mode and bytes (directories: empty bytes)."""
    return {
        str(p.relative_to(directory)): (p.stat().st_mode, b"" if p.is_dir() else p.read_bytes())
        for p in sorted(directory.rglob("*"))
    }


@pytest.mark.parametrize(
    "overrides,refusal",
    [
        (["optim.lr=0.5"], "made with another configuration \\(optim.lr: 0.003 -> 0.5\\)"),
        (["trainer.resume=never"], "already holds a checkpoint"),
        (["trainer.epochs=1"], "a run can be extended, not shortened"),
    ],
)
def test_a_refused_run_changes_no_byte_of_the_directory(finished_run, overrides, refusal):
    before = snapshot(finished_run)
    with pytest.raises(UserError, match=refusal):
        train(compose([*QUICK, *overrides]), Env(), finished_run)
    assert snapshot(finished_run) == before


def test_a_finished_run_rerun_with_the_same_command_does_nothing(finished_run, capsys):
    before = snapshot(finished_run)
    assert train(compose(QUICK), Env(), finished_run) == 0.5
    assert "holds a finished run" in capsys.readouterr().out
    assert snapshot(finished_run) == before


def test_an_accepted_attempt_is_recorded_and_the_first_launch_kept(finished_run):
    cfg = compose([*QUICK, "trainer.epochs=3", "trainer.log_every=7"])
    with RunDir(finished_run, Env()) as owner:
        start = owner.start(cfg)
        assert start.kind == "resume" and start.path == finished_run / "checkpoints/last.pt"
        owner.accept(cfg, start)
    attempt = finished_run / "attempts" / "1"
    info = json.loads((attempt / "launch.json").read_text())
    assert info["start"] == "resume" and info["resumed_at_step"] == 60
    assert yaml.safe_load((attempt / "config.yaml").read_text())["trainer"]["epochs"] == 3
    # The first launch's files stay as they were; the finished attempt's result is its own now.
    assert (finished_run / "run_info.json").read_text() == '{"command": "the first launch"}\n'
    assert (
        yaml.safe_load((finished_run / ".hydra/config.yaml").read_text())["trainer"]["epochs"] == 2
    )
    assert not (finished_run / "result.json").exists()
    assert not (finished_run / ".lock").exists()


@pytest.mark.parametrize(
    "world,overrides,answer",
    [
        (2, [], "on 2 processes keep it with trainer.batch_size=4"),
        (4, ["trainer.grad_accum_steps=2"], "on 4 processes keep it with trainer.batch_size=1"),
        (8, ["trainer.grad_accum_steps=2"], "keep it with trainer.batch_size=1 trainer.grad_acc"),
        (3, [], "8 sentences do not split over 3 processes: resume on a number that divides 8"),
        (1, ["trainer.batch_size=16"], "on 1 process keep it with trainer.batch_size=8"),
    ],
)
def test_a_resume_at_another_global_batch_is_refused_saying_how_to_keep_it(
    finished_run, world, overrides, answer
):
    """The checkpoint ran on 1 process at batch 8 (QUICK): the same command on more processes
    would double the global batch (another schedule, other steps, a position in the epoch
    that no longer means the same examples)."""
    cfg = compose([*QUICK, "trainer.epochs=3", *overrides])
    with pytest.raises(UserError) as refused:
        decide(cfg, finished_run, world)
    [line] = str(refused.value).splitlines()
    assert line.startswith(
        f"checkpoint {finished_run}/checkpoints/last.pt was trained at global batch 8 (1 process x "
        "trainer.batch_size=8 x trainer.grad_accum_steps=1), this run's is "
    )
    assert answer in line


@pytest.mark.parametrize(
    "world,split",
    [(2, ["trainer.batch_size=4"]), (4, ["trainer.batch_size=1", "trainer.grad_accum_steps=2"])],
)
def test_the_same_global_batch_on_other_processes_resumes(finished_run, world, split):
    cfg = compose([*QUICK, "trainer.epochs=3", *split])
    assert decide(cfg, finished_run, world).kind == "resume"


def test_keys_added_by_newer_code_read_as_defaults_and_operational_keys_may_change():
    cfg = compose(QUICK)
    saved = OmegaConf.to_container(cfg, resolve=True)
    del saved["model"]["window_stride"]  # an older version had no such key ...
    saved["trainer"]["retired_key"] = 1  # ... and one this version no longer has
    assert config.computed_differences(saved, cfg) == []
    changed = compose(
        [
            *QUICK,
            "trainer.log_every=3",
            "trainer.num_workers=1",
            "trainer.threads=2",
            "trainer.progress=true",
            "trainer.eval_test=false",
            "trainer.save_every_steps=9",
            "trainer.keep_last=3",
            "trainer.device=cpu",
            "trainer.early_stopping_patience=2",
            "data.cache_dir=null",
            "run_name=renamed",
        ]
    )
    assert config.computed_differences(saved, changed) == []
    assert config.computed_differences(saved, compose([*QUICK, "trainer.epochs=5"])) == [
        "trainer.epochs: 2 -> 5"
    ]
    assert (
        config.computed_differences(
            saved, compose([*QUICK, "trainer.epochs=5"]), ("trainer.epochs",)
        )
        == []
    )
    assert config.computed_differences(saved, compose([*QUICK, "model.window_stride=8"])) == [
        "model.window_stride: 32 -> 8"
    ]
    # A key whose value is a mapping is compared whole: another extra set changes the mean,
    # and the default monitor then selects on the training set alone (issue 17).
    extra = compose([*QUICK, "+data.extra_eval_files.news=news.conll"])
    assert config.computed_differences(saved, extra) == [
        "data.extra_eval_files: None -> {'news': 'news.conll'}",
        "trainer.monitor: 'eval_f1' -> 'eval_demo_f1'",
    ]
    assert config.computed_differences(OmegaConf.to_container(extra), extra) == []


def test_a_config_from_before_the_recipe_knobs_resumes_and_changing_one_is_refused():
    """A run saved before optim.schedule, warmup_ratio, label_smoothing, class_weights and
    trainer.gradient_checkpointing existed computed what their defaults compute; each changes
    what a run computes, so a resume under another value is refused (ner/run/rundir.py)."""
    cfg = compose(QUICK)
    saved = OmegaConf.to_container(cfg, resolve=True)
    for key in ("schedule", "warmup_ratio", "label_smoothing", "class_weights"):
        del saved["optim"][key]
    del saved["trainer"]["gradient_checkpointing"]
    assert config.computed_differences(saved, cfg) == []
    knobs = [
        "optim.schedule=cosine",
        "optim.warmup_ratio=0.1",
        "optim.label_smoothing=0.1",
        "optim.class_weights=inverse_frequency",
        "trainer.gradient_checkpointing=true",
    ]
    assert config.computed_differences(saved, compose([*QUICK, *knobs])) == [
        "optim.schedule: 'linear' -> 'cosine'",
        "optim.warmup_ratio: None -> 0.1",
        "optim.label_smoothing: 0.0 -> 0.1",
        "optim.class_weights: None -> 'inverse_frequency'",
        "trainer.gradient_checkpointing: False -> True",
    ]


def test_best_pt_cannot_resume_and_the_message_names_the_checkpoints_that_can(tmp_path):
    cfg = compose(QUICK)
    directory = tmp_path / "checkpoints"
    fake_checkpoint(directory / "best.pt", cfg, resumable=False)
    fake_checkpoint(directory / "last.pt", cfg)
    fake_checkpoint(directory / "step-40.pt", cfg)
    with pytest.raises(UserError) as refused:
        checkpoint.load_resumable(directory / "best.pt")
    message = str(refused.value)
    assert "holds the model weights only" in message
    assert "other checkpoints of the run: last.pt, step-40.pt" in message
    assert f"trainer.resume={directory / 'step-40.pt'}" in message


def test_an_unreadable_checkpoint_names_the_others_and_how_to_resume(tmp_path):
    cfg = compose(QUICK)
    directory = tmp_path / "checkpoints"
    fake_checkpoint(directory / "step-35.pt", cfg)
    (directory / "last.pt").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(UserError) as refused:
        train(compose(QUICK), Env(), tmp_path)
    message = str(refused.value)
    assert f"checkpoint {directory / 'last.pt'}: cannot be read" in message
    assert f"resume from one with trainer.resume={directory / 'step-35.pt'}" in message


def test_run_stamp_under_srun_names_the_job_and_step():
    environ = {"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1"}
    assert run_stamp(environ) == "slurm/4242.0"
    assert run_stamp({**environ, "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "2"}) == (
        "slurm/40_2.0"
    )


class _FrozenClock:
    """`datetime` whose now() is one fixed second: jobs started together."""

    class datetime(__import__("datetime").datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 12, 1, 9, 30, 0)

        @classmethod
        def fromtimestamp(cls, t, tz=None):
            return cls(2026, 12, 1, 9, 30, 0)


def test_jobs_started_in_the_same_second_each_get_their_own_run_dir(monkeypatch):
    # `for s in 1 2 3; do ner-train seed=$s & done`: three processes, one second.
    monkeypatch.setattr(stamp, "dt", _FrozenClock)
    stamps = []
    for pid in (4101, 4102, 4103):
        monkeypatch.setattr(stamp.os, "getpid", lambda pid=pid: pid)
        stamps.append(run_stamp({}))
    assert stamps == [f"2026-12-01/09-30-00-{pid}" for pid in (4101, 4102, 4103)]


def test_torchrun_jobs_started_in_the_same_second_differ_and_their_ranks_agree(monkeypatch):
    # Two single-node torchrun jobs whose agents started in the same second: the stamp names the
    # agent, so both ranks of one job agree (they share the agent) and the two jobs differ.
    monkeypatch.setattr(stamp, "dt", _FrozenClock)
    monkeypatch.setattr(stamp, "process_start", lambda pid: 1000)
    environ = {"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}
    stamps = {}
    for agent, rank in [(500, 0), (500, 1), (600, 0), (600, 1)]:
        monkeypatch.setattr(stamp.os, "getppid", lambda agent=agent: agent)
        stamps[agent, rank] = run_stamp({**environ, "RANK": str(rank)})
    assert stamps[500, 0] == stamps[500, 1] == "2026-12-01/09-30-00-500"
    assert stamps[600, 0] == stamps[600, 1] == "2026-12-01/09-30-00-600"


def test_a_damaged_last_pt_does_not_advise_its_own_hard_link(tmp_path):
    # step-N.pt is a second name of last.pt (trainer.keep_last): torn together, so the advice
    # names only the checkpoints that are other files.
    cfg = compose(QUICK)
    directory = tmp_path / "checkpoints"
    fake_checkpoint(directory / "step-35.pt", cfg)
    (directory / "last.pt").write_bytes(b"PK\x03\x04 torn")
    os.link(directory / "last.pt", directory / "step-40.pt")
    with pytest.raises(UserError) as refused:
        checkpoint.load_resumable(directory / "last.pt")
    message = str(refused.value)
    assert "other checkpoints of the run: step-35.pt;" in message
    assert "step-40.pt" not in message
    os.unlink(directory / "step-35.pt")
    with pytest.raises(UserError, match="the run has no other checkpoint to resume from"):
        checkpoint.load_resumable(directory / "last.pt")
