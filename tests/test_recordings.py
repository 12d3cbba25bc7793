"""Real recordings (sim-to-real): `dataset from-sofa` on the shared heads and ESC-50 clips, the labels CSV
reader, and `evaluate-encoder --recordings` with a toy encoder."""

import csv
import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile
import torch
from conftest import tiny_binaural_encoder, write_sofa

from spatial_alm.cli import main
from spatial_alm.data.recordings import build_from_sofa, centre_window, read_labelled_recordings
from spatial_alm.evaluation.baselines import gcc_phat_itd_s

KEMAR = "hrtf/mit_kemar_normal_pinna.sofa"
KU100 = "hrtf/FHK_HRIR_L2354.sofa"
FS = 16000
BUILD = dict(num_clips=3, num_directions=8, fs_hz=FS, seed=0, duration_s=0.5, elevation_range_deg=(-10, 10),
             progress=False)


@pytest.fixture(scope="module")
def kemar_set(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("kemar") / "set"
    build_from_sofa(shared_data / KEMAR, shared_data / "esc50", out, **BUILD)
    return out


def _rows(folder):
    with open(folder / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_from_sofa_writes_one_wav_per_clip_and_direction_on_the_sofa_grid(shared_data, kemar_set):
    rows = _rows(kemar_set)
    assert len(rows) == 3 * 8
    assert list(rows[0])[:5] == ["file", "label", "azimuth_deg", "elevation_deg", "distance_m"]
    with h5py.File(shared_data / KEMAR, "r") as f:
        grid = {(round((az + 180) % 360 - 180, 3) % 360, round(el, 3)) for az, el, _ in f["SourcePosition"][()]}
    with open(shared_data / "esc50" / "esc50.csv", newline="") as f:
        categories = {r["category"] for r in csv.DictReader(f)}
    directions = set()
    for row in rows:
        az, el = float(row["azimuth_deg"]), float(row["elevation_deg"])
        assert -180 < az <= 180 and -10 <= el <= 10
        assert (round(az, 3) % 360, round(el, 3)) in grid
        assert float(row["distance_m"]) == pytest.approx(1.4)
        assert row["label"] in categories
        info = soundfile.info(kemar_set / row["file"])
        assert (info.channels, info.samplerate, info.frames) == (2, FS, FS // 2)
        directions.add((az, el))
    assert len(directions) == 8 and len({r["source_clip"] for r in rows}) == 3
    assert all(float(row[column]) >= 0 for row in rows for column in ("front_back_cue_db", "above_below_cue_db"))
    provenance = json.loads((kemar_set / "recordings.json").read_text())
    assert provenance["azimuth_check"]["verdict"] == "ccw" and not provenance["azimuth_flipped"]


def test_from_sofa_is_deterministic_for_a_seed(shared_data, kemar_set, tmp_path):
    again = tmp_path / "again"
    build_from_sofa(shared_data / KEMAR, shared_data / "esc50", again, **BUILD)
    for name in ["labels.csv", "recordings.json"] + [row["file"] for row in _rows(kemar_set)]:
        assert (again / name).read_bytes() == (kemar_set / name).read_bytes(), name
    other = tmp_path / "other"
    build_from_sofa(shared_data / KEMAR, shared_data / "esc50", other, **{**BUILD, "seed": 1, "num_clips": 1})
    assert [r["azimuth_deg"] for r in _rows(other)] != [r["azimuth_deg"] for r in _rows(kemar_set)][:8]


def test_a_source_on_the_left_is_louder_and_earlier_in_the_left_channel(kemar_set):
    lateral = [row for row in _rows(kemar_set) if 30 <= abs(float(row["azimuth_deg"])) <= 150]
    assert any(float(row["azimuth_deg"]) > 0 for row in lateral) and any(float(row["azimuth_deg"]) < 0
                                                                          for row in lateral)
    for row in lateral:
        audio, fs = soundfile.read(kemar_set / row["file"], dtype="float32", always_2d=True)
        side = np.sign(float(row["azimuth_deg"]))  # +1: on the left
        energy = (audio.astype(np.float64) ** 2).sum(0)
        assert side * 10 * np.log10(energy[0] / energy[1]) > 0.5, row["file"]  # low-frequency clips: small ILD
        assert side * gcc_phat_itd_s(audio.T, fs, max_itd_s=1e-3) > 100e-6, row["file"]  # left leads: > 0


def _clockwise_copy(source, path):
    with h5py.File(source, "r") as f:
        ir, position, fs = f["Data.IR"][::4], f["SourcePosition"][::4], f["Data.SamplingRate"][()]
    position[:, 0] = -position[:, 0]
    with h5py.File(path, "w") as f:
        f.create_dataset("Data.IR", data=ir)
        f.create_dataset("Data.SamplingRate", data=fs)
        f.create_dataset("SourcePosition", data=position)
        f["SourcePosition"].attrs["Type"] = "spherical"
    return path


def test_cli_from_sofa_checks_the_azimuth_sign(shared_data, tmp_path, capsys):
    args = ["dataset", "from-sofa", "--clips", str(shared_data / "esc50"), "--num-clips", "1", "--directions", "2",
            "--fs-hz", str(FS), "--duration-s", "0.25"]
    assert main(args + ["--sofa", str(shared_data / KU100), "--out", str(tmp_path / "ku100")]) == 0
    assert "wrote 2 recordings" in capsys.readouterr().out and len(_rows(tmp_path / "ku100")) == 2
    clockwise = _clockwise_copy(shared_data / KU100, tmp_path / "clockwise.sofa")
    assert main(args + ["--sofa", str(clockwise), "--out", str(tmp_path / "refused")]) == 2
    assert "clockwise.sofa: azimuth labels look clockwise" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="azimuth labels negated"):
        assert main(args + ["--sofa", str(clockwise), "--out", str(tmp_path / "auto"),
                            "--azimuth-convention", "auto"]) == 0
    assert "azimuth labels negated" in capsys.readouterr().out
    # a non-empty output folder, too many directions: named errors
    assert main(args + ["--sofa", str(shared_data / KU100), "--out", str(tmp_path / "ku100")]) == 2
    assert "not empty" in capsys.readouterr().err
    args[args.index("--directions") + 1] = "5000"
    assert main(args + ["--sofa", str(shared_data / KU100), "--out", str(tmp_path / "big")]) == 2
    assert "--directions" in capsys.readouterr().err


def _low_passed_behind_ir():
    """A toy head's responses at 8 azimuths (0, 45, ..., 315 deg; :func:`write_sofa`'s grid): the nearer ear
    louder (level differences as a head's), and behind the head (|azimuth| > 90 deg) both ears low-passed by
    a two-tap mean, |H(f)| = cos(pi f / fs): the front/back colouring of a pinna, made plain."""
    ir = np.zeros((8, 2, 16))
    for m, az in enumerate(np.radians(np.arange(8) * 45.0)):
        taps = np.array([0.5, 0.5] if np.cos(az) < -1e-9 else [1.0])
        for ear, gain in enumerate((1 + 0.9 * np.sin(az), 1 - 0.9 * np.sin(az))):
            ir[m, ear, 4:4 + len(taps)] = gain * taps
    return ir


def test_from_sofa_records_each_files_spectral_cue_from_its_sound_and_the_head(tmp_path):
    """Front/back cue: large for white noise in front or behind (its mirror image is low-passed, or it is),
    none at +-90 deg (its own mirror image) or for a 300 Hz tone (one band, where the low-pass is flat);
    above/below: none on the horizontal plane, a direction's own mirror image there."""
    clips = tmp_path / "clips"
    clips.mkdir()
    t = np.arange(FS // 2) / FS
    soundfile.write(clips / "noise.wav", np.random.default_rng(0).standard_normal(FS // 2).astype(np.float32), FS)
    soundfile.write(clips / "tone.wav", (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), FS)
    (clips / "clips.csv").write_text("filename,label\nnoise.wav,noise\ntone.wav,tone\n")
    sofa = write_sofa(tmp_path / "toy.sofa", _low_passed_behind_ir(), fs=float(FS))
    build_from_sofa(sofa, clips, tmp_path / "set", num_clips=2, num_directions=8, fs_hz=FS,
                    clips_csv=clips / "clips.csv", progress=False)
    rows = _rows(tmp_path / "set")
    assert len(rows) == 16
    for row in rows:
        az, front_back = float(row["azimuth_deg"]), float(row["front_back_cue_db"])
        assert float(row["above_below_cue_db"]) == 0.0, row
        if row["label"] == "tone" or abs(az) == 90:
            assert front_back < 0.1, row
        else:
            assert front_back > 2.0, row
    recordings = read_labelled_recordings(tmp_path / "set")
    assert [r.front_back_cue_db for r in recordings] == [float(row["front_back_cue_db"]) for row in rows]


def test_from_sofa_equalised_filters_every_file_by_the_heads_equaliser(shared_data, kemar_set, tmp_path):
    """--equalisation diffuse_field: the same files and directions, each recording the raw one through the
    head's diffuse-field equaliser (both ears alike; the KEMAR's diffuse field is 8-15 dB high at 1.6-3 kHz)."""
    from spatial_alm.acoustics.heads import SofaHead

    out = tmp_path / "equalised"
    made = build_from_sofa(shared_data / KEMAR, shared_data / "esc50", out, **BUILD, equalisation="diffuse_field")
    assert made["equalisation"] == "diffuse_field"
    raw_rows, rows = _rows(kemar_set), _rows(out)
    assert [(r["file"], r["azimuth_deg"], r["elevation_deg"]) for r in rows] == \
        [(r["file"], r["azimuth_deg"], r["elevation_deg"]) for r in raw_rows]
    equaliser = SofaHead(shared_data / KEMAR, equalisation="diffuse_field").equaliser
    frequencies = torch.fft.rfftfreq(8192, 1.0 / 44100)  # the MIT KEMAR file's rate
    band = (frequencies >= 2000) & (frequencies < 2500)
    expected_db = 10 * math.log10(float(torch.fft.rfft(equaliser, n=8192).abs().square()[band].mean()))
    assert expected_db < -3
    for row in rows[:4]:
        raw_audio, audio = (torch.from_numpy(soundfile.read(folder / row["file"], dtype="float32")[0].T)
                            for folder in (kemar_set, out))
        f = torch.fft.rfftfreq(raw_audio.shape[-1], 1.0 / FS)
        powers = [torch.fft.rfft(x.double()).abs().square()[:, (f >= 2000) & (f < 2500)].sum()
                  for x in (raw_audio, audio)]
        assert 10 * math.log10(float(powers[1] / powers[0])) == pytest.approx(expected_db, abs=1.0)


# --- the labels CSV ---------------------------------------------------------------------------------

def _folder(tmp_path, rows, header="file,azimuth_deg,elevation_deg,distance_m,label"):
    tmp_path.mkdir(exist_ok=True)
    soundfile.write(tmp_path / "a.wav", np.zeros((100, 2), dtype=np.float32), 8000)
    (tmp_path / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return tmp_path


def test_read_labelled_recordings(tmp_path):
    folder = _folder(tmp_path, ["a.wav,-180,10,,dog", "a.wav,45.5,-3,2.5,"])
    first, second = read_labelled_recordings(folder)
    assert (first.azimuth_deg, first.elevation_deg, first.label) == (180.0, 10.0, "dog")
    assert np.isnan(first.distance_m) and (first.num_channels, first.fs_hz, first.num_frames) == (2, 8000, 100)
    assert (second.azimuth_deg, second.distance_m, second.label) == (45.5, 2.5, "")
    assert np.isnan(first.front_back_cue_db) and np.isnan(second.above_below_cue_db)  # no cue columns: unknown
    cues = _folder(tmp_path / "cues", ["a.wav,10,0,1.5,3.25,", "a.wav,10,0,,-1,0"],
                   header="file,azimuth_deg,elevation_deg,distance_m,front_back_cue_db,above_below_cue_db")
    with pytest.raises(ValueError, match=r"row 2 \(line 3\): field 'front_back_cue_db' = '-1'; allowed: a number "
                                         r"of dB >= 0"):
        read_labelled_recordings(cues)
    (cues / "labels.csv").write_text((cues / "labels.csv").read_text().replace(",-1,0", ",0.5,0"))
    first, second = read_labelled_recordings(cues)
    assert (first.front_back_cue_db, second.front_back_cue_db, second.above_below_cue_db) == (3.25, 0.5, 0.0)
    assert np.isnan(first.above_below_cue_db) and np.isnan(second.distance_m)


@pytest.mark.parametrize("row, field", [
    ("a.wav,abc,0,1,dog", "azimuth_deg"), ("a.wav,200,0,1,dog", "azimuth_deg"),
    ("a.wav,10,95,1,dog", "elevation_deg"), ("a.wav,10,0,-1,dog", "distance_m"),
    ("b.wav,10,0,1,dog", "file"), ("a.wav,10,,1,dog", "elevation_deg"),
])
def test_a_bad_labels_row_is_named(tmp_path, row, field):
    folder = _folder(tmp_path, ["a.wav,0,0,1,dog", row])
    with pytest.raises(ValueError, match=rf"labels\.csv: row 2 \(line 3\): field '{field}' = .*allowed"):
        read_labelled_recordings(folder)


def test_a_missing_labels_column_is_named(tmp_path):
    folder = _folder(tmp_path, ["a.wav,0"], header="file,azimuth_deg")
    with pytest.raises(ValueError, match=r"labels\.csv: column\(s\) \['elevation_deg'\] missing"):
        read_labelled_recordings(folder)


def test_centre_window_crops_and_pads_around_the_centre():
    x = torch.arange(10.0)[None]
    assert centre_window(x, 4).tolist() == [[3.0, 4.0, 5.0, 6.0]]
    assert centre_window(x, 13).tolist() == [[0.0] + list(range(10)) + [0.0, 0.0]]


# --- evaluation on recordings ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def toy_encoder(tmp_path_factory):
    """A tiny untrained binaural encoder at 16 kHz (hop 10 ms, max_frames 64: a 0.63 s window)."""
    torch.manual_seed(0)
    return tiny_binaural_encoder().eval().save_pretrained(tmp_path_factory.mktemp("encoder") / "model")


def test_evaluate_encoder_on_recordings_reports_metrics_beside_gcc_phat(kemar_set, toy_encoder, tmp_path):
    from spatial_alm.evaluation.encoder_report import evaluate_encoder_on_recordings

    out = tmp_path / "eval"
    report = evaluate_encoder_on_recordings(toy_encoder, kemar_set, out, progress=False)
    saved = json.loads((out / "report.json").read_text())
    assert saved["num_recordings"] == 24 and "detection_map" not in saved and "seld" not in saved
    assert saved["window"]["samples"] == 63 * 160 and saved["window"]["shorter_files"] == 24
    assert set(report["localisation"]) == {"encoder", "gcc_phat_woodworth"}
    # KEMAR is measured at one radius: a guess within the labelled range would be right by construction
    assert report["distance_error_rate"] is not None and report["chance"]["distance_error_rate"] is None
    for method in ("encoder", "gcc_phat_woodworth"):
        values = saved["localisation"][method]["all"]
        assert set(values) >= {"doa_accuracy_20deg", "mean_angular_error_deg", "lateral_error_deg",
                               "lateral_accuracy_20deg", "elevation_error_deg", "front_back_confusion_rate"}
        assert 0 <= values["doa_accuracy_20deg"] <= 100 and 0 <= values["mean_angular_error_deg"] <= 180
    # the GCC-PHAT baseline answers in the front half: every scored source behind counts as confused
    table = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(table) == 24 and table[0]["file"] == _rows(kemar_set)[0]["file"]
    true_x = [np.cos(np.radians(float(r["true_elevation_deg"]))) * np.cos(np.radians(float(r["true_azimuth_deg"])))
              for r in table]
    scored = [x for x in true_x if abs(x) >= np.sin(np.radians(20))]
    behind = 100 * sum(x < 0 for x in scored) / len(scored)
    assert saved["localisation"]["gcc_phat_woodworth"]["all"]["front_back_confusion_rate"] == pytest.approx(behind)
    # 3 clips x 8 directions: front/back is measured on the directions far enough from the frontal plane
    far = {(r["true_azimuth_deg"], r["true_elevation_deg"]) for r, x in zip(table, true_x)
           if abs(x) >= np.sin(np.radians(20))}
    assert saved["directions"] == {"distinct": 8, "front_back_scored": len(far)} and 0 < len(far) <= 8
    # the baseline localises the lateral angle of real HRIR recordings well
    assert saved["localisation"]["gcc_phat_woodworth"]["all"]["lateral_error_deg"] < 15
    assert saved["distance_labelled"] == 24 and 0 <= saved["distance_error_rate"] <= 100
    assert saved["paired_doa_20deg"]["gcc_phat_woodworth"]["all"]["p_value"] <= 1
    markdown = (out / "report.md").read_text()
    assert "| gcc_phat_woodworth | all |" in markdown and "front/back confusion rate (%)" in markdown
    assert "Detection metrics (mAP, SELD) are skipped for recordings" in markdown
    assert f"8 distinct directions, {len(far)} of them at least 20 deg from the frontal plane" in markdown
    # the encoder's localisation per labelled class: every file counted once, under its CSV label
    by_class = saved["encoder_localisation_by_class"]
    assert set(by_class) == {row["label"] for row in _rows(kemar_set)}
    assert sum(values["sources"] for values in by_class.values()) == 24
    assert "## Encoder localisation of the primary source, by its class" in markdown
    # from-sofa labels each file's spectral cues: every metric also per cue group, each file in one group per axis
    groups = set()
    for axis, column in (("front/back", "front_back_cue_db"), ("above/below", "above_below_cue_db")):
        reaching = sum(float(row[column]) >= 1.0 for row in _rows(kemar_set))
        groups |= {f"{axis} cue {name} 1 dB ({n} recordings)" for name, n in ((">=", reaching), ("<", 24 - reaching))
                   if n > 0}
    assert set(saved["localisation"]["encoder"]) == {"all", *groups}
    assert set(saved["paired_doa_20deg"]["gcc_phat_woodworth"]) == {"all", *groups}
    for name in ("azimuth_scatter.png", "error_histogram.png", "polar_error.png"):
        assert (out / name).stat().st_size > 0
    # elevation against the best constant answer: the truths' median, scored independently from the CSV
    true_el = np.array([float(r["true_elevation_deg"]) for r in table])
    gcc_el = np.array([float(r["gcc_phat_woodworth_elevation_deg"]) for r in table])
    against = saved["elevation_against_constant"]
    assert against["constant_deg"] == pytest.approx(np.median(true_el), abs=0.01)
    assert against["constant_error_deg"] == pytest.approx(np.abs(true_el - np.median(true_el)).mean(), abs=0.01)
    assert against["paired"]["gcc_phat_woodworth"]["mean_difference"] == pytest.approx(
        np.abs(gcc_el - true_el).mean() - against["constant_error_deg"], abs=0.01)
    assert set(against["paired"]) == {"encoder", "gcc_phat_woodworth"}
    assert "## Elevation against the best constant answer" in markdown


def test_compared_encoders_are_scored_on_the_same_files(kemar_set, toy_encoder, tmp_path):
    """--compare: another encoder's row equals that encoder's own report; the encoder against itself agrees
    on every file (no discordant pair, p = 1)."""
    from spatial_alm.evaluation.encoder_report import evaluate_encoder_on_recordings

    torch.manual_seed(1)
    other = tiny_binaural_encoder().eval().save_pretrained(tmp_path / "other")
    report = evaluate_encoder_on_recordings(toy_encoder, kemar_set, tmp_path / "both", baselines=[],
                                            compare={"other": other, "itself": toy_encoder}, progress=False)
    alone = evaluate_encoder_on_recordings(other, kemar_set, tmp_path / "alone", baselines=[], progress=False)
    assert report["localisation"]["other"] == alone["localisation"]["encoder"]
    assert report["localisation"]["itself"] == report["localisation"]["encoder"]
    itself = report["paired_doa_20deg"]["itself"]["all"]
    assert (itself["a_only"], itself["b_only"], itself["p_value"]) == (0, 0, 1.0)
    assert "| other | all |" in (tmp_path / "both" / "report.md").read_text()
    with pytest.raises(ValueError, match="compare name 'gcc_phat_woodworth' is taken"):
        evaluate_encoder_on_recordings(toy_encoder, kemar_set, tmp_path / "x", compare={"gcc_phat_woodworth": other},
                                       progress=False)


def test_cli_evaluate_encoder_on_recordings(kemar_set, toy_encoder, tmp_path, capsys):
    args = ["evaluate-encoder", "--checkpoint", str(toy_encoder), "--recordings", str(kemar_set),
            "--max-scenes", "6", "--window-s", "0.4"]
    assert main(args + ["--out", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    assert "| gcc_phat_woodworth | all |" in printed and "front/back confusion rate" in printed
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["num_recordings"] == 6 and saved["window"]["samples"] == 6400
    # a bad row of the labels CSV: one line naming the file, the row and the field
    bad = tmp_path / "bad.csv"
    bad.write_text((kemar_set / "labels.csv").read_text().replace(",1.4000,", ",-1.4,", 1))
    assert main(args + ["--labels", str(bad), "--out", str(tmp_path / "bad")]) == 2
    assert "bad.csv: row 1 (line 2): field 'distance_m' = '-1.4'" in capsys.readouterr().err
    assert main(args + ["--window-s", "5", "--out", str(tmp_path / "long")]) == 2
    assert "window_s = 5.0; allowed: (0, 0.63] seconds" in capsys.readouterr().err


def test_recordings_at_another_rate_and_length_are_resampled_and_centred(kemar_set, toy_encoder, tmp_path):
    """A 44.1 kHz copy, 2 s long, of a few files: the encoder and the baselines see the centre window."""
    from spatial_alm.evaluation.encoder_report import evaluate_encoder_on_recordings

    rows = _rows(kemar_set)[:4]
    folder = tmp_path / "long"
    folder.mkdir()
    for row in rows:
        audio, fs = soundfile.read(kemar_set / row["file"], dtype="float32")
        resampled = torchaudio_resample(np.tile(audio, (4, 1)).T, fs, 44100)
        soundfile.write(folder / Path(row["file"]).name, resampled.T, 44100, subtype="PCM_24")
    lines = ["file,azimuth_deg,elevation_deg"] + [f"{Path(r['file']).name},{r['azimuth_deg']},{r['elevation_deg']}"
                                                 for r in rows]
    (folder / "truth.csv").write_text("\n".join(lines) + "\n")
    saved = evaluate_encoder_on_recordings(toy_encoder, folder, tmp_path / "eval", labels_csv=folder / "truth.csv",
                                           progress=False)
    assert saved["file_rates_hz"] == [44100] and saved["window"]["longer_files"] == 4
    assert saved["distance_error_rate"] is None and saved["distance_labelled"] == 0
    assert "not labelled" in (tmp_path / "eval" / "report.md").read_text()


def torchaudio_resample(x, fs_from, fs_to):
    import torchaudio

    return torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(x)), fs_from, fs_to).numpy()


def test_front_back_confusion_rate_on_a_hand_made_case():
    from spatial_alm.evaluation.encoder_report import front_back_confusion_rate, front_back_confusions

    true_az = [0, 30, 150, 180, 80, -100, 0]
    true_el = [0, 0, 0, 0, 0, 0, 80]
    pred_az = [180, 40, 30, -170, -80, 100, 0]  # wrong, right, wrong, right, (unscored), (unscored), (unscored)
    pred_el = [0, 0, 0, 0, 0, 0, 80]
    flags = front_back_confusions(pred_az, pred_el, true_az, true_el)
    assert flags[:4].tolist() == [1.0, 0.0, 1.0, 0.0] and np.isnan(flags[4:]).all()
    assert front_back_confusion_rate(pred_az, pred_el, true_az, true_el) == pytest.approx(50.0)
    # a missing prediction counts as confused; no scored source gives NaN
    assert front_back_confusion_rate([np.nan, 40], [0, 0], [0, 30], [0, 0]) == pytest.approx(50.0)
    assert np.isnan(front_back_confusion_rate([0], [0], [90], [0]))


def test_elevation_against_the_best_constant_on_a_hand_made_case():
    from spatial_alm.evaluation.encoder_report import elevation_against_constant

    true_el = [0, 10, 20, 30, 40]  # median 20 deg: errors 20, 10, 0, 10, 20, mean 12 deg
    result = elevation_against_constant({"exact": true_el, "median": [20] * 5, "horizon": [0] * 5}, true_el)
    assert result["constant_deg"] == pytest.approx(20.0) and result["constant_error_deg"] == pytest.approx(12.0)
    assert result["paired"]["exact"]["mean_difference"] == pytest.approx(-12.0)
    assert result["paired"]["median"] == {"mean_difference": 0.0, "pairs": 5, "p_value": 1.0}
    assert result["paired"]["horizon"]["mean_difference"] == pytest.approx(8.0)  # errors 0..40, mean 20 deg
    # every source at one elevation (a horizontal-plane set): a constant is exact, nothing to compare
    assert elevation_against_constant({"exact": [0, 0]}, [0, 0]) is None


def test_localisation_by_class_on_a_hand_made_case():
    from spatial_alm.evaluation.encoder_report import localisation_by_class

    # rain: front source heard in front, back source heard behind; hum: both flipped; "" (unlabelled) left out
    true_az, true_el = [0, 180, 30, -150, 90], [0, 0, 0, 0, 0]
    pred_az, pred_el = [0, 170, 150, -30, 90], [10, 0, 0, 0, 0]
    table = localisation_by_class(pred_az, pred_el, true_az, true_el, ["rain", "rain", "hum", "hum", ""])
    assert list(table) == ["hum", "rain"]
    assert table["rain"]["sources"] == 2 and table["hum"]["sources"] == 2
    assert table["rain"]["front_back_confusion_rate"] == pytest.approx(0.0)
    assert table["hum"]["front_back_confusion_rate"] == pytest.approx(100.0)
    assert table["rain"]["doa_accuracy_20deg"] == pytest.approx(100.0)  # errors 10 and 10 deg
    assert table["hum"]["doa_accuracy_20deg"] == pytest.approx(0.0)  # errors 120 deg
    assert table["rain"]["elevation_error_deg"] == pytest.approx(5.0)
    assert table["hum"]["lateral_error_deg"] == pytest.approx(0.0)  # a mirror image keeps the lateral angle
