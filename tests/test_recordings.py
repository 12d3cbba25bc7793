"""Real recordings (sim-to-real): `dataset from-sofa` on the shared heads and ESC-50 clips, the labels CSV
reader, and `evaluate-encoder --recordings` with a toy encoder."""

import csv
import json

import h5py
import numpy as np
import pytest
import soundfile
import torch

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


# --- the labels CSV ---------------------------------------------------------------------------------

def _folder(tmp_path, rows, header="file,azimuth_deg,elevation_deg,distance_m,label"):
    soundfile.write(tmp_path / "a.wav", np.zeros((100, 2), dtype=np.float32), 8000)
    (tmp_path / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return tmp_path


def test_read_labelled_recordings(tmp_path):
    folder = _folder(tmp_path, ["a.wav,-180,10,,dog", "a.wav,45.5,-3,2.5,"])
    first, second = read_labelled_recordings(folder)
    assert (first.azimuth_deg, first.elevation_deg, first.label) == (180.0, 10.0, "dog")
    assert np.isnan(first.distance_m) and (first.num_channels, first.fs_hz, first.num_frames) == (2, 8000, 100)
    assert (second.azimuth_deg, second.distance_m, second.label) == (45.5, 2.5, "")


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
