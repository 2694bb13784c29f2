"""Run a program as `python` would and write its peak CUDA memory when it exits.

    python experiments/benchmark/cuda_peak.py OUT.json -m ner.train OVERRIDES...
    python experiments/benchmark/cuda_peak.py OUT.json experiments/benchmark/trainer_run_ner.py ...

gpu.py runs both systems so, the program unchanged: OUT.json gets
`torch.cuda.max_memory_allocated()` of the current device (0 when the program never used CUDA)
when it ends, normally, by sys.exit or by an exception alike.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path


def write_peak(out: Path) -> None:
    torch = sys.modules.get("torch")  # not imported: no CUDA memory either
    peak = torch.cuda.max_memory_allocated() if torch and torch.cuda.is_initialized() else 0
    out.write_text(json.dumps({"max_memory_allocated": peak}) + "\n")


def main() -> None:
    out, program = Path(sys.argv[1]), sys.argv[2:]
    # sys.path[0] as `python` sets it: the working directory for -m, else the script's folder.
    try:
        if program[0] == "-m":
            sys.argv, sys.path[0] = [program[1], *program[2:]], os.getcwd()
            runpy.run_module(program[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv, sys.path[0] = program, str(Path(program[0]).resolve().parent)
            runpy.run_path(program[0], run_name="__main__")
    finally:
        write_peak(out)


if __name__ == "__main__":
    main()
