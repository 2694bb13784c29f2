"""Sharded checkpoints (ner/sharded_checkpoint.py), in-process on a one-rank gloo group: the
shards and last.pt as one checkpoint, published atomically, resumed exactly into FSDP or a plain
model; a save that fails midway leaves the previous checkpoint as the one that resumes."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.fsdp import fully_shard

from ner import atomic, checkpoint, sharded_checkpoint, sharding
from ner.checkpoint import Progress, TrainState
from ner.distributed import Env
from ner.errors import UserError

# its module-scoped fixture built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("sharded_checkpoint")

ENV = Env()


@contextmanager
def one_rank():
    """FSDP needs a process group: one rank, gloo, for as long as a test or fixture needs it
    (xdist may run other modules' tests between this module's)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = dist.FileStore(str(Path(tmp) / "store"), 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        try:
            yield
        finally:
            dist.destroy_process_group()


@pytest.fixture(autouse=True)
def group():
    with one_rank():
        yield


def state(sharded: bool) -> TrainState:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    if sharded:
        fully_shard(model[0])
        fully_shard(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    return TrainState(
        model,
        optimizer,
        torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / 20),
        torch.amp.GradScaler("cpu", enabled=False),
        Progress(schedule=[[0, 20]]),
        history=[],
        labels=["O", "B-X"],
        config_yaml="trainer: {}\n",
        data={},
    )


def step(s: TrainState) -> None:
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(s.progress.global_step))
    s.model(x).pow(2).sum().backward()
    s.optimizer.step()
    s.scheduler.step()
    s.optimizer.zero_grad()
    s.progress.global_step += 1
    s.history.append({"step": s.progress.global_step})


def full(model) -> dict:
    return {k: v.clone() for k, v in sharding.model_state(model).items()}


def save(s: TrainState, directory: Path, keep_steps: int = 0, best: bool = False) -> None:
    """As the loop saves (ner/train.py): every rank's states (here one rank), then rank 0."""
    s.save(directory, ENV, best, keep_steps)


def resumed(directory: Path, sharded: bool, name: str = "last.pt") -> TrainState:
    s = state(sharded)
    path = directory / name
    ckpt = checkpoint.load_resumable(path)
    s.restore(ckpt, path, ENV)
    return s


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict, dict]:
    """Two steps, a sharded checkpoint, a third step: (its directory, the weights after the
    third step, after the second)."""
    directory = tmp_path_factory.mktemp("ckpt")
    with one_rank():  # set up before the test's own group
        s = state(sharded=True)
        step(s)
        step(s)
        save(s, directory, best=True)
        at_two = full(s.model)
        step(s)
        return directory, full(s.model), at_two


def test_last_pt_names_its_shards_and_holds_the_rest(trained):
    directory, _, at_two = trained
    ckpt = checkpoint.load(directory / "last.pt")
    assert "model" not in ckpt and "optimizer" not in ckpt
    assert ckpt["shards"] == next(directory.glob("shards-2-*")).name
    assert ckpt["progress"]["global_step"] == 2 and ckpt["history"] == [{"step": 1}, {"step": 2}]
    assert (directory / ckpt["shards"] / ".metadata").is_file()
    best = checkpoint.load(directory / "best.pt")  # full weights, gathered
    assert best.keys() == set(checkpoint.WEIGHTS_ONLY)
    assert all(torch.equal(best["model"][k], v) for k, v in at_two.items())


@pytest.mark.parametrize("sharded", [True, False], ids=["into fsdp", "into a plain model"])
def test_a_sharded_checkpoint_resumes_exactly(trained, sharded):
    directory, after_three, _ = trained
    s = resumed(directory, sharded)
    assert s.progress.global_step == 2 and s.scheduler.last_epoch == 2
    step(s)  # the optimizer's moments and the schedule came back: the same third step
    assert all(torch.allclose(full(s.model)[k], v, atol=1e-7) for k, v in after_three.items())


def test_a_full_checkpoint_written_under_ddp_resumes_under_fsdp(tmp_path):
    plain = state(sharded=False)
    step(plain)
    save(plain, tmp_path)
    step(plain)
    s = resumed(tmp_path, sharded=True)
    step(s)
    assert all(torch.allclose(full(s.model)[k], v, atol=1e-7) for k, v in full(plain.model).items())


def test_saves_keep_only_the_shards_a_checkpoint_names(tmp_path):
    s = state(sharded=True)
    for _ in range(4):
        step(s)
        save(s, tmp_path, keep_steps=2)
    names = {checkpoint.load(p)["shards"] for p in tmp_path.glob("step-*.pt")}
    assert sorted(p.name for p in tmp_path.glob("step-*.pt")) == ["step-3.pt", "step-4.pt"]
    assert {p.name for p in tmp_path.glob("shards-*")} == names
    removed, freed = checkpoint.retain(tmp_path, "best")
    assert not list(tmp_path.glob("shards-*")) and freed > 0 and "last.pt" in removed


def test_a_save_failing_while_the_shards_are_written_leaves_the_previous_checkpoint(
    trained, tmp_path, monkeypatch
):
    directory = shutil.copytree(trained[0], tmp_path / "ckpt")
    at_two = trained[2]
    s = resumed(directory, sharded=True)
    step(s)
    real = dcp.FileSystemWriter.write_data

    written = []

    def half(self, plan, planner):
        real(self, plan, planner).wait()  # the shard files are there, .metadata is not
        written.extend(Path(self.path).iterdir())
        raise OSError("the node was lost")

    monkeypatch.setattr(dcp.FileSystemWriter, "write_data", half)
    with pytest.raises(dcp.api.CheckpointException):  # DCP's report of every rank's failure
        save(s, directory)
    monkeypatch.undo()
    assert written and not any(p.exists() for p in written)  # removed with their directory
    again = resumed(directory, sharded=True)
    assert again.progress.global_step == 2
    assert all(torch.equal(full(again.model)[k], v) for k, v in at_two.items())


def test_a_save_cut_between_the_shards_and_last_pt_resumes_the_previous_one(
    trained, tmp_path, monkeypatch
):
    directory = shutil.copytree(trained[0], tmp_path / "ckpt")
    at_two = trained[2]
    s = resumed(directory, sharded=True)
    step(s)

    def killed(obj, path):
        raise KeyboardInterrupt  # as a kill after the shards' rename, before last.pt's

    monkeypatch.setattr(checkpoint, "atomic_save", killed)
    with pytest.raises(KeyboardInterrupt):
        save(s, directory)
    monkeypatch.undo()
    assert len(list(directory.glob("shards-*"))) == 2  # the new one, named by nothing
    again = resumed(directory, sharded=True)
    assert all(torch.equal(full(again.model)[k], v) for k, v in at_two.items())
    step(again)
    save(again, directory)
    assert [p.name for p in directory.glob("shards-*")] == [
        checkpoint.load(directory / "last.pt")["shards"]
    ]


def test_a_kill_mid_write_leaves_a_temporary_the_next_owner_removes(tmp_path, monkeypatch):
    made = []
    real = sharded_checkpoint.tempfile.mkdtemp

    def mkdtemp(**kwargs):
        made.append(Path(real(**kwargs)))
        raise KeyboardInterrupt  # killed as the ranks begin to write into it

    monkeypatch.setattr(sharded_checkpoint.tempfile, "mkdtemp", mkdtemp)
    s = state(sharded=True)
    with pytest.raises(KeyboardInterrupt):
        save(s, tmp_path)
    (made[0] / "__0_0.distcp").write_bytes(b"half")
    assert [p for p, _ in atomic.remove_orphans(tmp_path)] == made


def test_best_pt_is_rewritten_from_the_shards_of_a_record_saved_at_its_best_epoch(tmp_path):
    s = state(sharded=True)
    step(s)
    s.progress.epoch, s.progress.best_epoch = 1, 1.0
    save(s, tmp_path)  # killed before best.pt: none was written
    ckpt = checkpoint.load(tmp_path / "last.pt")
    line = checkpoint.reconcile_best(tmp_path, ckpt, tmp_path / "last.pt", ENV)
    assert "rewritten from" in line
    best = checkpoint.load(tmp_path / "best.pt")
    checkpoint.check_best(best, tmp_path / "best.pt", 1.0)
    assert all(torch.equal(best["model"][k], v) for k, v in full(s.model).items())


def test_shards_written_elsewhere_are_refused_and_a_missing_shard_directory_too(
    trained, tmp_path, monkeypatch
):
    directory = shutil.copytree(trained[0], tmp_path / "ckpt")
    s = resumed(directory, sharded=True)
    real = dcp.save

    def elsewhere(state, checkpoint_id, **kwargs):  # as rank 0 sees another node's shard
        real(state, checkpoint_id=checkpoint_id, **kwargs)
        next(Path(checkpoint_id).glob("__0_*.distcp")).unlink()

    monkeypatch.setattr(dcp, "save", elsewhere)
    with pytest.raises(UserError, match=r"the shards of ranks \[0\] are not there"):
        save(s, directory)
    monkeypatch.undo()
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]
    shutil.rmtree(directory / checkpoint.load(directory / "last.pt")["shards"])
    with pytest.raises(UserError, match="which are missing or incomplete"):
        checkpoint.load_resumable(directory / "last.pt")


@pytest.mark.parametrize("damage", ["a torn shard", "junk metadata"])
def test_a_torn_or_junk_shard_directory_is_refused_in_one_line_before_the_run(
    trained, tmp_path, damage
):
    # truncate -s 1000 shards-*/__0_0.distcp; or .metadata replaced by junk: a UserError naming
    # the file, from the check a resume makes before it is accepted, not DCP's traceback.
    directory = shutil.copytree(trained[0], tmp_path / "ckpt")
    shard_dir = next(directory.glob("shards-*"))
    if damage == "a torn shard":
        with open(shard_dir / "__0_0.distcp", "r+b") as f:
            f.truncate(1000)
        expected = f"its shard {shard_dir / '__0_0.distcp'} is torn (1000 bytes of the"
    else:
        (shard_dir / ".metadata").write_bytes(b"not a pickle at all")
        expected = f"checkpoint {shard_dir}: its shards cannot be read ("
    with pytest.raises(UserError) as refused:
        checkpoint.load_resumable(directory / "last.pt")
    assert expected in str(refused.value) and "\n" not in str(refused.value)
    assert "trainer.resume=" in str(refused.value)


def test_a_shard_torn_after_the_check_is_one_line_from_the_load(trained, tmp_path):
    directory = shutil.copytree(trained[0], tmp_path / "ckpt")
    ckpt = checkpoint.load_resumable(directory / "last.pt")  # whole when checked
    shard = next(directory.glob("shards-*")) / "__0_0.distcp"
    with open(shard, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(UserError, match="its shards cannot be read"):
        state(sharded=True).restore(ckpt, directory / "last.pt", ENV)


def test_a_kill_before_best_pt_leaves_no_shard_directory_that_nothing_names(tmp_path, monkeypatch):
    # Shards no checkpoint names are removed as soon as last.pt names the new ones, before
    # best.pt is written: a kill between last.pt and best.pt leaves none behind.
    s = state(sharded=True)
    step(s)
    save(s, tmp_path, best=True)
    step(s)

    def killed(directory, record):
        raise KeyboardInterrupt  # as a SIGKILL before best.pt is written

    monkeypatch.setattr(checkpoint, "write_best", killed)
    with pytest.raises(KeyboardInterrupt):
        save(s, tmp_path, best=True)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.glob("shards-*")] == [
        checkpoint.load(tmp_path / "last.pt")["shards"]
    ]
