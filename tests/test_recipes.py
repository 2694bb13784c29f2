"""A run trains with the recipe of the model it actually trains, and selects as a reader expects.

Issue 17: `model.name_or_path=DIR` alone used to train DIR with the tiny model's recipe (lr 3e-3,
warm-up 20, 10 epochs, batch 16) and end at F1 0.0. The recipe keys' defaults now follow
model.name_or_path (ner/config.py `recipe`); an experiment's or the command line's value wins.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import CONF, QUICK, compose, train_in_process

from ner import config, naming
from ner.errors import UserError
from ner.report.hparams import recipe_summary
from ner.run import checks

# its module-scoped fixture built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("recipes")

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
MODEL_GROUPS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
RECIPES = {  # the recipes as ner/config.py documents them
    "pretrained": {
        "optim.lr": 2e-5,
        "optim.warmup_steps": 0,
        "trainer.epochs": 3,
        "trainer.batch_size": 3,
        "trainer.eval_batch_size": 3,
    },
    "tiny": {
        "optim.lr": 3e-3,
        "optim.warmup_steps": 20,
        "trainer.epochs": 10,
        "trainer.batch_size": 16,
        "trainer.eval_batch_size": 64,
    },
}


def _group_recipes() -> dict[str, dict]:
    """Model name -> the recipe its group sets for it (`${ner_model_recipe:NAME,VALUE}`)."""
    found: dict[str, dict] = {}
    for path in (CONF / "model").glob("*.yaml"):
        doc = yaml.safe_load(path.read_text()) or {}
        for name in RECIPES["tiny"]:
            group, key = name.split(".")
            value = str((doc.get(group) or {}).get(key, ""))
            if value.startswith("${ner_model_recipe:"):
                model, number = value.removeprefix("${ner_model_recipe:").rstrip("}").split(",")
                found.setdefault(model, {})[name] = float(number)
    return found


GROUP_RECIPES = _group_recipes()


def _set_by(experiment: str) -> dict:
    """The recipe keys an experiment file sets itself (following the experiments it extends)."""
    doc = yaml.safe_load((CONF / "experiment" / f"{experiment}.yaml").read_text()) or {}
    found = {}
    for entry in doc.get("defaults", []):
        if isinstance(entry, str) and entry != "_self_":
            found.update(_set_by(entry))
    for name in RECIPES["tiny"]:
        group, key = name.split(".")
        if key in (doc.get(group) or {}):
            found[name] = doc[group][key]
    return found


def test_the_documented_recipes_are_the_schemas():
    declared = {name: f.metadata["recipe"] for name, f in config.fields() if "recipe" in f.metadata}
    assert declared == {
        k: {"pretrained": v, "tiny": RECIPES["tiny"][k]} for k, v in RECIPES["pretrained"].items()
    }


PATHS = [None, "null", "/models/some-encoder"]
# Groups with their own recipe (ner_model_recipe) are composed with the experiments that set no
# recipe key (demo), some (panx) and their own group (panx_xl_fsdp), not with every experiment:
# the guard reads model.name_or_path only, and each composition costs CI time (~0.3 s).
OWN_RECIPE_GROUPS = sorted(
    g for g in MODEL_GROUPS if "ner_model_recipe" in (CONF / "model" / f"{g}.yaml").read_text()
)
COMBINATIONS = [
    *itertools.product(
        EXPERIMENTS, [None, *(g for g in MODEL_GROUPS if g not in OWN_RECIPE_GROUPS)], PATHS
    ),
    *itertools.product(["demo", "panx", "panx_xl_fsdp"], OWN_RECIPE_GROUPS, PATHS),
]


@pytest.mark.parametrize(("experiment", "group", "path"), COMBINATIONS)
def test_every_combination_trains_with_the_recipe_of_the_model_it_trains(experiment, group, path):
    from test_commands import NEEDS_EXTRA

    package = NEEDS_EXTRA.get(experiment)
    if path is None and package and importlib.util.find_spec(package) is None:
        pytest.skip(f"{experiment}'s model is the package {package}: its extra is not installed")
    overrides = [f"experiment={experiment}"]
    overrides += [f"model={group}"] if group else []
    overrides += [f"model.name_or_path={path}"] if path else []
    cfg = compose(overrides)
    kind = "tiny" if cfg.model.name_or_path is None else "pretrained"
    # A model group's own recipe (conf/model/xlmr_large.yaml) applies to its model alone.
    group = (
        GROUP_RECIPES.get(naming.model_name(cfg.model.name_or_path), {}) if kind != "tiny" else {}
    )
    expected = {**RECIPES[kind], **group, **_set_by(experiment)}
    got = {name: getattr(getattr(cfg, name.split(".")[0]), name.split(".")[1]) for name in expected}
    assert got == expected
    summary = recipe_summary(cfg)
    assert summary.startswith(
        "recipe: the tiny random-init model's" if kind == "tiny" else "recipe: a pretrained"
    )
    for name, value in _set_by(experiment).items():
        if value != RECIPES[kind][name]:
            assert f"{name}={value}" in summary.split("set by the experiment or command line:")[1]


def test_a_model_groups_recipe_reaches_its_own_model_only():
    def recipe(overrides):
        cfg = compose(overrides)
        return cfg.optim.lr, cfg.trainer.epochs, cfg.trainer.batch_size

    assert recipe(["model=xlmr_large"]) == (2e-5, 10, 32)  # XTREME's PAN-X recipe
    local = ["model=xlmr_xl", "model.name_or_path=/models/xlm-roberta-xl"]
    assert recipe(local) == (1e-5, 10, 4)  # a local copy, known by its name
    assert recipe(["model=xlmr_xl", "model.name_or_path=/models/other"]) == (2e-5, 3, 3)
    assert recipe(["model=xlmr_xxl", "model.name_or_path=null"]) == (3e-3, 10, 16)  # the tiny's
    assert recipe(["model=xlmr_large", "trainer.epochs=2"]) == (2e-5, 2, 32)
    assert recipe_summary(compose(["model=xlmr_large", "trainer.epochs=2"])) == (
        "recipe: a pretrained encoder's (model.name_or_path=FacebookAI/xlm-roberta-large): its "
        "model group's for xlm-roberta-large: optim.lr=2e-05 optim.warmup_steps=0 "
        "trainer.batch_size=32 trainer.eval_batch_size=32; set by the experiment or command line: "
        "trainer.epochs=2"
    )


def test_a_command_line_value_wins_over_either_recipe():
    for path in ("null", "/models/x"):
        cfg = compose([f"model.name_or_path={path}", "optim.lr=1e-3", "trainer.epochs=2"])
        assert (cfg.optim.lr, cfg.trainer.epochs) == (1e-3, 2)


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory) -> Path:
    """A 'pretrained' model directory: the tiny XLM-R and its tokenizer, saved as a user's would be."""
    from ner.demo.generate import generate_split
    from ner.model import build_model, model_config
    from ner.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("pretrained") / "model"
    cfg = compose(QUICK)
    tokenizer = train_tokenizer((ex["tokens"] for ex in generate_split("train", 300)), 400)
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    model = build_model(cfg.model, model_config(cfg.model, labels, tokenizer), seed=0)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


@pytest.mark.slow
def test_name_or_path_alone_trains_with_the_pretrained_recipe_printed_at_start(
    tmp_path, pretrained_dir
):
    # No experiment, no group, no recipe key: what a user types after README's "your model".
    run = tmp_path / "run"
    overrides = [
        f"model.name_or_path={pretrained_dir}",
        "data.max_train_samples=60",
        "data.max_eval_samples=20",
        "trainer.epochs=1",
        "trainer.progress=false",
        "trainer.log_every=5",
        "trainer.threads=1",
    ]
    _, history = train_in_process(run, overrides)
    log = (run / "train.log").read_text()
    assert (
        f"recipe: a pretrained encoder's (model.name_or_path={pretrained_dir}): optim.lr=2e-05 "
        "optim.warmup_steps=0 trainer.batch_size=3 trainer.eval_batch_size=3; set by the "
        "experiment or command line: trainer.epochs=1"
    ) in log
    assert "global batch 3;" in log
    lrs = [e["learning_rate"] for e in history if "learning_rate" in e]
    assert lrs and max(lrs) <= 2e-5  # linear decay from 2e-5, no warm-up
    card = (run / "README.md").read_text()
    assert "# model-finetuned-demo" not in card  # the directory's generic name is not the title
    assert "- learning_rate: 2e-05" in card


def test_the_default_monitor_selects_on_the_training_languages():
    # One training set, one extra file: the extra file selects nothing.
    cfg = compose([*QUICK, "+data.extra_eval_files.news=news.conll"])
    assert (cfg.trainer.monitor, str(cfg.trainer.monitor_mode)) == ("eval_demo_f1", "max")
    # Zero-shot languages select nothing; several training languages: their mean.
    cfg = compose(["experiment=panx_he_ar", "data.eval_configs=[he,ar,fa]"])
    assert cfg.trainer.monitor == "eval_training_f1"
    assert "eval_training_f1" in checks.monitorable(cfg.data)
    cfg = compose(["experiment=panx", "data.eval_configs=[he,fa]"])
    assert cfg.trainer.monitor == "eval_he_f1"
    # Every set a training set: the plain mean, as before.
    assert compose(["experiment=demo_multilingual"]).trainer.monitor == "eval_f1"
    assert compose(QUICK).trainer.monitor == "eval_f1"


def test_monitor_mode_follows_the_metric_and_a_contradiction_is_refused():
    cfg = compose([*QUICK, "trainer.monitor=eval_loss"])
    assert str(cfg.trainer.monitor_mode) == "min"
    checks.check(cfg)
    assert str(compose([*QUICK, "trainer.monitor=eval_f1"]).trainer.monitor_mode) == "max"
    with pytest.raises(
        UserError,
        match=r"trainer.monitor_mode=max contradicts trainer.monitor=eval_loss \(lower is better\)",
    ):
        checks.check(compose([*QUICK, "trainer.monitor=eval_loss", "trainer.monitor_mode=max"]))
    checks.check(compose([*QUICK, "trainer.monitor=eval_loss", "trainer.monitor_mode=min"]))


def _conll(path: Path, split: str, n: int, language: str = "he") -> Path:
    from ner.demo.generate import generate_split

    rows = generate_split(split, n, language=language)
    path.write_text(
        "\n\n".join(
            "\n".join(f"{w} {t}" for w, t in zip(r["tokens"], r["ner_tags"], strict=True))
            for r in rows
        )
        + "\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
def test_extra_evaluation_files_are_scored_but_select_nothing(tmp_path):
    extra = _conll(tmp_path / "news.conll", "test", 30, "ar")
    overrides = [
        *QUICK,
        "data.config=[he,ar]",
        "data.max_eval_samples=30",
        "trainer.epochs=3",
        f"+data.extra_eval_files.news={extra}",
    ]
    best, history = train_in_process(tmp_path / "run", overrides)
    evals = [e for e in history if "eval_f1" in e]
    for e in evals:
        assert e["eval_training_f1"] == pytest.approx((e["eval_he_f1"] + e["eval_ar_f1"]) / 2)
        assert e["eval_f1"] == pytest.approx(
            (e["eval_he_f1"] + e["eval_ar_f1"] + e["eval_news_f1"]) / 3
        )
    chosen = max(evals, key=lambda e: e["eval_training_f1"])  # first best: max keeps the first
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (result["monitor"], result["monitor_mode"]) == ("eval_training_f1", "max")
    assert result["best_epoch"] == chosen["epoch"] and best == chosen["eval_training_f1"]


def test_the_models_own_name_titles_the_run(tmp_path):
    assert naming.model_name("xlm-roberta-base") == "xlm-roberta-base"
    assert naming.model_name("FacebookAI/xlm-roberta-large") == "xlm-roberta-large"
    plain = tmp_path / "my-bert"
    plain.mkdir()
    assert naming.model_name(str(plain)) == "my-bert"
    generic = tmp_path / "pkg" / "model"
    generic.mkdir(parents=True)
    assert naming.model_name(str(generic)) == "pkg"  # no card: the parent's name
    (generic / "README.md").write_text(
        "---\nlanguage: en\n---\n\n# all-MiniLM-L6-v2\n\ntext\n# x\n"
    )
    assert naming.model_name(str(generic)) == "all-MiniLM-L6-v2"
    snapshot = tmp_path / "hub" / "models--FacebookAI--xlm-roberta-base" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    assert naming.model_name(str(snapshot)) == "xlm-roberta-base"
    cfg = compose(
        [f"model.name_or_path={generic}", "data.name=../shared/wikiann", "data.config=en"]
    )
    assert naming.run_name(cfg) == "all-MiniLM-L6-v2-finetuned-wikiann-en"


def test_the_card_names_the_encoder_family_from_the_models_config():
    from transformers import (
        BertConfig,
        DebertaV2Config,
        ElectraConfig,
        RobertaConfig,
        XLMRobertaConfig,
    )

    from ner.model import encoder_family

    assert [
        encoder_family(c())
        for c in (BertConfig, XLMRobertaConfig, RobertaConfig, DebertaV2Config, ElectraConfig)
    ] == ["BERT", "XLM-RoBERTa", "RoBERTa", "DeBERTa-v2", "ELECTRA"]


def test_the_card_says_how_many_epochs_ran_and_why_training_stopped():
    from ner.finish import epochs_trained

    def run(epoch, epochs, schedule, patience=0):
        progress = SimpleNamespace(epoch=epoch, schedule=schedule)
        trainer = SimpleNamespace(
            epochs=epochs, monitor="eval_f1", early_stopping_patience=patience
        )
        return progress, trainer, 100  # 100 steps per epoch

    assert epochs_trained(*run(8, 10, [[0, 1000]], patience=3)) == (
        "8 of 10: early stopping, eval_f1 did not improve for 3 evaluations"
    )
    assert epochs_trained(*run(10, 10, [[0, 1000]])) == "10"
    assert epochs_trained(*run(5, 5, [[0, 300], [300, 500]])) == (
        "5: a finished run of 3 epochs extended to 5"
    )


REFUSED = {
    "warm-up": (
        ["optim.warmup_steps=1000"],
        "optim.warmup_steps=1000 is not shorter than training",
    ),
    "demo language": (["data.config=[he,xx]"], "xx"),
    "missing extra file": (
        ["+data.extra_eval_files.news=/nonexistent/news.conll"],
        "/nonexistent/news.conll",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_value_that_cannot_work_is_refused_before_the_run_directory_exists(tmp_path, case):
    from ner.distributed import Env
    from ner.train import train

    overrides, words = REFUSED[case]
    run = tmp_path / "runs" / "run"
    with pytest.raises(UserError, match=words.replace("[", r"\[")):
        train(compose([*QUICK, *overrides]), Env(), run)
    assert not (tmp_path / "runs").exists()


def test_evaluation_labels_the_training_data_lacks_are_refused_before_the_run_directory(tmp_path):
    from ner.distributed import Env
    from ner.train import train

    train_file = _conll(tmp_path / "train.conll", "train", 40)
    dev = tmp_path / "dev.conll"
    dev.write_text("Moshe B-PER\nworks O\nat O\nACME B-MISC\n", encoding="utf-8")
    overrides = [
        *QUICK,
        "data.name=null",
        f"data.train_file={train_file}",
        f"data.validation_file={dev}",
    ]
    with pytest.raises(UserError, match="MISC"):
        train(compose(overrides), Env(), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_refused_run_leaves_an_existing_directory_as_it_was(tmp_path):
    from ner.distributed import Env
    from ner.train import train

    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(UserError):
        train(compose([*QUICK, "optim.warmup_steps=1000"]), Env(), run)
    assert [p.name for p in run.iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_the_command_line_refusal_removes_the_directory_hydra_made(tmp_path):
    import sys

    from conftest import REPO, run_cli

    out = run_cli(
        [
            sys.executable,
            "-m",
            "ner.train",
            *QUICK,
            "optim.warmup_steps=1000",
            "hydra.run.dir=outputs/run",
        ],
        cwd=tmp_path,
        env_extra={"PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: config: optim.warmup_steps=1000")
    assert not (tmp_path / "outputs").exists()
