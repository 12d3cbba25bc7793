"""Probe: do the frozen encoder's tokens hold the answers of the yes/no types, with no language in the way?

The audio-LLM's yes/no types (E: "is the <a> to the left of the <b>?", negative: "is there a <c> to
your left?") stay at chance. This probe asks whether the encoder's tokens carry the answers at all.
A small transformer reads the encoder tokens of a scene (frozen, computed once) together with the
question in structured form -- learned embeddings of the named class(es) and of the relation or
region, no words -- and is trained with binary cross-entropy on questions drawn anew from each
training scene's metadata at every use (the QA generator). Scores on a
held-out dataset: accuracy, balanced accuracy (50 for any constant answer) and share answered yes,
overall, per axis (left/right, front/back, above/below, distance) and for negative probes per kind
(yes; no with the class present elsewhere; no with the class absent).
Questions are drawn about every axis; the rows "E, receiver's axes" and "negative, receiver's axes"
keep those about the axes the test scenes' receiver resolves (``scenes.render.receiver_axes``: a sphere
head left/right and distance), the measure of the reasoning issue.

Read beside the LLM's report: what this probe reaches is available in the tokens; what it does not
is missing there (or needs more data than the training set has), whatever the LLM. Front/back and
above/below cannot be heard through a spherical head without pinnae (no spectral cues), so those
axes should stay near 50 % on the sphere-head recipes.

With an encoder that has the class-wise heads, the heads' own answers come first, with no
training: E compares the two named classes' decoded directions along the relation's axis; a negative
probe is "yes" when the class's probability is >= 0.5 and its vector points into the region.
``--answers CSV`` writes those answers question by question; ``--paired-with CSV`` (another
encoder's ``--answers`` on the same test set) adds the exact McNemar test per type and axis, so two
encoders are compared on the same questions. ``--min-spectral-cue-db`` draws front/back and above/below
questions only about sources whose sound carries the head's colouring (``SourceMeta.front_back_cue_db``,
recorded by ``simulate``), as the recipe's ``qa.min_spectral_cue_db`` does.

    python experiments/diagnostics/encoder_yes_no_probe.py --encoder out/encoder_tiny/model \
        --train out/tiny_train --test out/tiny_test --steps 4000
"""

import argparse
import csv
import time
from collections import defaultdict

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from spatial_alm.data import DatasetReader
from spatial_alm.evaluation.metrics import mcnemar_exact, yes_no_accuracy
from spatial_alm.evaluation.qa_report import axis_of, class_direction_answer
from spatial_alm.models.encoder import SpatialEncoderModel
from spatial_alm.qa import canonical_label, make_qa
from spatial_alm.qa.templates import REGION_PHRASES, RELATION_PHRASES, SIDE_OF_PHRASE
from spatial_alm.scenes.render import receiver_axes

# every relation phrase of type E and region phrase of negative probes gets one embedding row
PHRASES = [phrase for pair in RELATION_PHRASES.values() for phrase in pair] + list(REGION_PHRASES.values())


@torch.no_grad()
def encoder_outputs(encoder: SpatialEncoderModel, reader: DatasetReader,
                    batch_size: int) -> tuple[torch.Tensor, torch.Tensor, tuple | None]:
    """Frozen encoder tokens (S, 3 + N, D), class probabilities (S, K) and the class-wise heads'
    (directions (S, K, 3), distances (S, K)) (None without them) of every scene of ``reader``."""
    encoder.eval()
    tokens, probs, directions, distances = [], [], [], []
    for lo in tqdm(range(0, len(reader), batch_size), desc="encoder tokens", unit="batch"):
        audio = torch.from_numpy(np.stack([reader.audio(i) for i in range(lo, min(lo + batch_size, len(reader)))]))
        encoded = encoder.encode(audio)
        prediction = encoder.heads.predict(encoded)
        tokens.append(encoded.tokens)
        probs.append(prediction.class_probs)
        directions.append(prediction.class_directions)
        distances.append(prediction.class_distances)
    heads = None if directions[0] is None else (torch.cat(directions), torch.cat(distances))
    return torch.cat(tokens), torch.cat(probs), heads


def head_answer(question: dict, class_probs: torch.Tensor, class_directions: torch.Tensor,
                class_distances: torch.Tensor) -> bool | None:
    """The class-wise heads' own answer (``class_direction_answer`` of the QA evaluation), no training."""
    class_a, class_b, phrase = question["ids"]
    if PHRASES[phrase] not in SIDE_OF_PHRASE[question["type"]]:
        return None
    return class_direction_answer(question["type"], PHRASES[phrase], (class_a, class_b), class_probs,
                                  class_directions, class_distances)


class QuestionSampler:
    """Draws E / negative questions about a scene and encodes them as (class a, class b, phrase) ids."""

    def __init__(self, class_names: list[str], types: list[str], min_spectral_cue_db: float | None = None):
        self.class_names = [canonical_label(name) for name in class_names]
        self.min_spectral_cue_db = min_spectral_cue_db
        self.class_id = {name: k for k, name in enumerate(self.class_names)}
        self.no_class = len(self.class_names)  # id of the missing second class of negative probes
        self.types = types

    def draw(self, meta, rng: np.random.Generator) -> dict | None:
        """One question about ``meta`` of a random type, or None when the scene offers none of it."""
        pair = make_qa(self.types[int(rng.integers(len(self.types)))], meta, rng, label_vocabulary=self.class_names,
                       min_spectral_cue_db=self.min_spectral_cue_db)
        if pair is None:
            return None
        fields = pair.fields
        if pair.question_type == "E":
            label_a, label_b, phrase, kind = fields["label_a"], fields["label_b"], fields["relation"], "E"
            ids = (self.class_id[label_a], self.class_id[label_b])
        else:
            label_a, phrase = fields["a_label"].split(" ", 1)[1], fields["region"]
            present = label_a in {canonical_label(s.label) for s in meta.sources}
            kind = "yes" if pair.target["yes"] else "no, present elsewhere" if present else "no, class absent"
            ids = (self.class_id[label_a], self.no_class)
        axis = axis_of(pair.question)
        return {"ids": (*ids, PHRASES.index(phrase)), "yes": bool(pair.target["yes"]), "type": pair.question_type,
                "axis": axis, "kind": kind, "audible": axis in receiver_axes(meta.receiver)}

    def batch(self, metas: list, scene_indices: np.ndarray, rng: np.random.Generator) -> tuple[list[int], list[dict]]:
        """Questions for ``scene_indices`` (scenes without one of the types are skipped) and their scenes."""
        rows, questions = [], []
        for i in scene_indices:
            question = self.draw(metas[i], rng)
            if question is not None:
                rows.append(int(i))
                questions.append(question)
        return rows, questions


class QuestionProbe(nn.Module):
    """Three query tokens (class a, class b, phrase) + projected encoder tokens -> transformer -> yes logit."""

    def __init__(self, token_dim: int, num_classes: int, width: int, depth: int, num_heads: int, dropout: float):
        super().__init__()
        self.tokens_in = nn.Sequential(nn.LayerNorm(token_dim), nn.Linear(token_dim, width))
        self.classes = nn.Embedding(num_classes + 1, width)  # last row: no second class
        self.phrases = nn.Embedding(len(PHRASES), width)
        self.slots = nn.Parameter(torch.randn(3, width) * 0.02)  # which query token is which
        layer = nn.TransformerEncoderLayer(width, num_heads, 4 * width, dropout, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, 1)

    def forward(self, tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, D), ids (B, 3) -> yes logits (B,)."""
        query = torch.stack([self.classes(ids[:, 0]), self.classes(ids[:, 1]), self.phrases(ids[:, 2])], 1)
        x = torch.cat([query + self.slots, self.tokens_in(tokens)], 1)
        return self.out(self.norm(self.blocks(x)[:, 0])).squeeze(-1)


@torch.no_grad()
def probe_answers(probe: QuestionProbe, tokens: torch.Tensor, questions: list[dict], rows: list[int]) -> list[bool]:
    probe.eval()
    ids = torch.tensor([q["ids"] for q in questions])
    logits = torch.cat([probe(tokens[rows[lo:lo + 512]], ids[lo:lo + 512]) for lo in range(0, len(rows), 512)])
    probe.train()
    return (logits > 0).tolist()


def _groups(question: dict, kinds: bool) -> list[str]:
    """The groups a question is scored in: its type, its type on the receiver's axes (those the scene's
    receiver resolves, the issue's measure), its type and axis and, with ``kinds``, its negative kind."""
    groups = [question["type"], f"{question['type']} {question['axis']}"]
    if question["audible"]:
        groups.append(f"{question['type']}, receiver's axes")
    if kinds and question["type"] != "E":
        groups.append(f"{question['type']} {question['kind']}")
    return groups


def score(questions: list[dict], answers: list[bool | None]) -> dict:
    """yes_no_accuracy overall and per group ("E", "E, receiver's axes", "E left_right", "negative yes",
    ...); questions answered None are left out."""
    groups = defaultdict(list)
    for q, answer in zip(questions, answers):
        if answer is None:
            continue
        for group in _groups(q, kinds=True):
            groups[group].append((answer, q["yes"]))
    return {group: yes_no_accuracy(*zip(*pairs)) for group, pairs in sorted(groups.items())}


def format_scores(scores: dict) -> str:
    lines = [f"{'group':<34} {'n':>5} {'accuracy':>9} {'balanced':>9} {'answered yes':>13}"]
    for group, s in scores.items():
        lines.append(f"{group:<34} {s['total']:>5} {s['accuracy']:>8.1f}% {s['balanced_accuracy']:>8.1f}% "
                     f"{s['answered_yes']:>12.0f}%")
    return "\n".join(lines)


ANSWER_FIELDS = ("row", "type", "axis", "kind", "ids", "yes", "answer")


def write_answers(path: str, questions: list[dict], rows: list[int], answers: list[bool | None]):
    """One CSV row per test question: its scene row, type, axis, kind, ids, truth and the heads' answer."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ANSWER_FIELDS)
        for q, row, answer in zip(questions, rows, answers):
            writer.writerow([row, q["type"], q["axis"], q["kind"], " ".join(map(str, q["ids"])), int(q["yes"]),
                             "" if answer is None else int(answer)])


def paired_lines(path: str, questions: list[dict], rows: list[int], answers: list[bool | None]) -> str:
    """Exact McNemar test per type and per type and axis: these answers (A) against ``path``'s (B),
    which must hold the same questions (same test set, class vocabulary and seed)."""
    with open(path, newline="") as f:
        other = list(csv.DictReader(f))
    mine = [(str(row), q["type"], " ".join(map(str, q["ids"])), str(int(q["yes"]))) for q, row in zip(questions, rows)]
    if [(r["row"], r["type"], r["ids"], r["yes"]) for r in other] != mine:
        raise SystemExit(f"{path}: not the same questions (another test set, vocabulary or --seed)")
    groups = defaultdict(lambda: ([], []))
    for q, answer, r in zip(questions, answers, other):
        if answer is None or r["answer"] == "":
            continue
        for group in _groups(q, kinds=False):
            groups[group][0].append(answer == q["yes"])
            groups[group][1].append(bool(int(r["answer"])) == q["yes"])
    lines = [f"{'group':<34} {'n':>5} {'A right':>8} {'B right':>8} {'A only':>7} {'B only':>7} {'p':>7}"]
    for group, (a, b) in sorted(groups.items()):
        test = mcnemar_exact(a, b)
        lines.append(f"{group:<34} {len(a):>5} {np.mean(a) * 100:>7.1f}% {np.mean(b) * 100:>7.1f}% "
                     f"{test['a_only']:>7} {test['b_only']:>7} {test['p_value']:>7.3f}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", required=True, help="encoder directory (spatial-alm pretrain-encoder's model/)")
    parser.add_argument("--train", required=True, help="dataset whose scenes train the probe")
    parser.add_argument("--test", required=True, help="held-out dataset")
    parser.add_argument("--types", default="E,negative", help="comma-separated yes/no question types")
    parser.add_argument("--tokens", choices=("all", "cls"), default="all",
                        help="all encoder tokens, or only the three CLS tokens the heads read")
    parser.add_argument("--steps", type=int, default=4000, help="training steps (0: only the head's own answers)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--test-questions", type=int, default=10, help="questions drawn per test scene")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-spectral-cue-db", type=float, default=None,
                        help="ask about a source's front/back or above/below side only when its recorded spectral cue "
                             "is at least this (the recipe's qa.min_spectral_cue_db, 1 by default in simulate; "
                             "default here: every source, as datasets made without the cues)")
    parser.add_argument("--answers", help="write the class-wise heads' answers per test question to this CSV")
    parser.add_argument("--paired-with", help="another encoder's --answers CSV on the same test set: paired test")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    encoder = SpatialEncoderModel.from_pretrained(args.encoder)
    if encoder.class_names is None:
        parser.error(f"{args.encoder} has no class_names; the probe needs the class vocabulary")
    sampler = QuestionSampler(list(encoder.class_names), args.types.split(","), args.min_spectral_cue_db)
    start = time.perf_counter()
    data = {}
    splits = (("train", args.train), ("test", args.test)) if args.steps else (("test", args.test),)
    for split, path in splits:
        reader = DatasetReader(path)
        tokens, class_probs, class_heads = encoder_outputs(encoder, reader, 64)
        data[split] = (tokens[:, :3] if args.tokens == "cls" else tokens, [reader.meta(i) for i in range(len(reader))],
                       class_probs, class_heads)
    test_tokens, test_metas, test_probs, test_heads = data["test"]
    rng = np.random.default_rng(args.seed + 1)
    test_rows, test_questions = sampler.batch(test_metas, np.repeat(np.arange(len(test_metas)), args.test_questions),
                                              rng)
    print(f"tokens {tuple(test_tokens.shape)} test ({time.perf_counter() - start:.0f} s); "
          f"{len(test_questions)} test questions")
    if test_heads is not None:
        answers = [head_answer(q, test_probs[row], test_heads[0][row], test_heads[1][row])
                   for q, row in zip(test_questions, test_rows)]
        print("The class-wise heads' own answers (no training):")
        print(format_scores(score(test_questions, answers)))
        if args.answers:
            write_answers(args.answers, test_questions, test_rows, answers)
        if args.paired_with:
            print(f"Paired with {args.paired_with} (A: this encoder, B: that one; exact McNemar):")
            print(paired_lines(args.paired_with, test_questions, test_rows, answers))
    elif args.answers or args.paired_with:
        parser.error(f"{args.encoder} has no class-wise heads: --answers / --paired-with need them")
    if not args.steps:
        return

    train_tokens, train_metas = data["train"][:2]
    print(f"tokens {tuple(train_tokens.shape)} train")

    probe = QuestionProbe(train_tokens.shape[-1], len(sampler.class_names), args.width, args.depth, 4, args.dropout)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=args.lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=max(args.steps, 1), pct_start=0.05)
    losses = []
    for step in tqdm(range(1, args.steps + 1), desc="probe", unit="step"):
        rows, questions = sampler.batch(train_metas, rng.integers(len(train_metas), size=args.batch_size), rng)
        logits = probe(train_tokens[rows], torch.tensor([q["ids"] for q in questions]))
        loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([q["yes"] for q in questions],
                                                                                   dtype=torch.float32))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            train_rows, train_questions = sampler.batch(train_metas, np.arange(len(train_metas)),
                                                        np.random.default_rng(args.seed + 2))
            train_score = score(train_questions, probe_answers(probe, train_tokens, train_questions, train_rows))
            summary = ", ".join(f"{t} {train_score[t]['balanced_accuracy']:.1f} %" for t in sampler.types)
            tqdm.write(f"step {step}: loss {np.mean(losses[-100:]):.3f} (ln 2 = 0.693), "
                       f"balanced on training scenes {summary}")
            tqdm.write(format_scores(score(test_questions, probe_answers(probe, test_tokens, test_questions,
                                                                          test_rows))))
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
