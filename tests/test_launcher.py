"""The torchrun Hydra launcher: its command line, its config, and a real two-job sweep on gloo."""

import dataclasses
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from omegaconf import OmegaConf

from hydra_plugins.ner_launchers.torchrun_launcher import (
    TorchrunLauncherConf,
    job_failure,
    job_hydra_args,
    program_args,
    quote_override_value,
    read_result,
    record_failure,
    torchrun_command,
)
from ner.errors import UserError

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


@pytest.mark.parametrize(
    "value", ["/runs/0", "/a b/c,d[e]=f", "it's", "back\\", "x\\'y", "{a: 1}", "${not.resolved"]
)
def test_quoted_value_parses_back_to_itself(value: str) -> None:
    override = OverridesParser.create().parse_override(
        "hydra.run.dir=" + quote_override_value(value)
    )
    assert override.value() == value


def test_single_node_command_is_standalone_and_keeps_overrides_whole() -> None:
    job_args = ["--config-name=config", "note='a, b [c]'", "tags=[x,y]"]
    cmd = torchrun_command(
        TorchrunLauncherConf(nproc_per_node=2), ["-m", "app"], job_args, "/r/3", 3
    )
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--standalone" in cmd and "--rdzv_endpoint" not in cmd
    assert cmd[cmd.index("--nproc_per_node") + 1] == "2"
    program_at = cmd.index("app") - 1
    assert cmd[program_at:] == [
        "-m",
        "app",
        *job_args,
        "hydra.run.dir='/r/3'",
        "hydra.job.num=3",
        "hydra.job.id=3",
        "hydra.mode=RUN",  # a sweep defined in an experiment file must not nest inside the job
    ]


def test_multi_node_command_uses_the_rendezvous_endpoint() -> None:
    conf = TorchrunLauncherConf(nnodes="2", node_rank=1, rdzv_endpoint="head:29400", max_restarts=1)
    cmd = torchrun_command(conf, ["/abs/app.py"], [], "/r/0", 0)
    assert "--standalone" not in cmd
    for flag, value in [
        ("--nnodes", "2"),
        ("--node_rank", "1"),
        ("--rdzv_backend", "c10d"),
        ("--rdzv_endpoint", "head:29400"),
        ("--rdzv_id", "hydra-job-0"),
        ("--max_restarts", "1"),
    ]:
        assert cmd[cmd.index(flag) + 1] == value
    assert "/abs/app.py" in cmd


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (TorchrunLauncherConf(nnodes="2"), "port 0"),
        (TorchrunLauncherConf(rdzv_endpoint="head"), "not <host>:<port>"),
    ],
)
def test_bad_rendezvous_is_a_user_error(conf: TorchrunLauncherConf, message: str) -> None:
    with pytest.raises(UserError, match=message):
        torchrun_command(conf, ["-m", "app"], [], "/r/0", 0)


def test_program_defaults_to_the_apps_module(monkeypatch: pytest.MonkeyPatch) -> None:
    def task(cfg):
        return None

    assert program_args("pkg.mod", task) == ["-m", "pkg.mod"]
    task.__module__ = "ner.train"  # what the `ner-train` console script runs
    assert program_args(None, task) == ["-m", "ner.train"]
    task.__module__ = "__main__"  # `python -m ner.train`
    main = types.ModuleType("__main__")
    main.__spec__ = types.SimpleNamespace(name="ner.train")
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert program_args(None, task) == ["-m", "ner.train"]
    main.__spec__ = None  # `python path/to/app.py`
    monkeypatch.setattr(sys, "argv", [__file__])
    assert program_args(None, task) == [__file__]
    monkeypatch.setattr(sys, "argv", ["-c"])
    with pytest.raises(UserError, match="hydra.launcher.module"):
        program_args(None, task)


def test_jobs_repeat_the_sweeps_config_choice_but_not_its_launching() -> None:
    hydra_cfg = OmegaConf.create(
        {
            "job": {"config_name": "small"},
            "runtime": {
                "config_sources": [
                    {"path": "hydra.conf", "schema": "pkg", "provider": "hydra"},
                    {"path": "/my/conf", "schema": "file", "provider": "command-line"},
                ]
            },
            "overrides": {
                "hydra": [
                    "hydra/launcher=torchrun",
                    "hydra.launcher.nproc_per_node=2",
                    "hydra.sweep.dir=/s",
                    "hydra.sweep.subdir=${hydra.job.num}",
                    "hydra.sweeper.params.x=1",
                    "hydra.mode=MULTIRUN",
                    "hydra.run.dir=/r",
                    "hydra.job.num=0",
                    "hydra.job.chdir=True",
                    "hydra.job_logging.root.level=DEBUG",
                    "hydra/job_logging=disabled",
                    "hydra.verbose=true",
                    "hydra.searchpath=[file:///x]",
                    "hydra.job.env_set.A=${oc.env:HOME}",
                ]
            },
        }
    )
    assert job_hydra_args(hydra_cfg) == [
        "--config-name=small",
        "--config-dir=/my/conf",
        "hydra.job.chdir=True",
        "hydra.job_logging.root.level=DEBUG",
        "hydra/job_logging=disabled",
        "hydra.verbose=true",
        "hydra.searchpath=[file:///x]",
        "hydra.job.env_set.A=${oc.env:HOME}",
    ]


def test_job_outcome_files(tmp_path: Path) -> None:
    assert read_result(tmp_path) is None
    (tmp_path / "result.json").write_text(json.dumps({"best": 0.5}))
    assert read_result(tmp_path) == 0.5
    assert str(job_failure(tmp_path, 1)) == f"job in {tmp_path} failed: torchrun exited with code 1"
    (tmp_path / "error.json").write_text(json.dumps({"type": "ValueError", "message": "bad lr"}))
    assert str(job_failure(tmp_path, 1)).endswith("code 1; ValueError: bad lr")
    (tmp_path / "error.json").write_text('{"type": "Val')
    assert "unreadable" in str(job_failure(tmp_path, 1))


def test_a_failed_job_is_reported_by_hydra_as_its_message_not_a_traceback() -> None:
    from hydra.errors import CompactHydraException

    # Hydra's run_and_report prints a CompactHydraException's message alone.
    assert isinstance(job_failure(Path("job"), 2), CompactHydraException)


def test_failure_is_recorded_only_when_the_job_did_not(tmp_path: Path) -> None:
    record_failure(tmp_path, -9, ["seed=1", "note='a, b'"])
    recorded = json.loads((tmp_path / "error.json").read_text())
    assert recorded["status"] == "failed" and "code -9" in recorded["message"]
    assert recorded["overrides"] == ["seed=1", "note='a, b'"]
    own = {"status": "failed", "type": "ValueError", "message": "bad lr"}
    (tmp_path / "error.json").write_text(json.dumps(own))
    record_failure(tmp_path, 1, ["seed=1"])
    assert json.loads((tmp_path / "error.json").read_text()) == own


def test_shipped_yaml_restates_no_default_and_the_schema_documents_every_key() -> None:
    shipped = yaml.safe_load((REPO / "conf" / "hydra" / "launcher" / "torchrun.yaml").read_text())
    assert shipped == {"defaults": ["torchrun_schema", "_self_"]}  # each default lives once
    source = Path(sys.modules[TorchrunLauncherConf.__module__].__file__).read_text().splitlines()
    for key in dataclasses.asdict(TorchrunLauncherConf()):
        if key != "_target_":  # every key carries a comment on the line just above it
            at = next(i for i, line in enumerate(source) if line.startswith(f"    {key}: "))
            assert source[at - 1].strip().startswith("#"), key


def test_hydra_discovers_the_launcher() -> None:
    # Hydra loads plugin modules on its own, so compare names rather than class objects.
    found = {f"{c.__module__}.{c.__qualname__}" for c in Plugins.instance().discover(Launcher)}
    assert TorchrunLauncherConf._target_ in found


@pytest.mark.slow
def test_sweep_runs_each_job_under_torchrun_and_survives_a_failure(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    pythonpath = [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    cmd = [
        sys.executable,
        "-m",
        "toy_app.app",
        "-m",
        "hydra/launcher=torchrun",
        f"hydra.searchpath=[file://{REPO / 'conf'}]",  # the repository's launcher config
        "hydra.launcher.nproc_per_node=2",
        f"hydra.sweep.dir={sweep}",
        "fail=true,false",  # the first job fails, the second must still run
        "note='a, b [c]'",
        "tags=[x,y]",
        "value=2",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output  # Hydra reports the failed job after the sweep
    assert f"job in {sweep / '0'} failed: torchrun exited with code 1" in output
    assert "ValueError: failing on purpose: fail=True" in output

    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]  # no stray outputs/ dir
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "multirun.yaml"]
    assert json.loads((sweep / "0" / "error.json").read_text())["type"] == "ValueError"
    assert not (sweep / "0" / "result.json").exists()
    result = json.loads((sweep / "1" / "result.json").read_text())
    # Ranks 0 and 1 all-reduce 1 + 2, plus value=2.
    assert result == {
        "status": "finished",
        "best": 5.0,
        "world_size": 2,
        "note": "a, b [c]",
        "tags": ["x", "y"],
        "job_num": 1,
    }
    overrides = yaml.safe_load((sweep / "1" / ".hydra" / "overrides.yaml").read_text())
    assert overrides == ["fail=False", "note='a, b [c]'", "tags=[x,y]", "value=2"]
