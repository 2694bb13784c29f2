"""Toy Hydra app: all-reduce each rank's (rank + 1) with gloo and write result.json on rank 0.

Run as `python -m toy_app.app` with `tests/` on PYTHONPATH, alone or under torchrun. It follows the
training loop's run-directory contract: `result.json` (with "best") when it finishes, `error.json`
when it fails, both written by rank 0 into the Hydra run directory, the working directory untouched.
"""

import json
import os
from pathlib import Path

import hydra
import torch
import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


def work(cfg: DictConfig, rank: int, world_size: int) -> dict:
    total = torch.tensor([float(rank + 1)])
    if world_size > 1:
        dist.all_reduce(total)
    if cfg.fail:
        raise ValueError(f"failing on purpose: fail={cfg.fail}")
    return {
        "status": "finished",
        "best": total.item() + cfg.value,
        "world_size": world_size,
        "note": cfg.note,
        "tags": OmegaConf.to_container(cfg.tags),
        "job_num": HydraConfig.get().job.num,
    }


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if world_size > 1:
        dist.init_process_group("gloo")
    try:
        result = work(cfg, rank, world_size)
        if rank == 0:
            (run_dir / "result.json").write_text(json.dumps(result))
    except Exception as e:
        if rank == 0:
            error = {"status": "failed", "type": type(e).__name__, "message": str(e)}
            (run_dir / "error.json").write_text(json.dumps(error))
        raise
    finally:
        if world_size > 1:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
