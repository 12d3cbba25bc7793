"""Probe: can the built-in small LLaMA, trained from scratch, answer yes/no questions when the scene is
written out as text instead of heard?

The upper bound of what the audio-LLM's language side can learn in a given number of steps: each
training example is the fine-tuning prompt (``build_batch``; its one ``<audio>`` position is left
as a constant token) with the scene's description before the question (the answer of the
``description`` question type: every source's class, azimuth, elevation and distance, from the
metadata); question, template and yes/no draw are fresh at every step. Training scenes are the
fine-tuning split's training scenes; accuracy (exact match of greedy answers) is measured on freshly
drawn questions about the held-out scenes every ``--eval-every`` steps.

``--prompt-loss`` also trains on the prompt tokens (next-token loss on the description and the
question) instead of on the answer only.

    python experiments/diagnostics/text_only_qa_probe.py --train out/tiny_train --test out/tiny_test \
        --types negative --steps 4000 --hidden-size 128 --num-layers 2
"""

import argparse
import time

import numpy as np
import torch
from transformers import LlamaForCausalLM

from spatial_alm.data import dataset_info
from spatial_alm.data.reader import DatasetReader
from spatial_alm.models.audio_llm import IGNORE_INDEX, build_batch, build_prompt
from spatial_alm.models.text import small_llama_config, train_tokenizer
from spatial_alm.qa import generate_qa, make_qa
from spatial_alm.training.common import split_indices
from spatial_alm.training.finetune import read_qa_table


def text_example(meta, types: list[str], vocabulary: list[str],
                 rng: np.random.Generator) -> tuple[str, str, str] | None:
    """(scene description + question, answer, question type) of one random question, or None when the
    scene offers none of ``types``."""
    pairs = generate_qa(meta, rng, types, label_vocabulary=vocabulary)
    if not pairs:
        return None
    pair = pairs[int(rng.integers(len(pairs)))]
    return f"{make_qa('description', meta, rng).answer} {pair.question}", pair.answer, pair.question_type


def draw_examples(metas: list, count: int, types: list[str], vocabulary: list[str],
                  rng: np.random.Generator) -> list[tuple[str, str, str]]:
    examples = []
    while len(examples) < count:
        example = text_example(metas[int(rng.integers(len(metas)))], types, vocabulary, rng)
        if example is not None:
            examples.append(example)
    return examples


def training_batch(tokenizer, examples: list[tuple[str, str, str]], prompt_loss: bool) -> dict[str, torch.Tensor]:
    """``build_batch`` of the examples; with ``prompt_loss`` the labels also cover the prompt tokens."""
    batch = build_batch(tokenizer, [text for text, _, _ in examples], [answer for _, answer, _ in examples],
                        num_audio_tokens=1)
    if prompt_loss:
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE_INDEX)
    return batch


@torch.no_grad()
def accuracy(model, tokenizer, examples: list[tuple[str, str, str]]) -> dict[str, float]:
    """Percent of exact-match greedy answers, by question type."""
    model.eval()
    batch = build_batch(tokenizer, [text for text, _, _ in examples], num_audio_tokens=1)
    batch = {key: value.to(model.device) for key, value in batch.items()}
    out = model.generate(**batch, max_new_tokens=32, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    generated = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    model.train()
    right = {}
    for text, (_, answer, question_type) in zip(generated, examples):
        right.setdefault(question_type, []).append(text.strip() == answer)
    return {name: 100.0 * float(np.mean(hits)) for name, hits in sorted(right.items())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="training dataset (its fine-tuning training split is used)")
    parser.add_argument("--test", required=True, help="held-out dataset")
    parser.add_argument("--types", default="negative", help="comma-separated question types")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--prompt-loss", action="store_true", help="next-token loss on the prompt too")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--eval-questions", type=int, default=200)
    parser.add_argument("--val-fraction", type=float, default=0.1, help="as in the fine-tuning config")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    types = args.types.split(",")
    train, test = DatasetReader(args.train), DatasetReader(args.test)
    train_scenes, _ = split_indices(dataset_info(args.train)["num_scenes"], args.val_fraction, args.seed)
    train_metas = [train.meta(int(i)) for i in train_scenes]
    test_metas = [test.meta(i) for i in range(len(test))]
    vocabulary = sorted({source.label for meta in train_metas for source in meta.sources})

    qa = read_qa_table(args.train)
    descriptions = [make_qa("description", meta, rng).answer for meta in train_metas]
    tokenizer = train_tokenizer([build_prompt(q) for q in qa["question"]] + list(qa["answer"]) + descriptions)
    model = LlamaForCausalLM(small_llama_config(len(tokenizer), hidden_size=args.hidden_size,
                                                num_layers=args.num_layers, num_heads=args.num_heads)).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    test_examples = draw_examples(test_metas, args.eval_questions, types, vocabulary, np.random.default_rng(1))
    print(f"{len(train_metas)} training scenes, {len(test_metas)} test scenes, types {types}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, prompt loss {args.prompt_loss}")
    start, losses = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        batch = training_batch(tokenizer, draw_examples(train_metas, args.batch_size, types, vocabulary, rng),
                                args.prompt_loss)
        batch = {key: value.to(args.device) for key, value in batch.items()}
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % args.eval_every == 0:
            scores = ", ".join(f"{name} {acc:.1f} %" for name, acc in accuracy(model, tokenizer, test_examples).items())
            mean_loss = np.mean(losses[-args.eval_every:])
            elapsed_s = time.perf_counter() - start
            print(f"step {step} ({elapsed_s:.0f} s): mean loss {mean_loss:.3f}, test accuracy {scores}", flush=True)


if __name__ == "__main__":
    main()
