"""A place the program may not write (a read-only run directory) or a disk that fills during the
export: one line naming the file, never a traceback, and ner-evaluate refuses before it scores."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from conftest import CLI_RUN, run_cli

from ner import atomic
from ner.errors import UserError

# the session's finished run (conftest.py run_dir): built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("run_dir")

needs_unshare = pytest.mark.skipif(
    shutil.which("unshare") is None, reason="needs unshare for a private mount"
)


def in_private_mount(mount: str, commands: list[list[str]], cwd: Path):
    """Run `commands` (after `mount`, a shell line) in a user and mount namespace of their own;
    each command's stdout, stderr and status are printed between markers."""
    lines = [f"{mount} || exit 99"]
    for k, cmd in enumerate(commands):
        lines.append(f"{shlex.join(cmd)} >{cwd}/out{k} 2>{cwd}/err{k}; echo $? >{cwd}/rc{k}")
    done = run_cli(["unshare", "-rm", "sh", "-c", "; ".join(lines)], cwd, 600)
    if done.returncode == 99:
        pytest.skip(f"no private mount here: {done.stderr[-300:]}")
    return [
        (
            int((cwd / f"rc{k}").read_text()),
            (cwd / f"out{k}").read_text(),
            (cwd / f"err{k}").read_text(),
        )
        for k in range(len(commands))
    ]


@pytest.mark.slow
@needs_unshare
def test_a_read_only_run_directory_is_one_line_for_training_and_evaluation(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    elsewhere = tmp_path / "metrics.json"
    ro = f"mount --bind {run} {run} && mount -o remount,ro,bind {run}"
    evaluate = [sys.executable, "-m", "ner.tools.evaluate", str(run)]
    train = [sys.executable, "-m", "ner.train", *CLI_RUN, f"hydra.run.dir={run}"]
    results = in_private_mount(
        ro, [train, evaluate, [*evaluate, "--output", str(elsewhere)]], tmp_path
    )
    (train_rc, _, train_err), (eval_rc, eval_out, eval_err), (other_rc, other_out, _) = results
    assert train_rc == 2, train_err
    [line] = train_err.strip().splitlines()
    # The precheck (before Hydra) or the lock names the directory; either way one line.
    assert line.startswith("error: ") and str(run) in line, line
    assert "is not writable" in line or "cannot be written (Read-only" in line, line
    assert eval_rc == 2, eval_err
    [line] = eval_err.strip().splitlines()
    output = run / "eval_validation_best.json"
    assert line.startswith(f"error: metrics file {output}: cannot be written (Read-only")
    assert line.endswith("; give --output PATH, or --output - for stdout")
    assert eval_out == ""  # refused before scoring: no summary was printed
    assert other_rc == 0 and f"metrics written to {elsewhere}" in other_out
    assert json.loads(elsewhere.read_text())["checkpoint"] == "best"


@pytest.mark.slow
@needs_unshare
def test_a_disk_that_fills_during_the_export_is_one_line(run_dir, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    export = (
        "from pathlib import Path; from ner import checkpoint; from ner.tools import trained; "
        f"m = trained.load({str(run_dir)!r}); "
        f"checkpoint.export_hf(m.model, m.tokenizer, Path({str(full)!r}) / 'best_model')"
    )
    script = f"from ner.errors import UserError\ntry:\n    {export}\nexcept UserError as e:\n"
    script += "    print(f'error: {e}'); raise SystemExit(2)"
    [(rc, out, err)] = in_private_mount(
        f"mount -t tmpfs -o size=64k tmpfs {full}", [[sys.executable, "-c", script]], tmp_path
    )
    assert rc == 2, err[-3000:]
    assert out.startswith(f"error: exported model {full}/best_model: no space left"), out
    assert "Traceback" not in err
    assert list(full.iterdir()) == []  # the temporary directory is gone


def test_safetensors_own_error_for_a_full_disk_is_recognised(tmp_path):
    from safetensors import SafetensorError

    def fill(directory: Path) -> None:
        (directory / "config.json").write_text("{}")
        raise SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    with pytest.raises(UserError, match=f"exported model {tmp_path / 'best_model'}: no space"):
        atomic.replace_dir(tmp_path / "best_model", fill, "exported model")
    assert list(tmp_path.iterdir()) == []
