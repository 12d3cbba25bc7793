"""Projectors, tokenizer, prompt batches, the audio splice, LoRA and save/load of the audio-LLM, at toy size."""

import json
import random
import re

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import GPT2Config, LlamaForCausalLM, PreTrainedTokenizerFast

from spatial_alm.features import SpatialFeatureConfig, num_planes
from spatial_alm.models import (
    IGNORE_INDEX,
    PROJECTORS,
    EncoderConfig,
    ProjectorConfig,
    SpatialEncoderModel,
    build_projector,
)
from spatial_alm.models.audio_llm import (
    LAST_COMMIT_WITH_REMOVED_OPTIONS,
    AudioLLM,
    apply_lora,
    build_batch,
    build_prompt,
    splice_audio,
    trainable_parameter_summary,
)
from spatial_alm.models.heard_sources import line_directions
from spatial_alm.models.text import AUDIO_TOKEN, load_llm, small_llama_config, train_tokenizer
from spatial_alm.qa.templates import with_article

FEATURES = SpatialFeatureConfig(fs_hz=16000, n_fft=256, hop_length=128, n_mels=32)
LABELS = ["dog", "siren", "bell", "speech", "door knock"]
QFORMER = ProjectorConfig(type="qformer", num_queries=4, num_layers=1, num_heads=2)
QUESTIONS = ["Where is the sound?", "Which sound events can you hear in this recording?"]
ANSWERS = ["azimuth -135 deg, elevation 10 deg, distance 2.5 m", "siren; bell"]


def qa_texts(n=50, seed=0) -> list[str]:
    """Prompts and answers in the dataset's answer formats."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        if i % 3 == 0:
            q = "Where is the sound coming from?"
            a = (f"azimuth {rng.randint(-179, 180)} deg, elevation {rng.randint(-90, 90)} deg, "
                 f"distance {rng.randint(0, 20) / 2:.1f} m")
        elif i % 3 == 1:
            q = "Which sound events can you hear?"
            a = "; ".join(sorted(rng.sample(LABELS, rng.randint(1, 3))))
        else:
            first, second = rng.sample(LABELS, 2)
            q, a = f"Is the {first} to the left of the {second}?", rng.choice(["yes", "no"])
        texts += [build_prompt(q), a]
    return texts


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(qa_texts(), vocab_size=400)


def toy_encoder(seed=0) -> SpatialEncoderModel:
    torch.manual_seed(seed)
    config = EncoderConfig.tiny(num_planes(FEATURES, 2), len(LABELS), n_mels=32, embed_dim=32, depth=1, num_heads=2)
    return SpatialEncoderModel(FEATURES, config, num_channels=2, class_names=LABELS)


def toy_llm(vocab_size, seed=0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(small_llama_config(vocab_size, hidden_size=32, num_layers=2, num_heads=2,
                                               max_position_embeddings=256))


def toy_audio(batch=2, seed=0) -> torch.Tensor:
    return torch.randn(batch, 2, 4000, generator=torch.Generator().manual_seed(seed)) * 0.1  # (B, C, T), 0.25 s


def builtin_model(tokenizer, **options) -> AudioLLM:
    return AudioLLM(toy_encoder(), toy_llm(len(tokenizer)), tokenizer, QFORMER, **options)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random LLaMA saved with a foreign tokenizer that has neither <audio> nor a pad token."""
    path = tmp_path_factory.mktemp("llama")
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(qa_texts(), trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"],
                                                               show_progress=False))
    foreign = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    toy_llm(len(foreign), seed=1).save_pretrained(path)
    foreign.save_pretrained(path)
    return path


def lora_model(checkpoint) -> AudioLLM:
    llm, tokenizer = load_llm(checkpoint)
    torch.manual_seed(0)
    return apply_lora(AudioLLM(toy_encoder(), llm, tokenizer, QFORMER))


def train_steps(model, batch, steps, lr=1e-2) -> list[float]:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# --- projectors -----------------------------------------------------------------------------------

def test_projector_shapes():
    tokens = torch.randn(2, 11, 32)  # (B, N, D_enc)
    for name in PROJECTORS:
        config = ProjectorConfig(type=name, num_queries=5, num_layers=2, num_heads=4)
        projector = build_projector(config, encoder_dim=32, llm_dim=48)
        q = 5 if name == "qformer" else 11
        assert projector(tokens).shape == (2, q, 48)
        assert projector.num_output_tokens(11) == q
    assert build_projector("mlp2x_gelu", 32, 48)(tokens).shape == (2, 11, 48)


def test_projector_errors_name_the_choices():
    with pytest.raises(ValueError, match="linear.*mlp2x_gelu.*qformer"):
        build_projector("perceiver", 32, 48)
    with pytest.raises(ValueError, match="type"):
        ProjectorConfig(type="perceiver")
    with pytest.raises(ValueError, match="num_queries"):
        ProjectorConfig(num_queries=0)
    with pytest.raises(ValueError, match="num_heads"):
        build_projector(ProjectorConfig(num_heads=5), 32, 48)


# --- tokenizer and prompt batches -----------------------------------------------------------------

def test_tokenizer_round_trip_keeps_numbers(tokenizer):
    for text in ANSWERS + ["elevation -90 deg", "distance 10.0 m", "azimuth 180 deg, elevation 0 deg"]:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.unk_token_id not in ids
        assert " ".join(tokenizer.decode(ids).split()) == " ".join(text.split())
    digits = tokenizer.convert_ids_to_tokens(tokenizer.encode("-135", add_special_tokens=False))
    assert digits[-3:] == ["1", "3", "5"]  # digits split one by one
    assert tokenizer.convert_ids_to_tokens(tokenizer.encode(AUDIO_TOKEN, add_special_tokens=False)) == [AUDIO_TOKEN]
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["a"], vocab_size=100)


def test_class_names_are_the_same_tokens_in_answers_and_questions(tokenizer):
    # An answer is encoded on its own (build_batch), a class name inside a question follows a space:
    # both must give the same ids, or the model cannot bind a named class to the one it hears.
    def ids(text):
        return tokenizer.encode(text, add_special_tokens=False)

    for label in LABELS:
        answer = ids(label)
        question = ids(build_prompt(f"Is the {label} to the left of the bell?"))
        assert any(question[i:i + len(answer)] == answer for i in range(len(question))), label
        assert ids(f"bell; {label}")[-len(answer):] == answer


def test_builtin_llm_ties_input_and_output_embeddings(tokenizer):
    llm = toy_llm(len(tokenizer))
    assert llm.get_input_embeddings().weight.data_ptr() == llm.get_output_embeddings().weight.data_ptr()
    assert not LlamaForCausalLM(small_llama_config(50, tie_word_embeddings=False)).config.tie_word_embeddings


def test_build_batch_labels_and_padding(tokenizer):
    q = 7
    batch = build_batch(tokenizer, QUESTIONS, ANSWERS, num_audio_tokens=q)
    audio_id = tokenizer.convert_tokens_to_ids(AUDIO_TOKEN)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    assert ids.shape == mask.shape == labels.shape and ids.shape[0] == 2
    assert (ids == audio_id).sum(1).tolist() == [q, q]
    for i, answer in enumerate(ANSWERS):
        answer_ids = tokenizer.encode(answer, add_special_tokens=False) + [tokenizer.eos_token_id]
        length = int(mask[i].sum())
        assert mask[i, :length].all() and not mask[i, length:].any()  # right padding
        assert (ids[i, length:] == tokenizer.pad_token_id).all()
        start = length - len(answer_ids)
        assert ids[i, 0] == tokenizer.bos_token_id
        assert labels[i, start:length].tolist() == answer_ids == ids[i, start:length].tolist()
        assert (labels[i, :start] == IGNORE_INDEX).all() and (labels[i, length:] == IGNORE_INDEX).all()
        prompt = tokenizer.decode(ids[i, :start], skip_special_tokens=True)  # with the added leading space
        assert prompt == " " + build_prompt(QUESTIONS[i]).replace(AUDIO_TOKEN, "")

    generation = build_batch(tokenizer, QUESTIONS, num_audio_tokens=q)
    assert set(generation) == {"input_ids", "attention_mask"}
    lengths = generation["attention_mask"].sum(1)
    assert lengths[0] < lengths[1] and generation["attention_mask"][:, -1].all()  # left padding
    assert (generation["input_ids"][0, : -lengths[0]] == tokenizer.pad_token_id).all()
    with pytest.raises(ValueError, match="placeholder"):
        build_batch(tokenizer, [f"is {AUDIO_TOKEN} here?"], num_audio_tokens=q)


# --- splice -----------------------------------------------------------------------------------------

def test_splice_puts_audio_at_the_placeholders():
    text_embeds = torch.randn(2, 6, 3)
    audio_embeds = torch.randn(2, 2, 3)
    mask = torch.tensor([[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 1]], dtype=torch.bool)
    expected = text_embeds.clone()
    for b in range(2):
        for k, position in enumerate(mask[b].nonzero().flatten().tolist()):
            expected[b, position] = audio_embeds[b, k]
    assert torch.equal(splice_audio(text_embeds, audio_embeds, mask), expected)
    with pytest.raises(ValueError, match="placeholders per row"):
        splice_audio(text_embeds, audio_embeds[:, :1], mask)


def test_model_embed_and_placeholder_count(tokenizer):
    model = builtin_model(tokenizer).eval()
    audio = toy_audio()
    batch = model.prepare_batch(audio, QUESTIONS, ANSWERS)
    assert model.num_audio_tokens(audio.shape[-1]) == QFORMER.num_queries
    inputs_embeds = model.embed(audio, batch["input_ids"])
    placeholders = batch["input_ids"] == model.audio_token_id
    text_embeds = model.llm.get_input_embeddings()(batch["input_ids"])
    assert torch.equal(inputs_embeds[~placeholders], text_embeds[~placeholders])
    assert torch.allclose(inputs_embeds[placeholders], model.audio_embeddings(audio).flatten(0, 1))
    wrong = build_batch(tokenizer, QUESTIONS, ANSWERS, num_audio_tokens=QFORMER.num_queries + 1)
    with pytest.raises(ValueError, match="Q = 4"):
        model(audio, **wrong)


# --- local checkpoints and LoRA -------------------------------------------------------------------

def test_load_llm_adds_tokens_deterministically(checkpoint, tmp_path):
    llm, tokenizer = load_llm(checkpoint)
    assert tokenizer.pad_token is not None and AUDIO_TOKEN in tokenizer.all_special_tokens
    rows = llm.get_input_embeddings().weight
    assert rows.shape[0] == len(tokenizer) == llm.get_output_embeddings().weight.shape[0]
    assert torch.allclose(rows[-1], rows[:-2].mean(0))
    again, _ = load_llm(checkpoint)
    assert torch.equal(again.get_output_embeddings().weight, llm.get_output_embeddings().weight)
    model = AudioLLM(toy_encoder(), llm, tokenizer, QFORMER)
    assert model.base_llm == str(checkpoint.resolve())
    assert model(**model.prepare_batch(toy_audio(), QUESTIONS, ANSWERS)).loss.isfinite()

    with pytest.raises(FileNotFoundError, match="config.json"):
        load_llm(tmp_path)
    small_llama_config(100, hidden_size=32, num_layers=1, num_heads=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no tokenizer"):
        load_llm(tmp_path)
    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'gpt2'"):
        load_llm(tmp_path)


def test_lora_trains_only_adapters_and_projector(checkpoint, tokenizer):
    model = lora_model(checkpoint)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    layers = model.llm.base_model.model.config.num_hidden_layers
    lora = {f"llm.base_model.model.model.layers.{i}.self_attn.{proj}.{ab}.default.weight"
            for i in range(layers) for proj in ("q_proj", "v_proj") for ab in ("lora_A", "lora_B")}
    assert trainable == lora | {f"projector.{name}" for name, _ in model.projector.named_parameters()}
    summary = trainable_parameter_summary(model)
    assert summary["encoder"]["trainable"] == 0 and summary["projector"]["trainable"] == summary["projector"]["total"]
    assert summary["llm"]["trainable"] == sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)

    before = {name: t.clone() for name, t in model.state_dict().items()}
    train_steps(model, model.prepare_batch(toy_audio(), QUESTIONS, ANSWERS), steps=2)
    after = model.state_dict()
    for name, t in after.items():
        changed = not torch.equal(t, before[name])
        assert changed == ("lora_" in name or name.startswith("projector.")), name

    with pytest.raises(ValueError, match="already"):
        apply_lora(model)
    with pytest.raises(ValueError, match="builtin"):
        apply_lora(builtin_model(tokenizer))
    with pytest.raises(ValueError, match="full_finetune_llm"):
        apply_lora(builtin_model(tokenizer, full_finetune_llm=True))


def test_training_reduces_the_loss(tokenizer):
    model = builtin_model(tokenizer, full_finetune_llm=True)
    summary = trainable_parameter_summary(model)
    assert summary["llm"]["trainable"] == summary["llm"]["total"] and summary["encoder"]["trainable"] == 0
    losses = train_steps(model, model.prepare_batch(toy_audio(), QUESTIONS, ANSWERS), steps=15)
    assert losses[-1] < 0.5 * losses[0]


def test_generate_with_left_padding(tokenizer):
    model = builtin_model(tokenizer).eval()
    audio = toy_audio()
    answers = model.generate(audio, QUESTIONS, max_new_tokens=5)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    # left padding leaves the logits of the shorter prompt unchanged
    batch = model.prepare_batch(audio, QUESTIONS)
    single = model.prepare_batch(audio[:1], QUESTIONS[:1])
    with torch.no_grad():
        padded = model(**batch).logits[0, -1]
        alone = model(**single).logits[0, -1]
    assert torch.allclose(padded, alone, atol=1e-5)
    with pytest.raises(ValueError, match="one per clip"):
        model.generate(audio, QUESTIONS[:1])


# --- save / load ----------------------------------------------------------------------------------

def assert_same_logits(model, tmp_path):
    model.save_pretrained(tmp_path / "run")
    loaded = AudioLLM.from_pretrained(tmp_path / "run")
    model.eval()
    batch = model.prepare_batch(toy_audio(seed=3), QUESTIONS, ANSWERS)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded(**batch).logits)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == \
        {n for n, p in loaded.named_parameters() if p.requires_grad}
    assert loaded.generate(batch["audio"], QUESTIONS, 4) == model.generate(batch["audio"], QUESTIONS, 4)
    return json.loads((tmp_path / "run" / "audio_llm.json").read_text())


def test_save_load_builtin_full_finetune(tokenizer, tmp_path):
    model = builtin_model(tokenizer, full_finetune_llm=True)
    train_steps(model, model.prepare_batch(toy_audio(), QUESTIONS, ANSWERS), steps=1)
    config = assert_same_logits(model, tmp_path)
    assert config["base_llm"] == "builtin" and config["llm_saved"] and config["lora"] is None
    assert config["num_audio_tokens"] == 4 and config["projector"]["type"] == "qformer"
    assert load_llm(tmp_path / "run" / "llm")[0].config.hidden_size == 32  # llm/ is a checkpoint itself


def test_models_saved_with_a_removed_option_are_refused_by_name(tokenizer, tmp_path):
    model = builtin_model(tokenizer, full_finetune_llm=True)
    path = model.save_pretrained(tmp_path / "run") / "audio_llm.json"
    saved = json.loads(path.read_text())
    before = {**saved, "class_name_token": False, "audio_after_question": False,  # as saved before their removal
              "projector": {**saved["projector"], "instruction_aware": False}}
    path.write_text(json.dumps(before))
    assert AudioLLM.from_pretrained(tmp_path / "run").projector_config == QFORMER  # off: loads
    on = {"projector": {**before["projector"], "instruction_aware": True}}
    for name, change in (("class_name_token", {"class_name_token": True}),
                         ("audio_after_question", {"audio_after_question": True}), ("projector.instruction_aware", on)):
        path.write_text(json.dumps({**before, **change}))
        with pytest.raises(ValueError, match=re.escape(name) + " = true, a fine-tuning option that has been removed.*"
                           f"commit {LAST_COMMIT_WITH_REMOVED_OPTIONS}"):
            AudioLLM.from_pretrained(tmp_path / "run")


def test_save_load_lora_on_checkpoint(checkpoint, tmp_path):
    model = lora_model(checkpoint)
    train_steps(model, model.prepare_batch(toy_audio(), QUESTIONS, ANSWERS), steps=2)
    config = assert_same_logits(model, tmp_path)
    assert config["base_llm"] == str(checkpoint.resolve()) and not config["llm_saved"]
    assert config["lora"] == {"r": 8, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}
    assert (tmp_path / "run" / "llm" / "adapter" / "adapter_config.json").is_file()
    assert not (tmp_path / "run" / "llm" / "model.safetensors").exists()


def test_answer_only_loss_equals_the_full_sequence_loss_of_transformers(tokenizer, checkpoint):
    """The loss computed from the answer positions' logits only is transformers' own causal-LM loss over
    the whole sequence (the independent reference), for the built-in model and through LoRA."""
    for model in (builtin_model(tokenizer), lora_model(checkpoint)):
        model.eval()
        batch = model.prepare_batch(toy_audio(), QUESTIONS, ["yes", ANSWERS[0]])  # answers of unequal length
        with torch.no_grad():
            output = model(**batch)
            reference = model.llm(inputs_embeds=model.embed(batch["audio"], batch["input_ids"]),
                                  attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        assert output.loss == pytest.approx(reference.item(), rel=1e-5)
        # logits only where an answer token is predicted: one row per answer token (and eos) of each question
        assert output.logits.shape == (int((batch["labels"] != -100).sum()), model.llm.config.vocab_size)


def test_heard_sources_line_follows_the_encoders_class_outputs(tokenizer, tmp_path):
    model = builtin_model(tokenizer, heard_sources_threshold=0.01)  # a random encoder: every class heard
    audio = toy_audio()
    lines = model.heard(audio, QUESTIONS)
    prediction = model.encoder.predict(audio)
    for b, line in enumerate(lines):
        assert line.startswith("Heard, nearest first: ") and line.count("%) to your ") == len(LABELS)
        nearest = min(range(len(LABELS)), key=lambda k: prediction.class_distances[b, k])  # unbinned distances
        assert line[len("Heard, nearest first: "):].startswith(with_article(LABELS[nearest].lower()))
    ids = model.prepare_batch(audio, QUESTIONS)["input_ids"][0]
    prompt = tokenizer.decode(ids[ids != model.audio_token_id], skip_special_tokens=True)
    assert "Heard, nearest first:" in prompt and prompt.index("Heard") < prompt.index("Where is the sound")
    assert builtin_model(tokenizer).heard(audio, QUESTIONS) is None  # no threshold: no line, the plain BAT prompt
    # a side relation's two sounds are written on opposite sides of its axis, in the order of the directions
    # the heads compare (the line's decoded ones)
    directions = line_directions(prediction.class_probs, prediction.class_directions, 0.01,
                                 prediction.class_azimuth_probs)
    k_dog, k_bell = (model.encoder.class_names.index(name) for name in ("dog", "bell"))
    for phrase, axis in (("to the left of", 1), ("in front of", 0), ("above", 2)):
        for b, clip in enumerate(model.hear(audio, [f"Is the dog {phrase} the bell?"] * len(QUESTIONS))):
            by_label = {s.label: s for s in clip}
            positive = [{0: abs(s.azimuth_deg) < 90, 1: s.azimuth_deg > 0, 2: s.elevation_deg > 0}[axis]
                        for s in (by_label["dog"], by_label["bell"])]
            assert positive[0] != positive[1]
            assert positive[0] == bool(directions[b, k_dog, axis] > directions[b, k_bell, axis])
    with pytest.raises(ValueError, match="questions: 1 given; allowed: one per clip"):
        model.heard(audio, QUESTIONS[:1])
    given = ["Heard: nothing."] * len(QUESTIONS)  # lines given instead of the encoder's
    ids = model.prepare_batch(audio, QUESTIONS, heard=given)["input_ids"][0]
    assert "Heard: nothing." in tokenizer.decode(ids[ids != model.audio_token_id], skip_special_tokens=True)
    with pytest.raises(ValueError, match="heard lines given"):
        builtin_model(tokenizer).prepare_batch(audio, QUESTIONS, heard=given)
    model.save_pretrained(tmp_path / "model")
    assert AudioLLM.from_pretrained(tmp_path / "model").heard(audio, QUESTIONS) == lines
    with pytest.raises(ValueError, match="heard_sources_threshold"):
        builtin_model(tokenizer, heard_sources_threshold=1.5)
    encoder = toy_encoder()
    encoder.encoder.config = EncoderConfig.from_dict({**encoder.encoder.config.to_dict(),
                                                      "class_direction_head": False})
    with pytest.raises(ValueError, match="class-wise heads"):
        AudioLLM(encoder, toy_llm(len(tokenizer)), tokenizer, QFORMER, heard_sources_threshold=0.3)


@pytest.mark.parametrize("projector", ["linear", "mlp2x_gelu", "qformer"])
def test_audio_embeddings_start_at_the_scale_of_the_llms_word_embeddings(tokenizer, projector):
    """A pretrained LLM's word embeddings are small (SmolLM2: std 0.14); a fresh projector's outputs must
    start at that scale, not at a LayerNorm's unit variance, or they swamp the prompt."""
    llm = toy_llm(len(tokenizer))
    with torch.no_grad():
        llm.get_input_embeddings().weight.normal_(0.0, 0.14)
    config = ProjectorConfig(type=projector, num_queries=4, num_layers=1, num_heads=2)
    model = AudioLLM(toy_encoder(), llm, tokenizer, config).eval()
    with torch.no_grad():
        std = model.audio_embeddings(toy_audio()).std().item()
    assert 0.14 / 2 < std < 0.14 * 2, std
