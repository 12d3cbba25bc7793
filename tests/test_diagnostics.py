"""Checks of the diagnostic scripts' signal functions on hand-computed cases."""

import csv
import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.stats
import torch

DIAGNOSTICS = Path(__file__).resolve().parents[1] / "experiments" / "diagnostics"


def load_script(name: str):
    """The diagnostic script ``experiments/diagnostics/{name}.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, DIAGNOSTICS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def step_spectrogram(ear_gains: tuple[float, float]) -> torch.Tensor:
    """(2, 3, 8) power: level 1 for frames 0-3, a 30 dB onset at frame 4 that decays by 3 dB per frame;
    each ear scaled by a fixed gain (a direction-independent filter)."""
    level_db = torch.tensor([0.0, 0.0, 0.0, 0.0, 30.0, 27.0, 24.0, 21.0])
    power = (10.0 ** (level_db / 10.0)).expand(3, -1)
    return torch.stack([gain * power for gain in ear_gains])


def test_onset_weighted_power_keeps_the_onset_frame():
    probe = load_script("front_back_spectral_probe")
    power = step_spectrogram((1.0, 1.0))
    # The only rise is 0 -> 30 dB at frame 4, clipped to 20 dB; decaying frames weigh nothing.
    expected = torch.full((2, 3), 1000.0)
    torch.testing.assert_close(probe.onset_weighted_power(power), expected, rtol=1e-5, atol=0.0)


def test_onset_weights_do_not_depend_on_a_fixed_ear_filter():
    probe = load_script("front_back_spectral_probe")
    flat = probe.onset_weighted_power(step_spectrogram((1.0, 1.0)))
    filtered = probe.onset_weighted_power(step_spectrogram((4.0, 0.25)))
    torch.testing.assert_close(filtered, flat * torch.tensor([[4.0], [0.25]]), rtol=1e-5, atol=0.0)


def test_long_term_mean_would_mix_in_the_reverberant_tail():
    """The onset weighting differs from the plain time average when the tail is long (the reason it exists)."""
    probe = load_script("front_back_spectral_probe")
    power = step_spectrogram((1.0, 1.0))
    assert probe.onset_weighted_power(power)[0, 0] > 2.0 * power.mean(-1)[0, 0]


def coherent_then_diffuse_stft(ear_gains: tuple[float, float], seed: int = 0) -> torch.Tensor:
    """(2, 4, 400) complex STFT: frames 0-199 one source through a fixed interaural transfer (right = left x
    0.5 e^{0.7i}; power 1 in the left ear), frames 200-399 independent noise in the two ears at 10 times the
    power (a diffuse tail); each ear then scaled by a fixed gain."""
    generator = torch.Generator().manual_seed(seed)

    def noise(*shape):
        parts = torch.randn(2, *shape, generator=generator) / 2 ** 0.5
        return torch.complex(parts[0], parts[1])

    left = noise(4, 200)
    direct = torch.stack([left, 0.5 * np.exp(0.7j) * left])
    diffuse = 10 ** 0.5 * noise(2, 4, 200)
    return torch.cat([direct, diffuse], dim=-1) * torch.tensor(ear_gains)[:, None, None]


def test_coherence_weights_keep_the_direct_sound():
    """The coherence-weighted power is the direct frames' mean power (about 1 and 0.25 per bin), not the long-term
    mean, which the diffuse tail dominates (about 5.5 and 5.1)."""
    probe = load_script("front_back_spectral_probe")
    stft = coherent_then_diffuse_stft((1.0, 1.0))
    weighted = probe.coherence_weighted_power(stft, hop_s=0.008)
    direct = (stft[..., :200].abs() ** 2).mean(-1)
    torch.testing.assert_close(weighted, direct, rtol=0.1, atol=0.0)
    assert ((stft.abs() ** 2).mean(-1) > 4.0 * direct).all()


def test_coherence_weights_do_not_depend_on_a_fixed_ear_filter():
    probe = load_script("front_back_spectral_probe")
    flat = probe.coherence_weighted_power(coherent_then_diffuse_stft((1.0, 1.0)), hop_s=0.008)
    filtered = probe.coherence_weighted_power(coherent_then_diffuse_stft((4.0, 0.25)), hop_s=0.008)
    torch.testing.assert_close(filtered, flat * torch.tensor([[16.0], [0.0625]]), rtol=1e-4, atol=0.0)


def test_probe_writes_one_row_per_scene_with_its_front_back_answer(tmp_path):
    """Front (azimuth 0) and back (180) sources are scored, a lateral one (90) is not; the network answers front
    for the first two: right on the front source only."""
    probe = load_script("front_back_spectral_probe")
    data = {"x": np.zeros((3, 2), np.float32), "azimuth": np.array([0.0, 180.0, 90.0]),
            "elevation": np.array([0.0, 0.0, 10.0]), "label": np.array(["dog", "rain", "bell"]),
            "scene": np.array([4, 7, 9])}
    answers = torch.tensor([[2.0, 0.5], [1.0, 0.0], [-1.0, 1.0]])  # front logit, elevation / 30 deg
    result = probe.score(lambda x: answers, np.zeros(2), np.ones(2), data, median_elevation=0.0)
    assert result["front_back_correct_pct"] == 50.0 and result["scored"] == 2
    probe.write_predictions(tmp_path / "p.csv", result["predictions"])
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert [r["scene"] for r in rows] == ["4", "7", "9"]
    assert [r["front_truth"] for r in rows] == ["1", "0", "-1"]
    assert [r["front_correct"] for r in rows] == ["True", "False", "False"]
    assert [float(r["elevation_estimate_deg"]) for r in rows] == [15.0, 0.0, 30.0]


def test_source_masks_share_each_bin_by_power():
    """Two sources and noise in one bin of two frames: the masks are each source's power (both ears) over the sum."""
    probe = load_script("front_back_spectral_probe")
    amplitude = torch.tensor([[3.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # (source A, source B, noise) x frames
    parts = (amplitude[:, None, None, :] * torch.ones(3, 2, 1, 2)).to(torch.complex64)  # (S + 1, 2 ears, 1, 2)
    expected = torch.tensor([[9.0 / 11.0, 1.0 / 2.0], [1.0 / 11.0, 0.0]])[:, None, :]
    torch.testing.assert_close(probe.source_masks(parts), expected)


def test_masked_power_reads_the_source_where_it_dominates():
    """Source A fills frames 0-9 at power 1, source B frames 10-19 at power 100: the mixture's long-term power
    is B's, A's masked power is A's own."""
    probe = load_script("front_back_spectral_probe")
    a = torch.cat([torch.ones(2, 3, 10), torch.zeros(2, 3, 10)], -1)
    b = torch.cat([torch.zeros(2, 3, 10), 10.0 * torch.ones(2, 3, 10)], -1)
    parts = torch.stack([a, b, 1e-4 * torch.ones(2, 3, 20)]).to(torch.complex64)
    mixture = parts.sum(0)
    masks = probe.source_masks(parts)
    masked = probe.ear_power(mixture, "long_term", 0.008, masks[0] ** probe.MASK_EXPONENT)
    torch.testing.assert_close(masked, torch.ones(2, 3), rtol=1e-3, atol=0.0)
    assert (probe.ear_power(mixture, "long_term", 0.008) > 40.0).all()


def test_opposite_pairs_count_only_scenes_with_one_source_in_each_half():
    """Scene 1: front and back, both right, the front source's logit the larger; scene 2: front and back, the back
    source read as front with the larger logit; scene 3: both in front (not counted); scene 4: one source not
    scored (-1, not counted)."""
    probe = load_script("front_back_spectral_probe")
    predictions = {"scene": np.array([1, 1, 2, 2, 3, 3, 4, 4]),
                   "front_truth": np.array([1, 0, 0, 1, 1, 1, 1, -1]),
                   "front_logit": np.array([2.0, -1.0, 3.0, 1.0, 1.0, 1.0, 1.0, 0.0]),
                   "front_correct": np.array([True, True, False, True, True, True, True, False])}
    assert probe.opposite_pairs(predictions) == {"pairs": 2, "both_right_pct": 50.0, "order_right_pct": 50.0,
                                                 "order_right": {1: 1.0, 2: 0.0}}
    predictions["front_logit"][2] = 0.5  # still read as front, but less so than the front source
    assert probe.opposite_pairs(predictions)["order_right_pct"] == 100.0
    predictions["front_logit"][2] = 1.0  # one reading for both sources: the order is a coin flip
    assert probe.opposite_pairs(predictions)["order_right_pct"] == 75.0


def test_mixture_views_follow_each_source(tmp_path, monkeypatch):
    """A small two-source dataset: one row per source in every view; the mixture view's rows are the scene's (the
    same for its two sources), the masked and alone views' rows differ between them; a scene that renders
    differently from its stored audio is refused."""
    from spatial_alm.data.generate import generate_dataset
    from spatial_alm.scenes import SceneRecipe

    probe = load_script("front_back_spectral_probe")
    recipe = SceneRecipe.from_yaml(Path(__file__).resolve().parents[1] / "simulation" / "tiny_binaural.yaml",
                                   {"duration_s": 0.5, "sources.count": [2, 2]})
    generate_dataset(recipe, tmp_path / "data", seed=0, num_scenes=3, num_shards=1, progress=False)
    views = probe.mixture_source_spectra(tmp_path / "data", n_fft=256, n_mels=16)
    for data in views.values():
        assert data["x"].shape == (6, 32) and list(data["scene"]) == [0, 0, 1, 1, 2, 2]
        assert list(data["source"]) == [0, 1] * 3
    mixture, masked, alone = (views[view]["x"] for view in ("mixture", "masked", "alone"))
    np.testing.assert_array_equal(mixture[0::2], mixture[1::2])
    assert (np.abs(masked[0::2] - masked[1::2]).max(1) > 1.0).all()
    assert (np.abs(alone[0::2] - alone[1::2]).max(1) > 1.0).all()
    render_parts = probe.render_parts

    def louder_first_source(*args, **kwargs):
        images, noise, dry, clip_ids = render_parts(*args, **kwargs)
        return images * torch.tensor([2.0, 1.0])[:, None, None], noise, dry, clip_ids

    monkeypatch.setattr(probe, "render_parts", louder_first_source)
    with pytest.raises(SystemExit, match="renders differently"):
        probe.mixture_source_spectra(tmp_path / "data", n_fft=256)


def test_paired_answers_count_the_discordant_questions(tmp_path):
    probe = load_script("encoder_yes_no_probe")
    questions = [{"type": "E", "axis": "left_right", "kind": "E", "ids": (0, 1, 2), "yes": truth, "audible": True}
                 for truth in (True, False, True, False)]
    rows = [0, 1, 2, 3]
    # B (written first) right on questions 0 and 1; A right on 0, 2 and 3: A only 2, B only 1
    probe.write_answers(tmp_path / "b.csv", questions, rows, [True, False, False, True])
    lines = probe.paired_lines(tmp_path / "b.csv", questions, rows, [True, True, True, False]).splitlines()
    e_row = next(line.split() for line in lines if line.split()[0] == "E")
    assert e_row[1:6] == ["4", "75.0%", "50.0%", "2", "1"]
    with pytest.raises(SystemExit, match="not the same questions"):
        probe.paired_lines(tmp_path / "b.csv", questions, [0, 1, 2, 4], [True] * 4)


def test_llm_probe_pairs_answers_by_question_index(tmp_path):
    """The LLM probe's --answers / --paired-with: discordant questions counted by question index (B's file in
    another order), exact McNemar p; answers to other questions are refused."""
    probe = load_script("yes_no_probe")
    (tmp_path / "b.csv").write_text("question_index,right\n7,True\n3,True\n5,False\n9,False\n")
    # A right on 3, 5, 9; B right on 3, 7: A alone 2 (5, 9), B alone 1 (7); p = P(|X - 1.5| >= 0.5), X ~ Bin(3, 1/2) = 1
    line = probe.paired_test(tmp_path / "b.csv", np.array([3, 5, 7, 9]), [True, True, False, True])
    assert "A alone right 2, B alone right 1, p = 1" in line
    with pytest.raises(SystemExit, match="not in it"):
        probe.paired_test(tmp_path / "b.csv", np.array([3, 4]), [True, True])


@pytest.mark.parametrize("threshold", ["0", "1.5"])
def test_llm_probe_refuses_a_line_threshold_outside_0_1(monkeypatch, capsys, threshold):
    """Refused before any model is loaded (the model path does not exist)."""
    probe = load_script("yes_no_probe")
    monkeypatch.setattr("sys.argv", ["yes_no_probe.py", "--model", "missing", "--train", "missing", "--test", "missing",
                                     "--line-threshold", threshold])
    with pytest.raises(SystemExit):
        probe.main()
    assert "allowed: a probability in (0, 1)" in capsys.readouterr().err


def test_yes_no_scores_keep_the_receivers_axes_apart():
    """A sphere head resolves left/right but not front/back: "E, receiver's axes" scores only the first."""
    probe = load_script("encoder_yes_no_probe")
    questions = [{"type": "E", "axis": axis, "kind": "E", "ids": (0, 1, 2), "yes": True, "audible": audible}
                 for axis, audible in (("left_right", True), ("left_right", True), ("front_back", False))]
    scores = probe.score(questions, [True, False, False])
    assert scores["E"]["total"] == 3 and scores["E, receiver's axes"]["total"] == 2
    assert scores["E, receiver's axes"]["accuracy"] == pytest.approx(50.0)
    assert "E front_back" in scores and scores["E front_back"]["accuracy"] == 0.0


@pytest.mark.parametrize("direct_to_diffuse", [0.25, 1.0, 4.0])
def test_band_coherence_follows_the_direct_to_diffuse_ratio(direct_to_diffuse):
    """A signal common to four channels plus independent noise per channel at power ratio q has
    magnitude-squared coherence (q / (1 + q))^2 on every pair (closed form)."""
    script = load_script("distance_cue_ceiling")
    rng = np.random.default_rng(0)
    common = rng.standard_normal(96000) * np.sqrt(direct_to_diffuse)
    audio = common + rng.standard_normal((4, 96000))
    expected = (direct_to_diffuse / (1 + direct_to_diffuse)) ** 2
    assert script.band_coherence(audio, 24000, (3000.0, 11000.0)) == pytest.approx(expected, abs=0.02)


def test_band_coherence_rejects_a_band_above_nyquist():
    script = load_script("distance_cue_ceiling")
    with pytest.raises(ValueError, match="coherence-band"):
        script.band_coherence(np.random.default_rng(0).standard_normal((2, 4800)), 16000, (9000.0, 12000.0))


def test_compare_qa_reports_pairs_a_full_report_with_one_limited_to_some_types(tmp_path, monkeypatch, capsys):
    """A report of every type against one of `evaluate --types negative`: compared on negative alone, paired
    question by question, and with --by-axis also per axis; two reports without a shared type are refused."""
    compare = load_script("compare_qa_reports")

    def record(question_type, question, yes, said):
        axis = "left_right" if question in ("q0", "q1") else "front_back"
        return {"question_type": question_type, "question": question, "answer": "yes" if yes else "no",
                "target": {"yes": yes, "axis": axis}, "receiver_axes": ["left_right", "front_back", "distance"],
                "prediction": {"parsed": True, "yes": said}}

    truth = [True, False, True, False]
    negative_a = [record("negative", f"q{i}", t, s) for i, (t, s) in enumerate(zip(truth, [True, False, False, True]))]
    negative_b = [record("negative", f"q{i}", t, s) for i, (t, s) in enumerate(zip(truth, [True, True, True, False]))]
    count = {"question_type": "count", "question": "how many?", "answer": "2", "target": {"count": 2},
             "prediction": {"parsed": True, "count": 2}}
    row = {"format": "yes_no", "metrics": {}, "total": 4}
    full = {"model": {"count": {"format": "count", "metrics": {"accuracy": 100.0}, "total": 1}, "negative": row},
            "answers": [count, *negative_a]}
    limited = {"model": {"negative": row}, "answers": negative_b}
    paths = [tmp_path / name for name in ("full.json", "limited.json")]
    for path, report in zip(paths, (full, limited)):
        path.write_text(json.dumps(report))
    monkeypatch.setattr("sys.argv", ["compare_qa_reports.py", *map(str, paths)])
    compare.main()
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()[2:]]
    # A right on 0, 1 (yes 1/2, no 1/2: 50 %); B right on 0, 2, 3 (yes 2/2, no 1/2: 75 %); A alone on 1, B alone
    # on 2 and 3: p = 1
    assert [[cell.strip() for cell in r] for r in rows] == [["negative", "balanced_accuracy", "50.0", "75.0", "4",
                                                             "1", "2", "1"]]
    monkeypatch.setattr("sys.argv", ["compare_qa_reports.py", *map(str, paths), "--by-axis"])
    compare.main()
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in capsys.readouterr().out.splitlines()[2:]]
    # front/back (q2, q3): A wrong on both (0 %), B right on both (100 %), B alone right twice: p = 0.5;
    # left/right (q0, q1): A right on both, B on q0 only (yes 1/1, no 0/1: 50 %), A alone right once: p = 1
    assert rows[1:] == [["negative front_back", "balanced_accuracy", "0.0", "100.0", "2", "0", "2", "0.5"],
                        ["negative left_right", "balanced_accuracy", "100.0", "50.0", "2", "1", "0", "1"]]
    paths[1].write_text(json.dumps({"model": {"E": row}, "answers": []}))
    with pytest.raises(SystemExit):
        compare.main()


def toy_audio_llm(data, heard_sources_threshold: float | None):
    """An untrained audio-LLM on a toy dataset (tiny encoder with class-wise heads, built-in LLaMA hidden 32)."""
    from transformers import LlamaForCausalLM

    from spatial_alm.data import dataset_info
    from spatial_alm.data.reader import DatasetReader
    from spatial_alm.models.audio_llm import AudioLLM, build_prompt
    from spatial_alm.models.projector import ProjectorConfig
    from spatial_alm.models.text import small_llama_config, train_tokenizer
    from spatial_alm.training.finetune import read_qa_table, scene_heard_lines
    from spatial_alm.training.pretrain import PretrainConfig, build_model

    torch.manual_seed(0)
    qa, reader = read_qa_table(data), DatasetReader(data)
    lines = scene_heard_lines(reader, range(2))
    tokenizer = train_tokenizer([build_prompt(q, line) for q in qa["question"] for line in lines]
                                + list(qa["answer"]), vocab_size=400)
    encoder = build_model(PretrainConfig.from_dict({
        "preset": "tiny", "features": {"n_fft": 256, "hop_length": 128, "n_mels": 32},
        "encoder": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": [32, 8]}}), dataset_info(data))
    llm = LlamaForCausalLM(small_llama_config(len(tokenizer), hidden_size=32, num_layers=1, num_heads=2,
                                              max_position_embeddings=512))
    return AudioLLM(encoder, llm, tokenizer, ProjectorConfig(num_queries=4, num_layers=1, num_heads=2),
                    heard_sources_threshold=heard_sources_threshold).eval()


def test_answer_losses_score_each_answer_with_the_encoders_and_the_true_line(make_toy_dataset):
    """Each question's two losses equal the mean negative log-probability of its answer tokens and eos, computed
    here from the full logits of a prompt carrying the encoder's line (``model.heard``) or the scene's true one."""
    from spatial_alm.data import SpatialQADataset
    from spatial_alm.training.finetune import scene_heard_lines

    data = make_toy_dataset(12, seed=1)
    model, dataset = toy_audio_llm(data, 0.3), SpatialQADataset(data, ["E", "negative"])
    tokenizer = model.tokenizer
    indices = np.arange(3)
    losses = load_script("answer_loss_by_line").answer_losses(model, dataset, indices)

    for k, j in enumerate(indices):
        item = dataset[int(j)]
        audio = item["audio"][None]
        for name, line in (("encoder line", model.heard(audio, [item["question"]])[0]),
                           ("true line", scene_heard_lines(dataset.reader, [item["scene_index"]])[0])):
            batch = model.prepare_batch(audio, [item["question"]], heard=[line])
            answer = tokenizer.encode(item["answer"], add_special_tokens=False) + [tokenizer.eos_token_id]
            ids = torch.cat([batch["input_ids"], torch.tensor([answer])], dim=1)
            with torch.no_grad():
                logits = model(audio, ids, torch.ones_like(ids)).logits[0]  # (L, vocab), no labels: every position
            log_probs = torch.log_softmax(logits[-len(answer) - 1:-1].double(), dim=-1)
            expected = -log_probs[torch.arange(len(answer)), torch.tensor(answer)].mean().item()
            assert losses[name][k] == pytest.approx(expected, rel=1e-4), name


def test_answer_loss_script_refuses_a_model_without_a_heard_line(make_toy_dataset, tmp_path, monkeypatch, capsys):
    data = make_toy_dataset(12, seed=1)
    folder = toy_audio_llm(data, None).save_pretrained(tmp_path / "model")
    monkeypatch.setattr("sys.argv", ["answer_loss_by_line.py", "--model", str(folder), "--data", str(data)])
    with pytest.raises(SystemExit):
        load_script("answer_loss_by_line").main()
    assert "no heard-sources line" in capsys.readouterr().err


def test_elevation_vs_constant_reads_a_reports_predictions(tmp_path, monkeypatch, capsys):
    """Truths 0..40 deg (median 20, the constant errs 12 deg on average): an exact method 12 deg better, a method
    answering the horizon 8 deg worse with no correlation to report; a missing report or method is named."""
    script = load_script("elevation_vs_constant")
    report = tmp_path / "eval"
    report.mkdir()
    with open(report / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["scene", "true_azimuth_deg", "true_elevation_deg", "encoder_azimuth_deg",
                         "encoder_elevation_deg", "gcc_phat_woodworth_azimuth_deg", "gcc_phat_woodworth_elevation_deg"])
        for k, el in enumerate([0, 10, 20, 30, 40]):
            writer.writerow([k, 30, el, 30, el, 30, 0])
    monkeypatch.setattr("sys.argv", ["elevation_vs_constant.py", str(report)])
    script.main()
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in capsys.readouterr().out.splitlines()[2:]]
    # the encoder's 4 non-zero differences all negative: exact two-sided p = 2 / 2**4; the horizon's are -20, 0,
    # 20, 20, 20 deg (tied ranks: scipy's own test of those differences)
    horizon_p = scipy.stats.wilcoxon([-20, 0, 20, 20, 20]).pvalue
    assert rows == [["eval", "encoder", "5", "0.0", "20.0", "12.0", "-12.0", "0.12", "1.00"],
                    ["eval", "gcc_phat_woodworth", "5", "20.0", "20.0", "12.0", "+8.0", f"{horizon_p:.2g}", "nan"]]
    monkeypatch.setattr("sys.argv", ["elevation_vs_constant.py", str(report), "--methods", "encoder", "music"])
    with pytest.raises(SystemExit, match="has no method music; it has: encoder, gcc_phat_woodworth"):
        script.main()
    monkeypatch.setattr("sys.argv", ["elevation_vs_constant.py", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="predictions.csv not found"):
        script.main()


def test_rescore_qa_report_rescores_from_the_records_alone(tmp_path, monkeypatch, capsys):
    """A report whose records carry their scenes' labels is rescored without its dataset (the elevation
    answers against the constant: truths 0 and 40, median 20, an exact model errs 20 deg less); records
    without the labels, or a missing report, are refused with what to give."""
    from spatial_alm.evaluation.qa_report import _write_report

    script = load_script("rescore_qa_report")
    records = [{"question_type": "elevation", "question": "At what elevation is the dog?", "answer": f"{el} degrees",
                "target": {"elevation_deg": el}, "prediction": {"parsed": True, "elevation_deg": el},
                "random_prediction": {"parsed": True, "elevation_deg": 90}, "encoder_prediction": None,
                "scene_labels": ["dog"]} for el in (0, 40)]
    _write_report({"model_dir": "m", "data": "d"}, records, ["dog"], tmp_path, max_new_tokens=4, seed=0)
    report = json.loads((tmp_path / "report.json").read_text())
    del report["elevation_against_constant"]  # as a report written before that table
    (tmp_path / "report.json").write_text(json.dumps(report))
    monkeypatch.setattr("sys.argv", ["rescore_qa_report.py", "--report", str(tmp_path / "report.json")])
    script.main()
    assert "rescored 2 questions" in capsys.readouterr().out
    against = json.loads((tmp_path / "report.json").read_text())["elevation_against_constant"]
    assert against["constant_deg"] == 20.0 and against["paired"]["model"]["mean_difference"] == -20.0
    assert "## Elevation questions against the best constant answer" in (tmp_path / "report.md").read_text()
    for record in report["answers"]:
        del record["scene_labels"]
    (tmp_path / "report.json").write_text(json.dumps(report))
    with pytest.raises(SystemExit, match="lack their scenes' labels.*give --data"):
        script.main()
    monkeypatch.setattr("sys.argv", ["rescore_qa_report.py", "--report", str(tmp_path / "missing.json")])
    with pytest.raises(SystemExit, match="not found"):
        script.main()


def test_compare_encoder_reports_pairs_two_reports_source_by_source(tmp_path, monkeypatch, capsys):
    """A exact; B mirrors the first source to the back (DoA and front/back wrong) and puts the third on the
    horizon (30 deg of elevation off, DoA wrong); the fourth, on the interaural axis, has no front/back half."""
    script = load_script("compare_encoder_reports")
    truth = [(30, 0), (150, 0), (0, 30), (90, 0)]
    answers = {"a": truth, "b": [(150, 0), (150, 0), (0, 0), (90, 0)]}
    for name, predicted in answers.items():
        (tmp_path / name).mkdir()
        with open(tmp_path / name / "predictions.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["scene", "true_azimuth_deg", "true_elevation_deg", "encoder_azimuth_deg",
                             "encoder_elevation_deg"])
            writer.writerows([k, *t, *p] for k, (t, p) in enumerate(zip(truth, predicted)))
    monkeypatch.setattr("sys.argv", ["compare_encoder_reports.py", str(tmp_path / "a"), str(tmp_path / "b")])
    script.main()
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in capsys.readouterr().out.splitlines()[3:]]
    assert rows == [
        ["DoA acc@20 (%)", "100.0", "50.0", "A alone right 2, B alone right 0, p = 0.5"],  # exact: 2 / 2**2
        ["front/back correct (%, 3 sources)", "100.0", "66.7", "A alone right 1, B alone right 0, p = 1"],
        ["elevation error (deg)", "0.0", "7.5", "mean difference -7.5, p = 1"],  # one non-zero pair
        ["lateral error (deg)", "0.0", "0.0", "mean difference +0.0, p = 1"]]  # the mirror keeps the lateral angle
    monkeypatch.setattr("sys.argv", ["compare_encoder_reports.py", str(tmp_path / "a"), str(tmp_path / "b"),
                                     "--by-receiver"])
    with pytest.raises(SystemExit, match="has a receiver column"):
        script.main()
    write_csv(tmp_path / "b" / "predictions.csv",  # scenes 0 and 2 through head x, 1 and 3 through head y
              ["scene", "receiver", "true_azimuth_deg", "true_elevation_deg", "encoder_azimuth_deg",
               "encoder_elevation_deg"],
              [[k, "xy"[k % 2], *t, *p] for k, (t, p) in enumerate(zip(truth, answers["b"]))])
    script.main()
    lines = capsys.readouterr().out.splitlines()
    x, y = lines.index("The 2 sources heard through x"), lines.index("The 2 sources heard through y")
    assert lines[x + 3].split("|")[2:4] == [" 100.0 ", " 0.0 "]  # DoA: scene 0 mirrored, scene 2 off by 30 deg
    assert lines[y + 3].split("|")[2:4] == [" 100.0 ", " 100.0 "]
    monkeypatch.setattr("sys.argv", ["compare_encoder_reports.py", str(tmp_path / "a"), str(tmp_path / "b"),
                                     "--methods", "encoder", "music"])
    with pytest.raises(SystemExit, match="has no method music; it has: encoder"):
        script.main()
    (tmp_path / "b" / "predictions.csv").write_text((tmp_path / "b" / "predictions.csv").read_text().replace(
        "\n1,y,150,0,", "\n1,y,140,0,"))
    monkeypatch.setattr("sys.argv", ["compare_encoder_reports.py", str(tmp_path / "a"), str(tmp_path / "b")])
    with pytest.raises(SystemExit, match="different true directions"):
        script.main()


def test_compare_encoder_reports_pairs_every_source_from_its_class_vector(tmp_path, monkeypatch, capsys):
    """--class-wise: scene 0 holds one source, scenes 1-3 two each: in scene 1 one lies near the frontal plane,
    in scene 2 one in front and one behind, in scene 3 both in front. A reads all seven exactly, B mirrors the
    first source of scene 1 to the back and the back one of scene 2 to the front (DoA and front/back wrong there).
    Tables: all sources, per number of sources, then by the other source's front/back half."""
    from spatial_alm.evaluation.encoder_report import CLASS_WISE_COLUMNS, write_class_wise_predictions

    script = load_script("compare_encoder_reports")
    nan = float("nan")
    keys = [(0, 0, 1), (1, 0, 2), (1, 1, 2), (2, 0, 2), (2, 1, 2), (3, 0, 2), (3, 1, 2)]
    truth = [(30.0, 0.0), (40.0, 10.0), (-100.0, 0.0), (20.0, 0.0), (160.0, 0.0), (30.0, 0.0), (-30.0, 0.0)]
    other = [(nan, nan), truth[2], truth[1], truth[4], truth[3], truth[6], truth[5]]
    answers = {"a": truth, "b": [truth[0], (140.0, 10.0), truth[2], truth[3], (20.0, 0.0), truth[5], truth[6]]}
    for name, predicted in answers.items():
        (tmp_path / name).mkdir()
        rows = [dict(zip(CLASS_WISE_COLUMNS, (*key, *t, *p, 0.0 if key[2] > 1 else nan, *o)))
                for key, t, p, o in zip(keys, truth, predicted, other)]
        write_class_wise_predictions(tmp_path / name / "class_wise_predictions.csv", rows)
    monkeypatch.setattr("sys.argv", ["compare_encoder_reports.py", str(tmp_path / "a"), str(tmp_path / "b"),
                                     "--class-wise"])
    script.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("7 labelled sources, each from its own class's vector")
    assert lines[3].split("|")[2:4] == [" 100.0 ", " 71.4 "]  # DoA, all seven sources
    two = lines.index("The 6 sources of scenes with 2 sources")
    assert lines[two + 3].split("|")[2:4] == [" 100.0 ", " 66.7 "]
    assert "The 1 sources of scenes with 1 source" in lines
    other_half = lines.index("The 2 sources whose loudest other source lies in the other front/back half")
    assert lines[other_half + 4].split("|")[2:4] == [" 100.0 ", " 50.0 "]  # front/back, scene 2
    same_half = lines.index("The 2 sources whose loudest other source lies in the same front/back half")
    assert lines[same_half + 4].split("|")[2:4] == [" 100.0 ", " 100.0 "]  # scene 3
    pairs = lines.index("The pairs of sources on opposite sides of an axis (E's questions): the two vectors in the "
                        "true order")
    # left/right: scenes 1 and 3, B keeps the mirrored source on the left; front/back: scenes 1 and 2, B's both
    # vectors behind in scene 1 (the front one's deeper: reversed, 0) and equal in scene 2 (tied, 1/2)
    assert lines[pairs + 3].split("|")[1:5] == [" left_right ", " 2 ", " 100.0 ", " 100.0 "]
    assert lines[pairs + 4].split("|")[1:5] == [" front_back ", " 2 ", " 100.0 ", " 25.0 "]
    assert "A better on 2, B better on 0, p = 0.5" in lines[pairs + 4]  # Wilcoxon, two differences
    assert len(lines) == pairs + 5  # no pair on opposite sides of the horizontal plane beyond the margins
    # --by-receiver reads each scene's receiver by its scene number, whatever the rows' order: scenes 0-1 through
    # head x (B wrong on 1 of 3 sources), 2-3 through y (1 of 4)
    write_csv(tmp_path / "a" / "predictions.csv", ["scene", "receiver"], [[3, "y"], [1, "x"], [2, "y"], [0, "x"]])
    monkeypatch.setattr("sys.argv", ["compare_encoder_reports.py", str(tmp_path / "a"), str(tmp_path / "b"),
                                     "--class-wise", "--by-receiver"])
    script.main()
    lines = capsys.readouterr().out.splitlines()
    x, y = lines.index("The 3 sources heard through x"), lines.index("The 4 sources heard through y")
    assert lines[x + 3].split("|")[2:4] == [" 100.0 ", " 66.7 "]
    assert lines[y + 3].split("|")[2:4] == [" 100.0 ", " 75.0 "]
    monkeypatch.setattr("sys.argv", ["compare_encoder_reports.py", str(tmp_path / "a"), str(tmp_path / "b"),
                                     "--class-wise", "--methods", "encoder", "encoder"])
    with pytest.raises(SystemExit, match="allowed: one of them"):
        script.main()
    (tmp_path / "b" / "class_wise_predictions.csv").write_text(
        (tmp_path / "b" / "class_wise_predictions.csv").read_text().replace("\n1,1,2,", "\n2,1,2,"))
    monkeypatch.setattr("sys.argv", ["compare_encoder_reports.py", str(tmp_path / "a"), str(tmp_path / "b"),
                                     "--class-wise"])
    with pytest.raises(SystemExit, match="different true directions"):
        script.main()
    monkeypatch.setattr("sys.argv", ["compare_encoder_reports.py", str(tmp_path / "a"), str(tmp_path),
                                     "--class-wise"])
    with pytest.raises(SystemExit, match="class_wise_predictions.csv not found.*evaluate-encoder"):
        script.main()


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_e_scenes_by_sources_in_half_counts_each_scene_by_its_vectors(tmp_path, monkeypatch, capsys):
    """Three two-source scenes, one source in front and one behind: scene 0 has both class vectors in their
    halves and is answered right, scene 1 one (its two questions split), scene 2 none (answered wrong); scene 2's
    front source is 10 deg from the frontal plane (asin(cos 80 deg)), the others at least 45 deg."""
    script = load_script("e_scenes_by_sources_in_half")
    directions = [(0, 30, 40), (0, 150, 160), (1, 30, 20), (1, -150, -30), (2, 80, 120), (2, 135, 45)]
    # evaluate-encoder's columns (CLASS_WISE_COLUMNS); levels and the other source's direction unused here
    write_csv(tmp_path / "class_wise_predictions.csv",
              ["scene", "source", "num_sources", "true_azimuth_deg", "true_elevation_deg", "class_azimuth_deg",
               "class_elevation_deg", "relative_level_db", "other_azimuth_deg", "other_elevation_deg"],
              [[scene, k % 2, 2, true, 0, read, 0, "", "", ""] for k, (scene, true, read) in enumerate(directions)])
    write_csv(tmp_path / "predictions.csv", ["scene", "direct_to_reverberant_db"], [[0, -8.0], [1, -3.0], [2, 2.0]])
    write_csv(tmp_path / "heads_answers.csv", ["row", "type", "axis", "yes", "answer"],
              [[0, "E", "front_back", 1, 1], [1, "E", "front_back", 1, 0], [1, "E", "front_back", 0, 0],
               [2, "E", "front_back", 0, 1], [2, "E", "left_right", 1, 1]])
    outcomes = script.scene_outcomes(tmp_path, "front_back")
    assert {s: (o["sources_in_half"], o["opposite"], o["all_right"], o["any_right"]) for s, o in outcomes.items()} \
        == {0: (2, True, True, True), 1: (1, True, False, True), 2: (0, True, False, False)}
    monkeypatch.setattr("sys.argv", ["e_scenes_by_sources_in_half.py", str(tmp_path), "--names", "toy"])
    script.main()
    assert capsys.readouterr().out.splitlines() == [
        "toy: 3 scenes with E front/back questions, 3 with two sources in opposite halves, 1 with right and wrong "
        "answers",
        "  2 of 2 sources in their true half: 1 scenes, all questions right in 1 (100.0 %)",
        "  1 of 2 sources in their true half: 1 scenes, all questions right in 0 (0.0 %)",
        "  0 of 2 sources in their true half: 1 scenes, all questions right in 0 (0.0 %)",
        "  direct-to-reverberant ratio < -6 dB: 1 scenes, right 1 (100.0 %)",
        "  direct-to-reverberant ratio -6 to 0 dB: 1 scenes, right 0 (0.0 %)",
        "  direct-to-reverberant ratio >= 0 dB: 1 scenes, right 0 (0.0 %)",
        "  every source at least 20 deg from the frontal plane: 2 scenes, right 1 (50.0 %)",
        "  a source less than 20 deg from it: 1 scenes, right 0 (0.0 %)"]
    assert [outcomes[scene]["all_scored"] for scene in range(3)] == [True, True, False]
    monkeypatch.setattr("sys.argv", ["e_scenes_by_sources_in_half.py", str(tmp_path), "--axis", "above_below"])
    with pytest.raises(SystemExit, match="no E questions about above_below"):
        script.main()
    with open(tmp_path / "heads_answers.csv", "a") as f:
        f.write("7,E,front_back,1,1\n")  # a scene this report never saw
    with pytest.raises(SystemExit, match=r"scenes \[7\] have E answers but no class-wise predictions"):
        script.scene_outcomes(tmp_path, "front_back")
    (tmp_path / "heads_answers.csv").unlink()
    with pytest.raises(SystemExit, match="heads_answers.csv not found: encoder_yes_no_probe.py --answers writes it"):
        script.scene_outcomes(tmp_path, "front_back")
    (tmp_path / "class_wise_predictions.csv").unlink()
    with pytest.raises(SystemExit, match="class_wise_predictions.csv not found.*evaluate-encoder"):
        script.scene_outcomes(tmp_path, "front_back")


def test_head_spectra_of_a_sphere_show_no_front_back_difference_and_ignore_a_flat_gain():
    """A rigid sphere with its ears on the interaural axis is front/back symmetric: 0 dB front minus back in every
    band; the same head at twice the amplitude has the same diffuse-field spectrum (it is normalised)."""
    from spatial_alm.acoustics.heads import SphereHead

    spectra = load_script("head_spectra")
    sphere = SphereHead()
    plain = spectra.head_spectra(sphere, 16000)
    np.testing.assert_allclose(plain["front_back_db"], 0.0, atol=0.3)
    louder = SimpleNamespace(hrirs=lambda directions, fs_hz: 2.0 * sphere.hrirs(directions, fs_hz))
    np.testing.assert_allclose(spectra.head_spectra(louder, 16000)["diffuse_field_db"], plain["diffuse_field_db"],
                               atol=1e-9)
    assert plain["centres_hz"][0] == pytest.approx(250.0) and plain["centres_hz"][-1] < 8000.0


def test_filter_dataset_audio_moves_band_levels_and_keeps_everything_else(make_toy_dataset, tmp_path, monkeypatch):
    import h5py

    from spatial_alm.data.reader import check_dataset

    data = make_toy_dataset(12, seed=1)
    nodes = [250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0]
    for name, gain_db in (("flat", [0.0] * 6), ("tilt", [0.0, 0.0, 0.0, 6.0, 12.0, 12.0])):
        curve = tmp_path / f"{name}.json"
        curve.write_text(json.dumps({"centres_hz": nodes, "gain_db": gain_db}))
        monkeypatch.setattr("sys.argv", ["filter_dataset_audio.py", str(data), str(tmp_path / name),
                                         "--gain-json", str(curve)])
        load_script("filter_dataset_audio").main()
        assert check_dataset(tmp_path / name) == []  # the new shards' sha256 are in index.json
    shard = sorted(data.glob("*.h5"))[0].name
    with h5py.File(data / shard) as f, h5py.File(tmp_path / "flat" / shard) as flat, \
            h5py.File(tmp_path / "tilt" / shard) as tilt:
        np.testing.assert_array_equal(flat["audio"][...], f["audio"][...])
        np.testing.assert_array_equal(tilt["metadata_json"][...], f["metadata_json"][...])
        assert np.abs(tilt["audio"][...]).max(axis=(1, 2)).tolist() == pytest.approx(
            np.abs(f["audio"][...]).max(axis=(1, 2)).tolist(), abs=1)  # each scene at its peak
        fs, length = int(f.attrs["fs_hz"]), f["audio"].shape[-1]
        before, after = (np.abs(np.fft.rfft(a[...].astype(float), axis=-1)) ** 2 for a in (f["audio"], tilt["audio"]))
    frequencies = np.fft.rfftfreq(length, 1.0 / fs)

    def change_db(low, high):  # per scene and channel (each scene has its own peak scaling)
        band = (frequencies >= low) & (frequencies < high)
        return 10.0 * np.log10(after[..., band].sum(-1) / before[..., band].sum(-1))

    np.testing.assert_allclose(change_db(4500, 7500) - change_db(300, 900), 12.0, atol=0.3)
    monkeypatch.setattr("sys.argv", ["filter_dataset_audio.py", str(data), str(tmp_path / "flat"),
                                     "--gain-json", str(tmp_path / "flat.json")])
    with pytest.raises(SystemExit, match="exists"):
        load_script("filter_dataset_audio").main()
    (tmp_path / "bad.json").write_text(json.dumps({"centres_hz": [1000.0, 500.0], "gain_db": [0.0, 1.0]}))
    monkeypatch.setattr("sys.argv", ["filter_dataset_audio.py", str(data), str(tmp_path / "bad"),
                                     "--gain-json", str(tmp_path / "bad.json")])
    with pytest.raises(SystemExit, match="increasing"):
        load_script("filter_dataset_audio").main()


def test_filter_gain_is_linear_in_db_over_log_frequency_and_flat_beyond_the_nodes():
    script = load_script("filter_dataset_audio")
    nodes = torch.tensor([250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0], dtype=torch.float64)
    gain_db = torch.tensor([0.0, 0.0, 0.0, 6.0, 12.0, 12.0])
    frequencies = torch.tensor([100.0, 1000.0, math.sqrt(1000.0 * 2000.0), 2000.0, 8000.0], dtype=torch.float64)
    expected_db = torch.tensor([0.0, 0.0, 3.0, 6.0, 12.0], dtype=torch.float64)
    torch.testing.assert_close(20.0 * torch.log10(script.gain_at(frequencies, nodes, gain_db)), expected_db)
    with pytest.raises(ValueError, match="increasing"):
        script.gain_at(frequencies, nodes.flip(0), gain_db)
    with pytest.raises(ValueError, match="one length"):
        script.gain_at(frequencies, nodes, gain_db[:3])


def test_filter_equaliser_keeps_the_interaural_delay_and_level():
    """Right ear = 0.5 x the left ear 7 samples later: after the equaliser, still exactly that, at the clip's peak."""
    script = load_script("filter_dataset_audio")
    left = torch.randn(8000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    left[:2000] = 0.0
    left[-2000:] = 0.0
    audio = torch.stack([left, 0.5 * torch.roll(left, 7)])[None]
    nodes = torch.tensor([250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0], dtype=torch.float64)
    coloured = script.colour(audio, 16000, nodes, torch.tensor([3.0, -5.0, 8.0, -10.0, 10.0, -4.0]))[0]
    torch.testing.assert_close(coloured[1, 7:], 0.5 * coloured[0, :-7], atol=1e-9, rtol=0.0)
    assert coloured.abs().max() == pytest.approx(float(audio.abs().max()))


def test_answered_in_front_counts_each_half_and_the_answers(tmp_path, monkeypatch, capsys):
    """Two frontal sources (0, 45 deg) and two rear ones (135, -150; +-90 counts as rear) answered at 10, 20, 120,
    30 deg: half in front, three quarters answered in front, every frontal one in front, half the rear behind."""
    script = load_script("answered_in_front")
    report = tmp_path / "eval"
    report.mkdir()
    with open(report / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["scene", "true_azimuth_deg", "true_elevation_deg", "encoder_azimuth_deg",
                         "encoder_elevation_deg"])
        writer.writerows([[0, 0, 0, 10, 0], [1, 45, 0, 20, 0], [2, 135, 0, 120, 0], [3, -150, 0, 30, 0]])
    monkeypatch.setattr("sys.argv", ["answered_in_front.py", str(report)])
    script.main()
    assert capsys.readouterr().out == (f"{report}: 4 scenes, in front 50.0 %, answered in front 75.0 %; frontal "
                                       "answered in front 100.0 %, rear answered behind 50.0 %\n")
    monkeypatch.setattr("sys.argv", ["answered_in_front.py", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="predictions.csv not found"):
        script.main()
    with pytest.raises(SystemExit, match="2 scenes, all in front: no half to compare"):
        script.answered_in_front(np.zeros(2), np.zeros(2))


def test_average_encoder_reports_takes_the_mean_direction(tmp_path, monkeypatch, capsys):
    """Three reports on four scenes / sources: lateral angles 10, 50 and 30 deg in front average to 30; elevations
    20, 40 and 30 (azimuth 0) to 30; two readings at 30 deg azimuth and one mirrored behind (150) vote for the
    front and keep the lateral angle, 30 (a unit-vector mean would point to 60); one reading ahead and two behind
    at +-60 deg elevation tie the front/back vote (missing, so wrong). The baseline and scene columns are the first
    report's; reports on other scenes are refused."""
    from spatial_alm.evaluation.encoder_report import (
        CLASS_WISE_COLUMNS,
        read_class_wise_predictions,
        read_predictions,
        write_class_wise_predictions,
    )

    script = load_script("average_encoder_reports")
    nan = float("nan")
    truth = [(30.0, 0.0), (0.0, 30.0), (30.0, 0.0), (0.0, 0.0)]
    read = {"a": [(10.0, 0.0), (0.0, 20.0), (30.0, 0.0), (0.0, 0.0)],
            "b": [(50.0, 0.0), (0.0, 40.0), (30.0, 0.0), (180.0, 60.0)],
            "c": [(30.0, 0.0), (0.0, 30.0), (150.0, 0.0), (180.0, -60.0)]}
    for distance, (name, directions) in enumerate(read.items(), start=1):
        (tmp_path / name).mkdir()
        write_csv(tmp_path / name / "predictions.csv",
                  ["scene", "receiver", "true_azimuth_deg", "true_elevation_deg", "encoder_distance_m",
                   "encoder_azimuth_deg", "encoder_elevation_deg", "gcc_phat_woodworth_azimuth_deg",
                   "gcc_phat_woodworth_elevation_deg"],
                  [[k, "cipic:subject_003", *t, distance, *d, 4.0 + distance, 0.0]
                   for k, (t, d) in enumerate(zip(truth, directions))])
        write_class_wise_predictions(tmp_path / name / "class_wise_predictions.csv",
                                     [dict(zip(CLASS_WISE_COLUMNS, (k, 0, 1, *t, *d, nan, nan, nan)))
                                      for k, (t, d) in enumerate(zip(truth, directions))])
    monkeypatch.setattr("sys.argv", ["average_encoder_reports.py", str(tmp_path / "mean"),
                                     *(str(tmp_path / name) for name in read)])
    script.main()
    assert "4 scenes, 4 labelled sources, the mean of 3 encoders" in capsys.readouterr().out
    expected = [[30.0, 0.0], [0.0, 30.0], [30.0, 0.0]]
    _, methods = read_predictions(tmp_path / "mean")
    np.testing.assert_allclose(methods["encoder"][:3], expected, atol=0.01)
    assert np.isnan(methods["encoder"][3]).all()
    np.testing.assert_allclose(methods["gcc_phat_woodworth"][:, 0], 5.0)  # the first report's
    with open(tmp_path / "mean" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["encoder_distance_m"] for row in rows] == ["2.00"] * 4 and rows[0]["receiver"] == "cipic:subject_003"
    sources = read_class_wise_predictions(tmp_path / "mean")
    np.testing.assert_allclose(np.stack([sources["class_azimuth_deg"], sources["class_elevation_deg"]], 1)[:3],
                               expected, atol=0.01)
    assert np.isnan(sources["class_azimuth_deg"][3])
    np.testing.assert_array_equal(sources["scene"], [0, 1, 2, 3])
    write_csv(tmp_path / "b" / "predictions.csv", ["true_azimuth_deg", "true_elevation_deg"], [[0.0, 0.0]] * 4)
    with pytest.raises(SystemExit, match="different true directions"):
        script.main()
    monkeypatch.setattr("sys.argv", ["average_encoder_reports.py", str(tmp_path / "mean"), str(tmp_path / "a")])
    with pytest.raises(SystemExit):
        script.main()
