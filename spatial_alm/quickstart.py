"""The whole pipeline in one call: simulate -> pretrain the encoder -> fine-tune the audio-LLM -> evaluate -> report.

A quickstart config (``experiments/quickstart/*.yaml``) names a scene recipe, an encoder config and a
fine-tuning config (paths relative to the config file) with overrides of each, the dataset sizes and
the evaluation sizes; ``base:`` lets an ablation extend another config and change only what it
studies. :func:`run_quickstart` runs the stages in order into one folder::

    OUT/data/train, OUT/data/test    simulate   (spatial-alm simulate, two seeds)
    OUT/encoder, OUT/encoder_eval    encoder    (pretrain-encoder, evaluate-encoder beside the baseline)
    OUT/llm                          llm        (finetune)
    OUT/qa_eval                      evaluate   (evaluate: per-type table, random and encoder-head rows)
    OUT/report/                      report     (report.md, summary.json, PNG plots)

Every stage records a fingerprint of its inputs (its settings and those of the stages it reads) in
``OUT/quickstart_state.json``. A re-run skips a finished stage whose fingerprint is unchanged, resumes
an interrupted one from its checkpoints, and starts over a stage whose inputs changed (and every later
stage); ``redo`` forces a stage and the ones after it (a redone simulation keeps the complete shards
of the same dataset: scene i is a function of recipe, seed and i, so rendering them again gives the
same bytes).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spatial_alm.config import dataclass_from_dict, load_yaml_file, merge_overrides
from spatial_alm.training.common import raise_on_failed_checks

STAGES = ("simulate", "encoder", "llm", "evaluate", "report")
STATE_FILE = "quickstart_state.json"
PATH_FIELDS = ("recipe", "encoder_config", "llm_config")
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "quickstart" / "cpu_default.yaml"


@dataclass
class QuickstartConfig:
    """Settings of one end-to-end run (YAML keys = field names; unknown keys are errors)."""

    recipe: str  # scene recipe YAML (simulation/*.yaml)
    encoder_config: str  # encoder pretraining config YAML (experiments/encoder/*.yaml)
    llm_config: str  # fine-tuning config YAML (experiments/llm/*.yaml)
    recipe_overrides: dict = field(default_factory=dict)  # dotted keys, as `simulate --set`
    encoder_overrides: dict = field(default_factory=dict)  # as `pretrain-encoder --set`
    llm_overrides: dict = field(default_factory=dict)  # as `finetune --set`
    llm: str | None = None  # local LLaMA checkpoint directory (None: the config's)
    description: str = ""  # one line for the report: what this run is for
    train_scenes: int = 1200
    test_scenes: int = 200
    num_shards: int = 2
    workers: int = 2  # processes simulating shards in parallel
    seed: int = 0  # training scenes (and the training runs' split)
    test_seed: int = 1  # held-out scenes: a different seed, so no scene is shared
    eval_questions: int | None = 400  # questions drawn from the test set for the audio-LLM (None: all)
    eval_batch_size: int = 16
    num_examples: int = 8  # example questions with answers in the report

    def __post_init__(self):
        checks = {
            "train_scenes": (self.train_scenes >= 2, ">= 2"),
            "test_scenes": (self.test_scenes >= 1, ">= 1"),
            "num_shards": (1 <= self.num_shards <= min(self.train_scenes, self.test_scenes),
                           "1 .. min(train_scenes, test_scenes)"),
            "workers": (self.workers >= 1, ">= 1"),
            "test_seed": (self.test_seed != self.seed, f"!= seed ({self.seed}), so that the test scenes are new"),
            "eval_questions": (self.eval_questions is None or self.eval_questions >= 1, "None (all) or >= 1"),
            "eval_batch_size": (self.eval_batch_size >= 1, ">= 1"),
            "num_examples": (self.num_examples >= 0, ">= 0"),
            **{name: (Path(getattr(self, name)).is_file(), "an existing file") for name in PATH_FIELDS},
        }
        raise_on_failed_checks("quickstart config", self, checks)

    def to_dict(self) -> dict:
        return asdict(self)


def _read_config_file(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The YAML mapping of ``path`` merged over its ``base`` (recursively), with paths made absolute
    relative to the file that names them."""
    path = path.resolve()
    if path in seen:
        raise ValueError(f"quickstart config {path}: `base` chain loops back to itself")
    if not path.is_file():
        raise ValueError(f"quickstart config {path}: file not found")
    data = load_yaml_file(path, "quickstart config") or {}
    if not isinstance(data, dict):
        raise ValueError(f"quickstart config {path}: expected a YAML mapping, got {type(data).__name__}")
    for name in (*PATH_FIELDS, "base"):
        if isinstance(data.get(name), str):
            data[name] = str((path.parent / data[name]).resolve())
    base = data.pop("base", None)
    return merge_overrides(_read_config_file(Path(base), (*seen, path)), data) if base else data


def load_quickstart_config(path: str | Path = DEFAULT_CONFIG, overrides: dict | None = None) -> QuickstartConfig:
    """Read a quickstart config (with its ``base`` chain) and apply dotted ``overrides``."""
    data = merge_overrides(_read_config_file(Path(path)), overrides or {})
    return dataclass_from_dict(QuickstartConfig, data, "quickstart config")


def _fingerprint(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _State:
    """``OUT/quickstart_state.json``: per stage its fingerprint, whether it finished, its wall time."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / STATE_FILE
        self.stages = json.loads(self.path.read_text())["stages"] if self.path.is_file() else {}

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"stages": self.stages}, indent=2) + "\n")
        tmp.replace(self.path)


def _stage_inputs(config: QuickstartConfig) -> tuple[dict[str, dict], dict]:
    """What each stage's result depends on (its own settings; the fingerprint chains the earlier ones),
    and the parsed recipe and training configs (``recipe``, ``encoder``, ``llm``)."""
    from spatial_alm.scenes import SceneRecipe
    from spatial_alm.training.finetune import FinetuneConfig
    from spatial_alm.training.pretrain import PretrainConfig

    recipe = SceneRecipe.from_yaml(config.recipe, config.recipe_overrides)
    encoder = PretrainConfig.from_yaml(config.encoder_config, config.encoder_overrides)
    llm = FinetuneConfig.from_yaml(config.llm_config, config.llm_overrides)
    if config.llm is not None:
        llm = FinetuneConfig.from_dict({**asdict(llm), "llm": config.llm})
    return {
        "simulate": {"recipe": recipe.to_dict(), "train_scenes": config.train_scenes,
                     "test_scenes": config.test_scenes, "num_shards": config.num_shards, "seed": config.seed,
                     "test_seed": config.test_seed},
        "encoder": asdict(encoder),
        "llm": asdict(llm),
        "evaluate": {"eval_questions": config.eval_questions, "seed": config.seed},
        "report": {"num_examples": config.num_examples, "description": config.description},
    }, {"recipe": recipe, "encoder": encoder, "llm": llm}


def run_quickstart(config: QuickstartConfig, out_dir: str | Path, *, redo: str | None = None,
                   progress: bool = True, log=None) -> dict:
    """Run (or resume) every stage into ``out_dir``; return the report summary (``report/summary.json``).

    ``redo``: a stage name of :data:`STAGES`; that stage and every later one start over.
    ``log``: called with one line per stage event (default: print to stderr).
    """
    from spatial_alm.data.generate import generate_dataset
    from spatial_alm.evaluation.encoder_report import evaluate_encoder
    from spatial_alm.evaluation.qa_report import evaluate_qa
    from spatial_alm.evaluation.run_report import write_run_report
    from spatial_alm.training.finetune import finetune
    from spatial_alm.training.pretrain import pretrain

    if redo is not None and redo not in STAGES:
        raise ValueError(f"redo = {redo!r}; allowed: one of {list(STAGES)}")
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs, built = _stage_inputs(config)
    paths = {"train": out_dir / "data" / "train", "test": out_dir / "data" / "test",
             "encoder": out_dir / "encoder", "encoder_eval": out_dir / "encoder_eval", "llm": out_dir / "llm",
             "qa_eval": out_dir / "qa_eval", "report": out_dir / "report"}

    def simulate(resume: bool) -> None:
        for name, scenes, seed in (("train", config.train_scenes, config.seed),
                                   ("test", config.test_scenes, config.test_seed)):
            generate_dataset(built["recipe"], paths[name], seed=seed, num_scenes=scenes,
                             num_shards=config.num_shards, workers=config.workers, overwrite=not resume,
                             progress=progress)

    def encoder(resume: bool) -> None:
        pretrain(built["encoder"], paths["train"], paths["encoder"], overwrite=not resume, progress=progress)
        evaluate_encoder(paths["encoder"] / "model", paths["test"], paths["encoder_eval"], progress=progress)

    def llm(resume: bool) -> None:
        finetune(built["llm"], paths["train"], paths["encoder"] / "model", paths["llm"], overwrite=not resume,
                 progress=progress)

    def evaluate(resume: bool) -> None:
        evaluate_qa(paths["llm"] / "model", paths["test"], paths["qa_eval"], max_questions=config.eval_questions,
                    batch_size=config.eval_batch_size, seed=config.seed, progress=progress)

    def report(resume: bool) -> None:
        write_run_report(config, paths, state.stages, paths["report"])

    runners = {"simulate": simulate, "encoder": encoder, "llm": llm, "evaluate": evaluate, "report": report}
    state = _State(out_dir)
    fingerprint, changed = "", False
    started = time.perf_counter()
    for number, stage in enumerate(STAGES, 1):
        fingerprint = _fingerprint(fingerprint, inputs[stage])
        record = state.stages.get(stage, {})
        changed = changed or stage == redo or record.get("fingerprint") != fingerprint
        if not changed and record.get("done") and stage != "report":
            log(f"[{number}/{len(STAGES)}] {stage}: finished earlier with the same settings, reused "
                f"({record['wall_time_s']:.0f} s then)")
            continue
        resume = not changed  # same settings, not finished: continue from the stage's checkpoints
        log(f"[{number}/{len(STAGES)}] {stage}: "
            f"{'resuming' if resume and record and stage != 'report' else 'running'}")
        state.stages[stage] = {"fingerprint": fingerprint, "done": False, "wall_time_s": 0.0}
        state.save()
        tick = time.perf_counter()
        runners[stage](resume)
        state.stages[stage] = {"fingerprint": fingerprint, "done": True, "wall_time_s": time.perf_counter() - tick}
        state.save()
        changed = changed or stage != "report"  # a stage that ran invalidates everything after it
        log(f"[{number}/{len(STAGES)}] {stage}: done in {state.stages[stage]['wall_time_s']:.0f} s")
    summary = json.loads((paths["report"] / "summary.json").read_text())
    summary["this_call_wall_time_s"] = time.perf_counter() - started
    return summary
