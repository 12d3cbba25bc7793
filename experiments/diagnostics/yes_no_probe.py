"""Probe: can a fine-tuned audio-LLM learn yes/no questions when they get the whole gradient?

Continues training a saved AudioLLM (all of the LLM and the projector, encoder frozen) on the
training scenes' questions of the given types only, printing the mean loss per 50 steps beside
ln 2 / 2 (a yes/no answer is one token plus eos: the loss of a coin flip), then the exact-match
accuracy of greedy answers on the test set's questions of those types. The model on disk is not changed.

    python experiments/diagnostics/yes_no_probe.py --model out/llm_tiny4/model --train out/tiny_train \
        --test out/tiny_test --types negative --steps 300
"""

import argparse
import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from spatial_alm.data import SpatialQADataset, dataset_info
from spatial_alm.models.audio_llm import AudioLLM
from spatial_alm.training.common import split_indices
from spatial_alm.training.finetune import collate_qa, read_qa_table


def accuracy(model: AudioLLM, dataset: SpatialQADataset, indices: np.ndarray) -> float:
    model.eval()
    right = 0
    for batch in DataLoader(Subset(dataset, indices), batch_size=32, collate_fn=collate_qa):
        answers = model.generate(batch["audio"], batch["questions"], max_new_tokens=2)
        right += sum(answer == truth for answer, truth in zip(answers, batch["answers"]))
    model.train()
    return 100.0 * right / len(indices)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="AudioLLM directory (spatial-alm finetune's model/)")
    parser.add_argument("--train", required=True, help="the dataset it was fine-tuned on")
    parser.add_argument("--test", required=True, help="held-out dataset")
    parser.add_argument("--types", default="negative", help="comma-separated yes/no question types")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--val-fraction", type=float, default=0.1, help="as in the fine-tuning config")
    parser.add_argument("--seed", type=int, default=0, help="as in the fine-tuning config (train split)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    types = args.types.split(",")
    model = AudioLLM.from_pretrained(args.model).train()
    model.full_finetune_llm = True
    model.llm.requires_grad_(True)
    train_qa, test_qa = read_qa_table(args.train), read_qa_table(args.test)
    train_scenes, _ = split_indices(dataset_info(args.train)["num_scenes"], args.val_fraction, args.seed)
    wanted = np.isin(train_qa["question_type"], types) & np.isin(train_qa["scene_index"], train_scenes)
    train_idx = np.flatnonzero(wanted)
    test_idx = np.flatnonzero(np.isin(test_qa["question_type"], types))
    train_set, test_set = SpatialQADataset(args.train), SpatialQADataset(args.test)
    print(f"{len(train_idx)} training and {len(test_idx)} test questions of types {types}")
    print(f"test accuracy before: {accuracy(model, test_set, test_idx):.1f} %")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    generator, losses = torch.Generator().manual_seed(args.seed), []
    while len(losses) < args.steps:
        for batch in DataLoader(Subset(train_set, train_idx), batch_size=16, shuffle=True, generator=generator,
                                collate_fn=collate_qa):
            loss = model(**model.prepare_batch(batch["audio"], batch["questions"], batch["answers"])).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            if len(losses) % 50 == 0:
                print(f"step {len(losses)}: mean loss {np.mean(losses[-50:]):.3f} (ln 2 / 2 = {math.log(2) / 2:.3f})",
                      flush=True)
            if len(losses) == args.steps:
                break
    print(f"test accuracy after: {accuracy(model, test_set, test_idx):.1f} %")


if __name__ == "__main__":
    main()
