"""ner.distributed.slurm on synthetic Slurm environments: host lists, tasks per node, the derived torch env."""

from pathlib import Path

import pytest

from ner.distributed.slurm import expand_hostlist, expand_tasks_per_node, torch_env_from_slurm
from ner.errors import UserError


@pytest.mark.parametrize(
    ("hostlist", "hosts"),
    [
        ("gpu5", ["gpu5"]),
        ("node[01-03,07],gpu5", ["node01", "node02", "node03", "node07", "gpu5"]),
        ("n[8-11]", ["n8", "n9", "n10", "n11"]),
        ("n[098-101]", ["n098", "n099", "n100", "n101"]),
        ("a,b[1],c", ["a", "b1", "c"]),
        ("rack[1-2]-n[01-02]", ["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"]),
        ("node[3]-ib", ["node3-ib"]),
    ],
)
def test_expand_hostlist(hostlist: str, hosts: list[str]) -> None:
    assert expand_hostlist(hostlist) == hosts


@pytest.mark.parametrize("bad", ["node[01-03", "node01]", "n[3-1]", "n[a-b]", "n[1-]", "a,,b", ""])
def test_expand_hostlist_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        expand_hostlist(bad)


@pytest.mark.parametrize(
    ("spec", "counts"),
    [("4", [4]), ("4(x2)", [4, 4]), ("2(x3),1", [2, 2, 2, 1]), ("1,3", [1, 3])],
)
def test_expand_tasks_per_node(spec: str, counts: list[int]) -> None:
    assert expand_tasks_per_node(spec) == counts


def slurm_env(**overrides: str) -> dict[str, str]:
    """Task 5 of 8 in a 2-node job with 4 tasks per node, as `srun` would set it."""
    env = {
        "SLURM_JOB_ID": "123456",
        "SLURM_PROCID": "5",
        "SLURM_NTASKS": "8",
        "SLURM_LOCALID": "1",
        "SLURM_NODEID": "1",
        "SLURM_TASKS_PER_NODE": "4(x2)",
        "SLURM_JOB_NODELIST": "gpu[07-08]",
        "PATH": "/usr/bin",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != "<unset>"}


def test_multi_node_task() -> None:
    assert torch_env_from_slurm(slurm_env()) == {
        "RANK": "5",
        "WORLD_SIZE": "8",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "4",
        "NODE_RANK": "1",
        "MASTER_ADDR": "gpu07",
        "MASTER_PORT": str(20000 + 123456 % 10000),
    }


def test_single_node_task() -> None:
    env = {
        "SLURM_JOB_ID": "77",
        "SLURM_PROCID": "0",
        "SLURM_NTASKS": "1",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "SLURM_TASKS_PER_NODE": "1",
        "SLURM_NODELIST": "localhost",
    }
    derived = torch_env_from_slurm(env)
    assert derived is not None
    assert derived["RANK"] == "0" and derived["WORLD_SIZE"] == "1"
    assert derived["LOCAL_WORLD_SIZE"] == "1"
    assert derived["MASTER_ADDR"] == "localhost" and derived["MASTER_PORT"] == "20077"


def test_every_task_of_a_job_agrees_on_the_rendezvous() -> None:
    derived = [
        torch_env_from_slurm(
            slurm_env(SLURM_PROCID=str(r), SLURM_LOCALID=str(r % 4), SLURM_NODEID=str(r // 4))
        )
        for r in range(8)
    ]
    assert {(d["MASTER_ADDR"], d["MASTER_PORT"]) for d in derived} == {("gpu07", "23456")}
    assert [d["RANK"] for d in derived] == [str(r) for r in range(8)]
    assert [d["NODE_RANK"] for d in derived] == ["0"] * 4 + ["1"] * 4


def test_uneven_tasks_per_node_uses_this_nodes_count() -> None:
    env = slurm_env(
        SLURM_NTASKS="7",
        SLURM_TASKS_PER_NODE="2(x3),1",
        SLURM_NODEID="3",
        SLURM_PROCID="6",
        SLURM_LOCALID="0",
    )
    assert torch_env_from_slurm(env)["LOCAL_WORLD_SIZE"] == "1"


def test_ntasks_per_node_wins_over_tasks_per_node() -> None:
    env = slurm_env(SLURM_NTASKS_PER_NODE="4", SLURM_TASKS_PER_NODE="3(x2)")
    assert torch_env_from_slurm(env)["LOCAL_WORLD_SIZE"] == "4"


def test_step_variables_win_over_the_jobs() -> None:
    # A step on the second and third node of a 3-node job, 2 tasks.
    env = slurm_env(
        SLURM_JOB_NODELIST="node[1-3]",
        SLURM_STEP_NODELIST="node[2-3]",
        SLURM_NTASKS="2",
        SLURM_STEP_NUM_TASKS="2",
        SLURM_STEP_TASKS_PER_NODE="1(x2)",
        SLURM_TASKS_PER_NODE="1(x3)",
        SLURM_PROCID="1",
        SLURM_LOCALID="0",
    )
    derived = torch_env_from_slurm(env)
    assert derived["MASTER_ADDR"] == "node2"
    assert derived["WORLD_SIZE"] == "2" and derived["LOCAL_WORLD_SIZE"] == "1"


def test_port_and_address_overrides() -> None:
    assert torch_env_from_slurm(slurm_env(NER_MASTER_PORT="31000"))["MASTER_PORT"] == "31000"
    given = torch_env_from_slurm(slurm_env(MASTER_ADDR="10.0.0.1", MASTER_PORT="1234"))
    assert (given["MASTER_ADDR"], given["MASTER_PORT"]) == ("10.0.0.1", "1234")


def test_not_under_slurm_or_under_torchrun() -> None:
    assert torch_env_from_slurm({"PATH": "/usr/bin"}) is None
    assert torch_env_from_slurm(slurm_env(RANK="0")) is None


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"SLURM_NTASKS": "eight"}, "SLURM_NTASKS"),
        ({"SLURM_JOB_NODELIST": "gpu[07-"}, "SLURM_JOB_NODELIST"),
        ({"SLURM_TASKS_PER_NODE": "4(y2)"}, "SLURM_TASKS_PER_NODE"),
        ({"SLURM_LOCALID": "<unset>"}, "SLURM_LOCALID"),
        ({"SLURM_PROCID": "9"}, "SLURM_PROCID"),
        ({"SLURM_NODEID": "2", "SLURM_TASKS_PER_NODE": "4,4"}, "SLURM_NODEID"),
        ({"NER_MASTER_PORT": "70000"}, "NER_MASTER_PORT"),
    ],
)
def test_malformed_environment_names_the_variable(overrides: dict, names: str) -> None:
    with pytest.raises(UserError, match=names):
        torch_env_from_slurm(slurm_env(**overrides))


def test_slurm_launcher_config_composes_one_task_per_gpu() -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")  # the optional `slurm` extra
    from hydra import compose, initialize_config_dir

    repo = Path(__file__).resolve().parents[1]
    overrides = [
        "hydra/launcher=slurm",
        f"hydra.searchpath=[file://{repo / 'conf'}]",  # the repository's launcher configs
        "hydra.launcher.nodes=2",
        "hydra.launcher.gpus_per_node=4",
    ]
    with initialize_config_dir(str(repo / "tests" / "toy_app" / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.gpus_per_node, launcher.tasks_per_node) == (2, 4, 4)
