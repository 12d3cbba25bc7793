"""`spatial-alm evaluate --recordings`: a toy audio-LLM asked where the sound is in every recording of a tiny
labelled set rendered from the shared KEMAR head (skipped when the shared data is missing)."""

import csv
import dataclasses
import json
import math

import numpy as np
import pytest
import soundfile
import torch
from conftest import tiny_binaural_encoder
from transformers import LlamaForCausalLM

from spatial_alm.cli import main
from spatial_alm.data.recordings import RecordingDataset, build_from_sofa, read_labelled_recordings
from spatial_alm.evaluation.metrics import doa_accuracy
from spatial_alm.evaluation.qa_report import recording_questions, score_records
from spatial_alm.models.audio_llm import AudioLLM, build_prompt
from spatial_alm.models.projector import ProjectorConfig
from spatial_alm.models.text import small_llama_config, train_tokenizer
from spatial_alm.qa import get_question_type, parse_answer

KEMAR = "hrtf/mit_kemar_normal_pinna.sofa"
FS = 16000
DIRECTION_METRICS = {"doa_accuracy_20deg", "der_0.5m", "mean_angular_error_deg", "lateral_accuracy_20deg",
                     "lateral_error_deg", "front_back_confusion_rate"}
TEMPLATES = get_question_type("B").templates


@pytest.fixture(scope="module")
def kemar_set(shared_data, tmp_path_factory):
    """2 ESC-50 clips x 4 measured KEMAR directions (elevation within 10 deg), 0.5 s at 16 kHz: 8 files."""
    out = tmp_path_factory.mktemp("kemar_llm") / "set"
    build_from_sofa(shared_data / KEMAR, shared_data / "esc50", out, num_clips=2, num_directions=4, fs_hz=FS,
                    seed=0, duration_s=0.5, elevation_range_deg=(-10, 10), progress=False)
    return out


@pytest.fixture(scope="module")
def toy_llm(tmp_path_factory):
    """An untrained binaural audio-LLM at 16 kHz: encoder hop 10 ms, max_frames 64 (a 0.63 s window)."""
    torch.manual_seed(0)
    encoder = tiny_binaural_encoder()
    texts = [build_prompt(t) for t in TEMPLATES] + ["azimuth 30 deg, elevation -10 deg, distance 1.5 m"] * 3
    tokenizer = train_tokenizer(texts, vocab_size=300)
    llm = LlamaForCausalLM(small_llama_config(len(tokenizer), hidden_size=32, num_layers=1, num_heads=2,
                                              max_position_embeddings=256))
    model = AudioLLM(encoder, llm, tokenizer, ProjectorConfig(num_queries=4, num_layers=1, num_heads=2))
    return model.save_pretrained(tmp_path_factory.mktemp("llm") / "model")


def test_cli_evaluate_on_recordings_reports_b_beside_random_and_encoder_head(kemar_set, toy_llm, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(toy_llm), "--recordings", str(kemar_set), "--out", str(out),
                 "--max-new-tokens", "4"]) == 0
    printed = capsys.readouterr().out
    saved = json.loads((out / "report.json").read_text())
    with open(kemar_set / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert saved["num_questions"] == saved["num_recordings"] == len(saved["answers"]) == len(rows) == 8
    assert set(saved["model"]) == set(saved["random"]) == set(saved["encoder_head"]) == {"B"}
    for table in ("model", "random", "encoder_head"):
        row = saved[table]["B"]
        assert row["total"] == 8 and set(row["metrics"]) == DIRECTION_METRICS, table
        assert 0 <= row["metrics"]["doa_accuracy_20deg"] <= 100 and 0 <= row["metrics"]["der_0.5m"] <= 100
    assert saved["paired_vs_encoder_head"]["B"]["questions"] == 8
    # per spectral-cue group (from-sofa labels each file's cues): on each axis the groups hold every file once
    by_cue = saved["by_spectral_cue"]
    for axis, column in (("front/back", "front_back_cue_db"), ("above/below", "above_below_cue_db")):
        reaching = sum(float(row[column]) >= 1.0 for row in rows)
        groups = {f"{axis} cue {name} 1 dB ({n} recordings)": n for name, n in ((">=", reaching), ("<", 8 - reaching))
                  if n > 0}
        assert {group: by_cue[group]["model"]["B"]["total"] for group in by_cue if group.startswith(axis)} == groups
    assert "## By the recordings' spectral cues" in (out / "report.md").read_text()
    assert [a["file"] for a in saved["answers"]] == [r["file"] for r in rows]
    assert all(a["question_type"] == "B" and a["question"] in TEMPLATES for a in saved["answers"])
    assert saved["window"]["samples"] == 63 * 160 and saved["window"]["shorter_files"] == 8
    assert saved["distance_labelled"] == 8 and saved["directions"]["distinct"] == 4
    # the encoder-head row: the model's own heads on each file's centre window, recomputed here
    model = AudioLLM.from_pretrained(toy_llm)
    recordings = read_labelled_recordings(kemar_set)
    audio = RecordingDataset(recordings, FS, 63 * 160, 2)
    heads = model.encoder.predict(torch.stack([audio[i]["audio"] for i in range(len(audio))]))
    targets = [a["target"] for a in saved["answers"]]
    expected = doa_accuracy(heads.azimuth_deg.numpy(), heads.elevation_deg.numpy(),
                            [t["azimuth_deg"] for t in targets], [t["elevation_deg"] for t in targets])
    assert saved["encoder_head"]["B"]["metrics"]["doa_accuracy_20deg"] == pytest.approx(expected)
    markdown = (out / "report.md").read_text()
    assert "| B | direction | 8 |" in markdown and "front_back_confusion_rate" in markdown
    assert "centre 0.63 s" in markdown and "zero-padded on both sides" in markdown and markdown in printed
    assert "The files hold 4 distinct directions" in markdown
    assert (out / "scores.png").stat().st_size > 0
    # --max-questions: that many recordings, each keeping the question it gets in the full run
    assert main(["evaluate", "--model", str(toy_llm), "--recordings", str(kemar_set), "--out", str(tmp_path / "few"),
                 "--max-new-tokens", "2", "--max-questions", "3"]) == 0
    few = json.loads((tmp_path / "few" / "report.json").read_text())
    assert few["num_questions"] == 3 and few["recordings_in_labels"] == 8
    questions = {a["file"]: a["question"] for a in saved["answers"]}
    assert all(questions[a["file"]] == a["question"] for a in few["answers"])


def test_the_labels_own_answers_score_perfectly(kemar_set):
    recordings = read_labelled_recordings(kemar_set)
    questions = recording_questions(recordings, seed=0)
    assert questions == recording_questions(recordings, seed=0)
    assert [q["question"] for q in questions] != [q["question"] for q in recording_questions(recordings, seed=1)]
    records = [{**q, "prediction": parse_answer("B", q["answer"])} for q in questions]
    metrics = score_records(records, [])["B"]["metrics"]
    assert metrics["doa_accuracy_20deg"] == metrics["lateral_accuracy_20deg"] == 100.0
    assert metrics["der_0.5m"] == metrics["front_back_confusion_rate"] == 0.0
    assert metrics["mean_angular_error_deg"] == pytest.approx(0, abs=1e-6)
    assert metrics["lateral_error_deg"] == pytest.approx(0, abs=1e-6)
    # unknown distances: the answer says so, DER covers the labelled files only (none: n/a)
    unlabelled = [dataclasses.replace(r, distance_m=math.nan) if i % 2 else r for i, r in enumerate(recordings)]
    questions = recording_questions(unlabelled, seed=0)
    assert questions[1]["target"]["distance_m"] is None and questions[1]["answer"].endswith("distance unknown")
    far = [{**q, "prediction": {**parse_answer("B", q["answer"]), "distance_m": 9.0}} for q in questions]
    assert score_records(far, [])["B"]["metrics"]["der_0.5m"] == 100.0  # 4 labelled, all 9 m off
    metrics = score_records([{**q, "prediction": parse_answer("B", q["answer"])} for q in questions], [])["B"]
    assert metrics["metrics"]["doa_accuracy_20deg"] == 100.0 and metrics["metrics"]["der_0.5m"] == 0.0
    none = recording_questions([dataclasses.replace(r, distance_m=math.nan) for r in recordings], seed=0)
    assert math.isnan(score_records([{**q, "prediction": parse_answer("B", q["answer"])} for q in none],
                                    [])["B"]["metrics"]["der_0.5m"])


def test_recordings_with_other_channels_are_refused(toy_llm, tmp_path, capsys):
    soundfile.write(tmp_path / "mono.wav", np.zeros(1600, dtype=np.float32), FS)
    (tmp_path / "labels.csv").write_text("file,azimuth_deg,elevation_deg\nmono.wav,30,0\n")
    assert main(["evaluate", "--model", str(toy_llm), "--recordings", str(tmp_path), "--out",
                 str(tmp_path / "eval")]) == 2
    assert "mono.wav has 1 channel(s); allowed: 2" in capsys.readouterr().err
