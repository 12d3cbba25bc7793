"""Encoder targets (BAT bins), the Spatial-AST-style encoder, heads, loss and save/load, at toy size."""

import json
import math

import pytest
import torch

from spatial_alm.features import SpatialFeatureConfig, num_planes
from spatial_alm.models import (
    AZIMUTH_CLASSES,
    DISTANCE_CLASSES,
    ELEVATION_CLASSES,
    IGNORE_INDEX,
    EncoderConfig,
    EncoderTargets,
    LossWeights,
    SpatialEncoder,
    SpatialEncoderModel,
    azimuth_to_class,
    class_to_azimuth,
    class_to_distance,
    class_to_elevation,
    distance_to_class,
    elevation_to_class,
    multi_hot,
    multitask_loss,
)
from spatial_alm.models.encoder import HeadLogits, class_pair_order_loss, decode_logits

FEATURES = SpatialFeatureConfig(fs_hz=16000, n_fft=512, hop_length=160, n_mels=32)  # 100 frames / s
CLASS_NAMES = ["dog", "siren", "speech"]


def toy_model(num_channels=2, seed=0, **overrides) -> SpatialEncoderModel:
    torch.manual_seed(seed)
    config = EncoderConfig.tiny(num_planes(FEATURES, num_channels), len(CLASS_NAMES), n_mels=32,
                                embed_dim=32, depth=2, num_heads=2, patch_size=(8, 4), max_frames=128,
                                **overrides)
    return SpatialEncoderModel(FEATURES, config, num_channels, CLASS_NAMES)


def audio(batch, channels, samples, seed=0):
    return torch.randn(batch, channels, samples, generator=torch.Generator().manual_seed(seed))


# --- targets ---------------------------------------------------------------------------------------

def test_bin_centres_round_trip():
    for k, to_value, to_class in [(AZIMUTH_CLASSES, class_to_azimuth, azimuth_to_class),
                                  (ELEVATION_CLASSES, class_to_elevation, elevation_to_class),
                                  (DISTANCE_CLASSES, class_to_distance, distance_to_class)]:
        classes = torch.arange(k)
        assert torch.equal(to_class(to_value(classes)), classes)
    assert class_to_azimuth(torch.arange(360)).tolist() == list(range(0, 181)) + list(range(-179, 0))
    assert class_to_distance(torch.tensor([0, 1, 20])).tolist() == [0.0, 0.5, 10.0]


def test_bin_edges():
    az = azimuth_to_class([-180.0, 180.0, 179.6, -179.6, -0.4, 359.0, 540.0])
    assert az.tolist() == [180, 180, 180, 180, 0, 359, 180]
    assert class_to_azimuth(az[:1]).item() == 180.0  # -180 wraps onto +180
    el = elevation_to_class([90.0, 89.6, -90.0, 0.0])
    assert el.tolist() == [180, 180, 0, 90]
    assert class_to_elevation(el).tolist() == [90.0, 90.0, -90.0, 0.0]  # +90 stays +90
    assert distance_to_class([10.2, 25.0, 0.24, 0.25]).tolist() == [20, 20, 0, 1]
    assert class_to_distance(distance_to_class(torch.tensor([10.2]))).item() == 10.0


def test_bins_agree_with_the_qa_answers():
    from spatial_alm.qa.templates import bin_azimuth_deg, bin_distance_m, bin_elevation_deg

    values = torch.rand(200, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for v in values.tolist():
        az, el, d = v * 720 - 360, v * 180 - 90, v * 10
        assert class_to_azimuth(azimuth_to_class(az)).item() == bin_azimuth_deg(az)
        assert class_to_elevation(elevation_to_class(el)).item() == bin_elevation_deg(el)
        assert class_to_distance(distance_to_class(d)).item() == bin_distance_m(d)


def test_missing_sources_and_bad_values():
    nan = float("nan")
    assert azimuth_to_class([nan]).tolist() == [IGNORE_INDEX]
    assert elevation_to_class([nan]).tolist() == distance_to_class([nan]).tolist() == [IGNORE_INDEX]
    with pytest.raises(ValueError, match="elevation_deg"):
        elevation_to_class(90.5)
    with pytest.raises(ValueError, match="distance_m"):
        distance_to_class(-0.1)
    with pytest.raises(ValueError, match="azimuth_deg"):
        azimuth_to_class(float("inf"))
    with pytest.raises(ValueError, match="azimuth class"):
        class_to_azimuth(360)


def test_multi_hot_and_scene_targets():
    assert multi_hot([["siren", ""], [], ["dog", "speech"]], CLASS_NAMES).tolist() == [
        [0, 1, 0], [0, 0, 0], [1, 0, 1]]
    with pytest.raises(ValueError, match="'cat'"):
        multi_hot([["cat"]], CLASS_NAMES)
    nan = float("nan")
    scenes = [  # SpatialSceneDataset items: per-source values, NaN / "" padded; without levels source 0 is the target
        {"labels": ["dog", "siren"], "azimuth_deg": torch.tensor([-90.0, 30.0]),
         "elevation_deg": torch.tensor([10.0, 0.0]), "distance_m": torch.tensor([12.0, 1.0])},
        {"labels": ["", ""], "azimuth_deg": torch.tensor([nan, nan]),
         "elevation_deg": torch.tensor([nan, nan]), "distance_m": torch.tensor([nan, nan])},
    ]
    targets = EncoderTargets.from_scenes(scenes, CLASS_NAMES)
    assert targets.classes.tolist() == [[1, 1, 0], [0, 0, 0]]
    assert targets.azimuth.tolist() == [270, IGNORE_INDEX]
    assert targets.elevation.tolist() == [100, IGNORE_INDEX]
    assert targets.distance.tolist() == [20, IGNORE_INDEX]
    scenes[0]["level_db"] = torch.tensor([-6.0, 0.0])  # with levels, the loudest source is the target
    targets = EncoderTargets.from_scenes(scenes, CLASS_NAMES)
    assert targets.azimuth.tolist() == [30, IGNORE_INDEX] and targets.distance.tolist() == [2, IGNORE_INDEX]


def test_class_direction_targets_hand_computed():
    nan = float("nan")
    scenes = [{"labels": ["siren", "dog"], "azimuth_deg": torch.tensor([90.0, 180.0]),
               "elevation_deg": torch.tensor([0.0, 30.0]), "distance_m": torch.tensor([1.0, 2.0])},
              {"labels": ["speech", "speech", ""], "azimuth_deg": torch.tensor([0.0, -90.0, nan]),
               "elevation_deg": torch.tensor([0.0, -90.0, nan]), "distance_m": torch.tensor([1.0, 1.0, nan]),
               "level_db": torch.tensor([-3.0, 0.0, nan])}]  # a class heard twice: the louder source
    targets = EncoderTargets.from_scenes(scenes, CLASS_NAMES)
    ign = IGNORE_INDEX  # classes dog, siren, speech; absent ones are ignored
    assert targets.class_azimuth.tolist() == [[180, 90, ign], [ign, ign, 270]]  # -90 deg: class 270
    assert targets.class_elevation.tolist() == [[120, 90, ign], [ign, ign, 0]]  # class = elevation + 90
    assert targets.class_distance.tolist() == [[4, 2, ign], [ign, ign, 2]]  # 0.5 m bins


def test_class_direction_head_trains_and_round_trips(tmp_path):
    model = toy_model(class_direction_head=True).train()
    x = audio(2, 2, 8000)
    scenes = [{"labels": ["siren", ""], "azimuth_deg": torch.tensor([90.0, float("nan")]),
               "elevation_deg": torch.tensor([0.0, float("nan")]), "distance_m": torch.tensor([1.0, float("nan")])},
              {"labels": ["dog", "speech"], "azimuth_deg": torch.tensor([-45.0, 135.0]),
               "elevation_deg": torch.tensor([0.0, 10.0]), "distance_m": torch.tensor([1.0, 2.0])}]
    targets = EncoderTargets.from_scenes(scenes, CLASS_NAMES)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        logits = model(x)
        assert logits.class_azimuth.shape == (2, 3, AZIMUTH_CLASSES)
        assert logits.class_elevation.shape == (2, 3, ELEVATION_CLASSES)
        assert logits.class_distance.shape == (2, 3, DISTANCE_CLASSES)
        loss, terms = multitask_loss(logits, targets, LossWeights(classes=1.0))
        # present (scene, class): (0, siren) at 90 deg, (1, dog) at -45 -> class 315, (1, speech) at 135 deg
        log_p = torch.log_softmax(logits.class_azimuth, -1)
        expected = -(log_p[0, 1, 90] + log_p[1, 0, 315] + log_p[1, 2, 135]) / 3
        assert terms["class_azimuth"] == pytest.approx(expected.item(), rel=1e-5)
        log_p = torch.log_softmax(logits.class_distance, -1)  # 1 m, 1 m, 2 m: classes 2, 2, 4
        expected = -(log_p[0, 1, 2] + log_p[1, 0, 2] + log_p[1, 2, 4]) / 3
        assert terms["class_distance"] == pytest.approx(expected.item(), rel=1e-5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(sum(terms[name].item() for name in ("class_azimuth", "class_elevation", "class_distance")))
    assert losses[-1] < losses[0]
    model.eval().save_pretrained(tmp_path / "encoder")
    config_path = tmp_path / "encoder" / "config.json"  # as saved while class tokens were an option
    config = json.loads(config_path.read_text())
    config["encoder"]["class_tokens"] = True
    config_path.write_text(json.dumps(config))
    loaded = SpatialEncoderModel.from_pretrained(tmp_path / "encoder")
    with torch.no_grad():
        assert torch.equal(model.predict(x).class_directions, loaded.predict(x).class_directions)
        assert torch.equal(model.predict(x).class_distances, loaded.predict(x).class_distances)
    assert toy_model(class_direction_head=False).predict(x).class_directions is None  # BAT's heads only
    with pytest.raises(ValueError, match="class_azimuth"):  # targets built without them
        multitask_loss(model(x), EncoderTargets(targets.classes, targets.azimuth, targets.elevation, targets.distance))


def test_class_pair_order_loss_hand_computed():
    """Posteriors as one-hot bins, so each expected vector is its bin's unit vector. Scene 0: the dog front-left-up
    (30, 20), the siren back-right-down (-150, -20): a pair on every axis, each term log(1 + exp(-4 d)) with d the
    difference of the two components (dog minus siren); read swapped, d changes sign; read both at the dog's
    direction, d = 0 and every term log 2. Scene 1: the speech alone (the dog's bin given, its class absent)."""
    def one_hot(bins, size):
        logits = torch.full((2, 3, size), -1e4)
        for (b, k), index in bins.items():
            logits[b, k, index] = 0.0
        return logits

    azimuth_target = torch.tensor([[30, 210, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, 90]])  # -150 deg: 210
    elevation_target = torch.tensor([[110, 70, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, 90]])

    def loss(dog, siren):
        azimuth = one_hot({(0, 0): dog[0] % 360, (0, 1): siren[0] % 360, (1, 0): 30, (1, 2): 90}, AZIMUTH_CLASSES)
        elevation = one_hot({(0, 0): dog[1] + 90, (0, 1): siren[1] + 90, (1, 0): 110, (1, 2): 90},
                            ELEVATION_CLASSES)
        return class_pair_order_loss(azimuth, elevation, azimuth_target, elevation_target).item()

    c20, s20, c30, s30 = (math.cos(math.radians(20)), math.sin(math.radians(20)), math.cos(math.radians(30)),
                          math.sin(math.radians(30)))
    differences = [2 * c20 * c30, 2 * c20 * s30, 2 * s20]  # front, left, up: (30, 20) minus (-150, -20)
    def softplus(x):
        return math.log1p(math.exp(x))
    assert loss((30, 20), (-150, -20)) == pytest.approx(sum(softplus(-4 * d) for d in differences) / 3, rel=1e-5)
    assert loss((-150, -20), (30, 20)) == pytest.approx(sum(softplus(4 * d) for d in differences) / 3, rel=1e-5)
    assert loss((30, 20), (30, 20)) == pytest.approx(math.log(2), rel=1e-5)  # one half shared: no order
    # the siren on the frontal plane and the horizon (90, 0): only the left/right pair is left, and it is
    # on the dog's side, so no pair at all
    side = torch.tensor([[30, 90, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, 90]])
    flat = torch.tensor([[110, 90, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, 90]])
    no_pair = class_pair_order_loss(torch.zeros(2, 3, AZIMUTH_CLASSES, requires_grad=True),
                                    torch.zeros(2, 3, ELEVATION_CLASSES), side, flat)
    assert no_pair.item() == 0.0 and no_pair.requires_grad


def test_class_tokens_stay_apart_from_the_tokens_and_each_feeds_its_own_class():
    model = toy_model(class_direction_head=True).eval()
    x = audio(2, 2, 8000)
    with torch.no_grad():
        encoded = model.encode(x)
        plain = toy_model(class_direction_head=False).eval().encode(x)
        assert plain.class_tokens is None
        assert encoded.tokens.shape == plain.tokens.shape  # 3 CLS + patch tokens, as without class tokens
        assert encoded.class_tokens.shape == (2, len(CLASS_NAMES), model.encoder.config.embed_dim)
        # the class-wise heads are shared: class k's logits come from class k's token alone
        order = [2, 0, 1]
        swapped = model.heads(type(encoded)(**{**vars(encoded), "class_tokens": encoded.class_tokens[:, order]}))
        logits = model.heads(encoded)
    for name in ("class_azimuth", "class_elevation", "class_distance"):
        torch.testing.assert_close(getattr(swapped, name), getattr(logits, name)[:, order])
    # class logits: cls_class's head plus the shared presence head on class k's token, which moves with it
    with torch.no_grad():
        from_cls = model.heads.class_head(encoded.cls_class)
    torch.testing.assert_close(swapped.classes - logits.classes[:, order], from_cls - from_cls[:, order])


def test_class_wise_heads_decode_to_unit_directions_and_mean_distances():
    logits = HeadLogits(classes=torch.zeros(1, 2), azimuth=torch.zeros(1, AZIMUTH_CLASSES),
                        elevation=torch.zeros(1, ELEVATION_CLASSES), distance=torch.zeros(1, DISTANCE_CLASSES),
                        class_azimuth=torch.full((1, 2, AZIMUTH_CLASSES), -1e4),
                        class_elevation=torch.full((1, 2, ELEVATION_CLASSES), -1e4),
                        class_distance=torch.full((1, 2, DISTANCE_CLASSES), -1e4))
    # class 0: front/back modes at 30 and 150 deg, the front one stronger -> its argmax, 30 deg; elevation 10 deg
    logits.class_azimuth[0, 0, 30], logits.class_azimuth[0, 0, 150] = 1.0, 0.0
    logits.class_elevation[0, 0, 90 + 10] = 0.0
    # class 1: azimuth -60 deg (class 300), elevation -20 deg; distance modes 1 m and 2 m, equal -> 1.5 m
    logits.class_azimuth[0, 1, 300] = logits.class_elevation[0, 1, 90 - 20] = 0.0
    logits.class_distance[0, 1, 2] = logits.class_distance[0, 1, 4] = 0.0
    logits.class_distance[0, 0, 6] = 0.0  # 3 m
    decoded = decode_logits(logits)
    c, s = math.cos, math.sin
    expected = torch.tensor([[c(math.radians(10)) * c(math.radians(30)), c(math.radians(10)) * s(math.radians(30)),
                              s(math.radians(10))],
                             [c(math.radians(-20)) * c(math.radians(-60)), c(math.radians(-20)) * s(math.radians(-60)),
                              s(math.radians(-20))]])
    assert torch.allclose(decoded.class_directions[0], expected.float(), atol=1e-6)
    assert decoded.class_distances[0].tolist() == pytest.approx([3.0, 1.5])


@pytest.mark.parametrize("outputs_per_class, message", [(3, "ACCDOA.*61d7ee5"),
                                                          (AZIMUTH_CLASSES + ELEVATION_CLASSES, "CLS tokens.*4333154")])
def test_an_encoder_with_replaced_class_heads_is_refused_with_the_commit_that_loads_it(
        tmp_path, outputs_per_class, message):
    """Encoders saved with class-wise ACCDOA vectors or with class-wise heads on the CLS tokens (no class
    tokens, one head output per class and bin) name the commit that loads them."""
    from safetensors.torch import load_file, save_file
    model = toy_model(class_direction_head=True)
    model.save_pretrained(tmp_path / "encoder")
    weights = load_file(tmp_path / "encoder" / "model.safetensors")
    for name in ("encoder.class_tokens", "heads.class_presence_head.weight", "heads.class_presence_head.bias"):
        del weights[name]
    rows = outputs_per_class * len(CLASS_NAMES)
    weights["heads.class_direction_head.weight"] = torch.zeros(rows, model.encoder.config.embed_dim)
    weights["heads.class_direction_head.bias"] = torch.zeros(rows)
    save_file(weights, tmp_path / "encoder" / "model.safetensors")
    with pytest.raises(ValueError, match=message):
        SpatialEncoderModel.from_pretrained(tmp_path / "encoder")


def test_elevation_is_decoded_as_the_posterior_mean():
    elevation = torch.full((1, ELEVATION_CLASSES), -1e4)
    elevation[0, 90 + 20] = elevation[0, 90 - 20] = 0.0  # equal modes at +-20 deg: the mean is 0
    logits = HeadLogits(classes=torch.zeros(1, 3), azimuth=torch.zeros(1, AZIMUTH_CLASSES), elevation=elevation,
                        distance=torch.zeros(1, DISTANCE_CLASSES))
    assert decode_logits(logits).elevation_deg.item() == 0.0
    elevation[0, 90 - 20] = math.log(3.0)  # weights 3 : 1 -> -20 * 3/4 + 20 * 1/4 = -10
    assert decode_logits(logits).elevation_deg.item() == -10.0


# --- encoder ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("num_channels", [2, 4])
def test_output_shapes_and_token_count(num_channels):
    model = toy_model(num_channels).eval()
    x = audio(3, num_channels, 16000)  # 101 frames
    encoded = model.encode(x)
    n_patches = (32 // 8) * math.ceil(101 / 4)
    assert encoded.tokens.shape == (3, 3 + n_patches, 32)
    assert model.encoder.config.num_tokens(101) == 3 + n_patches
    assert torch.equal(encoded.cls_class, encoded.tokens[:, 0])
    assert torch.equal(encoded.cls_doa, encoded.tokens[:, 1])
    assert torch.equal(encoded.cls_distance, encoded.tokens[:, 2])
    logits = model(x)
    assert logits.classes.shape == (3, 3)
    assert logits.azimuth.shape == (3, 360) and logits.elevation.shape == (3, 181)
    assert logits.distance.shape == (3, 21)


def test_variable_length_up_to_max_frames():
    model = toy_model().eval()
    for samples in (4000, 12345, 127 * 160):  # 26, 78 and 128 (= max_frames) frames
        frames = FEATURES.num_frames(samples)
        assert model.encode(audio(2, 2, samples)).tokens.shape[1] == model.encoder.config.num_tokens(frames)
    with pytest.raises(ValueError, match="max_frames"):
        model.encode(audio(1, 2, 128 * 160))  # 129 frames


def test_predict_gives_degrees_metres_and_labels():
    prediction = toy_model().eval().predict(audio(2, 2, 8000))
    assert prediction.class_probs.shape == (2, 3)
    assert ((prediction.azimuth_deg > -180) & (prediction.azimuth_deg <= 180)).all()
    assert ((prediction.elevation_deg >= -90) & (prediction.elevation_deg <= 90)).all()
    assert (prediction.distance_m % 0.5 == 0).all()
    assert len(prediction.labels) == 2 and all(set(row) <= set(CLASS_NAMES) for row in prediction.labels)


def test_training_steps_reduce_the_loss_on_a_fixed_batch():
    model = toy_model(class_direction_head=False).train()  # BAT's four heads
    x = audio(4, 2, 8000)
    targets = EncoderTargets(classes=torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0]]),
                             azimuth=torch.tensor([0, 90, 270, IGNORE_INDEX]),
                             elevation=torch.tensor([90, 100, 80, IGNORE_INDEX]),
                             distance=torch.tensor([2, 4, 20, IGNORE_INDEX]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    weights = LossWeights(classes=1.0, azimuth=1.0, elevation=1.0, distance=1.0)
    losses = []
    for _ in range(6):
        loss, terms = multitask_loss(model(x), targets, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert set(terms) == {"classes", "azimuth", "elevation", "distance"}
    assert losses[-1] < losses[0]


def test_loss_ignores_scenes_without_a_source():
    model = toy_model(class_direction_head=False)
    logits = model(audio(2, 2, 8000))
    none = torch.full((2,), IGNORE_INDEX)
    loss, terms = multitask_loss(logits, EncoderTargets(torch.zeros(2, 3), none, none, none))
    assert terms["azimuth"] == terms["elevation"] == terms["distance"] == 0
    loss.backward()  # still a graph: the class term
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="classes"):
        LossWeights(classes=-1.0)


def test_save_load_round_trip(tmp_path):
    model = toy_model(num_channels=4)
    model.train()
    model(audio(4, 4, 8000))  # move the BatchNorm running statistics off their defaults
    model.eval()
    x = audio(2, 4, 9000, seed=3)
    model.save_pretrained(tmp_path / "encoder")
    assert {p.name for p in (tmp_path / "encoder").iterdir()} == {"config.json", "model.safetensors"}
    loaded = SpatialEncoderModel.from_pretrained(tmp_path / "encoder")
    assert not loaded.training and loaded.class_names == CLASS_NAMES
    with torch.no_grad():
        a, b = model(x), loaded(x)
        assert torch.equal(model.encode(x).tokens, loaded.encode(x).tokens)
    for name in ("classes", "azimuth", "elevation", "distance"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    with pytest.raises(FileNotFoundError):
        SpatialEncoderModel.from_pretrained(tmp_path / "missing")


@pytest.mark.parametrize("field, value", [
    ("num_planes", 0), ("patch_size", (5, 4)), ("patch_size", 16), ("num_heads", 5), ("dropout", 1.0),
    ("mlp_ratio", 0.0), ("max_frames", 0), ("class_direction_head", "yes"),
])
def test_encoder_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        EncoderConfig(**{"num_planes": 4, "num_classes": 3, "n_mels": 32, "embed_dim": 32, "num_heads": 4,
                         field: value})


def test_model_checks_features_against_encoder():
    with pytest.raises(ValueError, match="num_planes"):
        SpatialEncoderModel(FEATURES, EncoderConfig.tiny(4, 3, n_mels=32), num_channels=4)
    with pytest.raises(ValueError, match="n_mels"):
        SpatialEncoderModel(FEATURES, EncoderConfig.tiny(4, 3, n_mels=64), num_channels=2)
    with pytest.raises(ValueError, match="class_names"):
        SpatialEncoderModel(FEATURES, EncoderConfig.tiny(4, 2, n_mels=32), 2, CLASS_NAMES)
    encoder = SpatialEncoder(EncoderConfig.tiny(4, 3, n_mels=32))
    with pytest.raises(ValueError, match="num_planes=4"):
        encoder(torch.zeros(1, 16, 32, 50))


def test_presets():
    tiny, base = EncoderConfig.tiny(4, 10), EncoderConfig.vit_base(4, 10)
    assert (tiny.embed_dim, tiny.depth, tiny.num_heads) == (128, 4, 4)
    assert (base.embed_dim, base.depth, base.num_heads, base.patch_size) == (768, 12, 12, (16, 16))
    assert base.num_tokens(1024) == 3 + 512  # Spatial-AST's sequence at 1024 frames
    assert EncoderConfig.from_dict(tiny.to_dict()) == tiny
