"""The image-source engine against pyroomacoustics, closed forms and physics."""

import math

import numpy as np
import pyroomacoustics as pra
import pytest
import scipy.linalg
import scipy.signal
import torch

from spatial_alm.acoustics import ism, make_array, simulate_brir, simulate_rir
from spatial_alm.acoustics.diffuse import mixing_matrices
from spatial_alm.acoustics.heads import SofaHead, SphereHead
from spatial_alm.acoustics.room import absorption_area_m2, critical_distance_m, sabine_absorption, sabine_rt60
from spatial_alm.coordinates import SPEED_OF_SOUND_M_S as C

FS = 16000


def random_rooms(num_rooms, seed, rt60_range=(0.15, 0.4), num_mics=2):
    """Rooms 3-8 x 3-8 x 2.5-4 m with sources and mics at least 0.5 m from every wall."""
    gen = torch.Generator().manual_seed(seed)
    room = torch.rand(num_rooms, 3, generator=gen, dtype=torch.float64) * torch.tensor([5, 5, 1.5])
    room += torch.tensor([3, 3, 2.5])
    src = torch.rand(num_rooms, 1, 3, generator=gen, dtype=torch.float64) * (room[:, None] - 1) + 0.5
    mic = torch.rand(num_rooms, num_mics, 3, generator=gen, dtype=torch.float64) * (room[:, None] - 1) + 0.5
    rt60 = torch.rand(num_rooms, generator=gen, dtype=torch.float64) * (rt60_range[1] - rt60_range[0]) + rt60_range[0]
    return room, src, mic, rt60


def schroeder_t30(h: torch.Tensor, fs: int) -> float:
    """RT60 from the -5..-35 dB slope of the Schroeder energy decay curve (ISO 3382 T30)."""
    energy = torch.flip(torch.cumsum(torch.flip(h.double() ** 2, [-1]), -1), [-1])
    edc = 10 * torch.log10(energy / energy[0])
    t = torch.arange(h.numel(), dtype=torch.float64) / fs
    sel = (edc <= -5) & (edc >= -35)
    slope = np.polyfit(t[sel].numpy(), edc[sel].numpy(), 1)[0]
    return -60.0 / slope


def test_image_lattice_counts_match_octahedral_numbers():
    for k in (0, 1, 2, 5, 17):
        # number of integer points with |i| + |j| + |k| <= K
        assert ism.image_lattice(k).shape[0] == (2 * k + 1) * (2 * k * k + 2 * k + 3) // 3


def test_first_order_images_closed_form():
    room = torch.tensor([[4.0, 5.0, 3.0]], dtype=torch.float64)
    src = torch.tensor([[[1.0, 2.0, 1.5]]], dtype=torch.float64)
    lattice = ism.image_lattice(1)
    pos = ism.image_positions(room, src, lattice)[0, 0]
    expected = {(-1, 0, 0): [-1.0, 2, 1.5], (1, 0, 0): [7.0, 2, 1.5], (0, -1, 0): [1, -2.0, 1.5],
                (0, 1, 0): [1, 8.0, 1.5], (0, 0, -1): [1, 2, -1.5], (0, 0, 1): [1, 2, 4.5], (0, 0, 0): [1, 2, 1.5]}
    for idx, p in zip(lattice.tolist(), pos.tolist()):
        assert p == pytest.approx(expected[tuple(idx)])
    beta = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], dtype=torch.float64)
    gains = ism.reflection_gains(beta, lattice)[0]
    wall_of = {(-1, 0, 0): 0.1, (1, 0, 0): 0.2, (0, -1, 0): 0.3, (0, 1, 0): 0.4, (0, 0, -1): 0.5, (0, 0, 1): 0.6,
               (0, 0, 0): 1}
    for idx, g in zip(lattice.tolist(), gains.tolist()):
        assert g == pytest.approx(wall_of[tuple(idx)])


def test_sabine_conversion_matches_pyroomacoustics_and_closed_form():
    room = torch.tensor([[6.0, 5.0, 3.0], [10.0, 8.0, 4.0]], dtype=torch.float64)
    rt60 = torch.tensor([0.6, 1.1], dtype=torch.float64)
    alpha = sabine_absorption(rt60, room)
    for b in range(2):
        ref, _ = pra.inverse_sabine(rt60[b].item(), room[b].tolist(), c=C)
        assert alpha[b].tolist() == pytest.approx([ref] * 6)
    # Sabine closed form: RT60 = 0.161 V / (S alpha) with 0.161 = 24 ln 10 / 343
    assert sabine_rt60(alpha, room).tolist() == pytest.approx(rt60.tolist())
    assert 24 * math.log(10) / C == pytest.approx(0.1611, abs=1e-4)


def test_matches_pyroomacoustics_on_random_rooms():
    """>= 20 rooms at full order: NCC of the first 50 ms >= 0.98, energy within 10 %, direct path."""
    room, src, mic, rt60 = random_rooms(20, seed=0)
    orders = [pra.inverse_sabine(r, d, c=C)[1] for r, d in zip(rt60.tolist(), room.tolist())]
    for b in range(20):  # full order per room (pyroomacoustics' own rule), same order for both
        sl = slice(b, b + 1)
        ours = simulate_rir(room[sl], rt60[sl], src[sl], mic[sl], FS, max_order=orders[b])[0, 0]
        ref = simulate_rir(room[sl], rt60[sl], src[sl], mic[sl], FS, max_order=orders[b],
                           backend="pyroomacoustics")[0, 0]
        # the reference itself: pyroomacoustics RIR with its 40-sample offset removed, scaled by 1/(4 pi)
        n = min(ours.shape[-1], ref.shape[-1])
        images = ism.image_positions(room[sl], src[sl], ism.image_lattice(1))[0, 0]  # (7, 3), [0] = source
        for m in range(2):
            dist = torch.linalg.vector_norm(src[b, 0] - mic[b, m]).item()
            direct = dist / C * FS
            first_reflection = torch.linalg.vector_norm(images[1:] - mic[b, m], dim=-1).min().item() / C * FS
            before_reflections = int((direct + first_reflection) / 2)  # the direct pulse's peak is before this
            assert abs(ours[m, :before_reflections].abs().argmax().item() - direct) <= 1.0
            start = int(direct)
            win = slice(start, start + int(0.05 * FS))
            a, r = ours[m, win].double(), ref[m, win].double()
            assert (a @ r / (a.norm() * r.norm())).item() >= 0.98
            energy_ratio = (ours[m, :n].double() ** 2).sum() / (ref[m, :n].double() ** 2).sum()
            assert abs(energy_ratio.item() - 1) <= 0.10


def test_direct_path_delay_and_amplitude_closed_form():
    room = torch.tensor([[8.0, 6.0, 3.0]])
    src = torch.tensor([[[1.3, 2.1, 1.2]]])
    mic = torch.tensor([[[6.1, 3.7, 1.6]]])
    h = simulate_rir(room, torch.tensor([0.5]), src, mic, FS, max_order=0)[0, 0, 0].double()
    dist = torch.linalg.vector_norm(src - mic).item()
    delay = dist / C * FS
    # band-limited pulse at the fractional delay: its peak sample and the sinc-interpolated peak value
    n = torch.arange(h.numel(), dtype=torch.float64)
    assert abs(h.abs().argmax().item() - delay) <= 1.0
    # projection onto the ideal sinc; the 81-tap Hann window keeps it within 1 %
    assert (h @ torch.sinc(n - delay)).item() == pytest.approx(1 / (4 * math.pi * dist), rel=1e-2)


def test_batched_equals_one_room_at_a_time():
    room, src, mic, rt60 = random_rooms(3, seed=1)
    batched = simulate_rir(room, rt60, src, mic, FS, max_order=6, tmax=0.2)
    for b in range(3):
        sl = slice(b, b + 1)
        single = simulate_rir(room[sl], rt60[sl], src[sl], mic[sl], FS, max_order=6, tmax=0.2)
        torch.testing.assert_close(batched[b : b + 1], single, atol=1e-7, rtol=1e-5)


def test_diffuse_tail_rt60_follows_target():
    """Schroeder T30 of the full response (ISM + tail) within 10 % of the target, RT60 0.2-1.2 s."""
    room, src, mic, _ = random_rooms(12, seed=2, num_mics=1)
    rt60 = torch.linspace(0.2, 1.2, 12, dtype=torch.float64)
    h = simulate_rir(room, rt60, src, mic, FS, tdiff="auto", seed=0)
    for b in range(12):
        measured = schroeder_t30(h[b, 0, 0], FS)
        assert measured == pytest.approx(rt60[b].item(), rel=0.10), (b, measured, rt60[b].item())


def test_diffuse_tail_continues_ism_energy():
    room, src, mic, rt60 = random_rooms(8, seed=3, rt60_range=(0.5, 0.9), num_mics=1)
    tdiff = 0.08
    h = simulate_rir(room, rt60, src, mic, FS, tdiff=tdiff, seed=0)[:, 0, 0].double()
    reference = simulate_rir(room, rt60, src, mic, FS, tmax=tdiff + 0.03)[:, 0, 0].double()
    # before tdiff both are the same image sources (but for the pre-ringing of images culled after it)
    before = slice(int((tdiff - 0.02) * FS), int(tdiff * FS) - ism.FRACTIONAL_DELAY_TAPS // 2)
    after = slice(int(tdiff * FS), int((tdiff + 0.02) * FS))
    # the full image-source model just after tdiff has (within 2.5 dB) the tail's energy
    ratio_db = 10 * torch.log10((h[:, after] ** 2).sum() / (reference[:, after] ** 2).sum())
    assert abs(ratio_db.item()) < 2.5
    torch.testing.assert_close(h[:, before], reference[:, before], atol=1e-6, rtol=0)


def test_critical_distance_closed_form():
    # 5 x 4 x 3 m, RT60 0.5 s: A = 24 ln(10) 60 / (343 * 0.5) = 19.334 m^2, sqrt(A / (16 pi)) = 0.6202 m
    assert absorption_area_m2((5.0, 4.0, 3.0), 0.5) == pytest.approx(19.334, abs=1e-3)
    assert critical_distance_m((5.0, 4.0, 3.0), 0.5) == pytest.approx(0.6202, abs=1e-4)
    assert critical_distance_m((5.0, 4.0, 3.0), 0.5) == pytest.approx(0.057 * math.sqrt(60.0 / 0.5), rel=0.01)
    with pytest.raises(ValueError, match="RT60 must be > 0"):
        critical_distance_m((5.0, 4.0, 3.0), 0.0)
    with pytest.raises(ValueError, match="RT60 must be > 0"):
        absorption_area_m2((5.0, 4.0, 3.0), -0.2)


@pytest.mark.parametrize("room_dim, rt60", [((6.0, 5.0, 3.0), 0.6), ((8.0, 6.0, 3.5), 0.4), ((4.5, 3.5, 2.8), 0.3),
                                            ((7.0, 4.0, 3.0), 0.8)])
def test_engine_direct_to_reverberant_ratio_at_the_critical_distance(room_dim, rt60):
    """The rendered response (image sources + diffuse tail, as datasets render it) has its direct sound (+-1 ms)
    about as strong as the rest at the critical distance (within 3 dB of 0 dB) and 6 dB weaker relative to the
    rest at twice that distance (direct energy falls as 1 / r^2, the reverberant field stays)."""
    critical = critical_distance_m(room_dim, rt60)
    drr_db = []
    for k in (1.0, 2.0):
        src = [room_dim[0] / 2 - 0.7, room_dim[1] / 2 - 0.3, 1.4]
        mic = [src[0] + 0.8 * k * critical, src[1] + 0.6 * k * critical, 1.4]
        h = simulate_rir(torch.tensor([room_dim]), torch.tensor([rt60]), torch.tensor([[src]]), torch.tensor([[mic]]),
                         FS, tdiff="auto", seed=0)[0, 0, 0].double()
        peak, half = round(k * critical / C * FS), FS // 1000
        direct = (h[peak - half:peak + half + 1] ** 2).sum()
        drr_db.append(10 * math.log10(direct / ((h ** 2).sum() - direct)))
    assert abs(drr_db[0]) < 3.0
    assert drr_db[0] - drr_db[1] == pytest.approx(20 * math.log10(2.0), abs=1.0)


def _tail_coherence(h: torch.Tensor, start: int, nperseg: int = 256):
    """Complex coherence (F,) of channels 0 and 1 of (B, 2, T), pooled over rooms after ``start``."""
    x = h[:, 0, start:].double().numpy()
    y = h[:, 1, start:].double().numpy()
    # whiten the decay: divide by the smoothed envelope common to both channels
    env = np.sqrt(scipy.signal.convolve(x**2 + y**2, np.ones((1, 401)) / 401, mode="same")) + 1e-12
    x, y = x / env, y / env
    f, sxy = scipy.signal.csd(x, y, fs=FS, nperseg=nperseg, axis=-1)
    _, sxx = scipy.signal.welch(x, fs=FS, nperseg=nperseg, axis=-1)
    _, syy = scipy.signal.welch(y, fs=FS, nperseg=nperseg, axis=-1)
    return f, sxy.mean(0) / np.sqrt(sxx.mean(0) * syy.mean(0))


@pytest.mark.parametrize("spacing_m", [0.05, 0.2])
def test_tail_coherence_of_omni_pair_is_sinc(spacing_m):
    room, src, centre, _ = random_rooms(16, seed=4, num_mics=1)
    mic = make_array("pair", spacing_m=spacing_m).positions(centre[:, 0])
    rt60 = torch.full((16,), 1.0, dtype=torch.float64)
    h = simulate_rir(room, rt60, src, mic, FS, tdiff=0.06, seed=0)[:, 0]
    f, coh = _tail_coherence(h, int(0.1 * FS))
    model = np.sinc(2 * f * spacing_m / C)
    assert np.abs(coh.real - model).mean() < 0.05
    assert np.abs(coh.real - model).max() < 0.15


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # sqrtm of the singular cases is exact
@pytest.mark.parametrize("num_ch", [2, 3])
def test_mixing_matrices_are_the_hermitian_square_roots(num_ch):
    # full-rank, rank-one and zero Hermitian PSD matrices against scipy's matrix square root
    rng = np.random.default_rng(0)
    factors = rng.standard_normal((6, num_ch, num_ch)) + 1j * rng.standard_normal((6, num_ch, num_ch))
    factors[3:5, :, 1:] = 0  # rank one
    factors[5] = 0
    csd = factors @ factors.conj().transpose(0, 2, 1)
    roots = mixing_matrices(torch.from_numpy(csd)).numpy()
    for root, matrix in zip(roots, csd):
        np.testing.assert_allclose(root, scipy.linalg.sqrtm(matrix), atol=1e-6)
        np.testing.assert_allclose(root @ root.conj().T, matrix, atol=1e-9)


def test_tail_coherence_of_a_mixed_batch_of_three_mic_arrays():
    # more than two channels take the eigendecomposition path: each room keeps its own array's coherence
    room, src, centre, _ = random_rooms(24, seed=7, num_mics=1)
    mic = torch.cat([make_array("linear", num_mics=3, spacing_m=spacing_m).positions(centre[rows, 0])
                     for rows, spacing_m in ((slice(0, 12), 0.05), (slice(12, 24), 0.2))])
    rt60 = torch.full((24,), 1.0, dtype=torch.float64)
    h = simulate_rir(room, rt60, src, mic, FS, tdiff=0.06, seed=0)[:, 0]
    for rows, spacing_m in ((slice(0, 12), 0.05), (slice(12, 24), 0.2)):
        f, coh = _tail_coherence(h[rows][:, [0, 2]], int(0.1 * FS))
        assert np.abs(coh.real - np.sinc(2 * f * 2 * spacing_m / C)).mean() < 0.05


def test_tail_coherence_follows_each_rooms_own_array_in_a_mixed_batch():
    # rooms with different microphone spacings in one batch: each keeps its own diffuse coherence
    room, src, centre, _ = random_rooms(32, seed=6, num_mics=1)
    mic = torch.cat([make_array("pair", spacing_m=0.05).positions(centre[:16, 0]),
                     make_array("pair", spacing_m=0.2).positions(centre[16:, 0])])
    rt60 = torch.full((32,), 1.0, dtype=torch.float64)
    h = simulate_rir(room, rt60, src, mic, FS, tdiff=0.06, seed=0)[:, 0]
    for rows, spacing_m in ((slice(0, 16), 0.05), (slice(16, 32), 0.2)):
        f, coh = _tail_coherence(h[rows], int(0.1 * FS))
        assert np.abs(coh.real - np.sinc(2 * f * spacing_m / C)).mean() < 0.05


def test_tail_coherence_of_head_follows_head_model():
    head = SphereHead()
    room, src, centre, _ = random_rooms(12, seed=5, num_mics=1)
    rt60 = torch.full((12,), 1.0, dtype=torch.float64)
    h = simulate_brir(room, rt60, src, centre[:, 0], FS, head=head, tdiff=0.06, seed=0)[:, 0]
    f, coh = _tail_coherence(h, int(0.1 * FS))
    csd = head.diffuse_csd(FS, 256)
    model = (csd[:, 0, 1] / torch.sqrt(csd[:, 0, 0].real * csd[:, 1, 1].real)).numpy()
    assert np.abs(coh.real - model.real).mean() < 0.05
    assert np.abs(coh - model).max() < 0.2


def _lateral_pair(num_rooms=2):
    """Head at the room centre looking along +x; one source 1.5 m to the left (+y), one to the right."""
    room = torch.tensor([[6.0, 5.0, 3.0]] * num_rooms, dtype=torch.float64)
    head = torch.tensor([[3.0, 2.5, 1.5]] * num_rooms, dtype=torch.float64)
    src = head[:, None] + torch.tensor([[[0.0, 1.5, 0.0]], [[0.0, -1.5, 0.0]]], dtype=torch.float64)
    return room, src, head


@pytest.mark.parametrize("head_name", ["sphere", "mit_kemar_normal_pinna.sofa", "FHK_HRIR_L2354.sofa"])
def test_binaural_left_source_louder_and_earlier_in_left_ear(head_name, shared_data):
    head = SphereHead() if head_name == "sphere" else SofaHead(shared_data / "hrtf" / head_name)
    room, src, centre = _lateral_pair()
    h = simulate_brir(room, torch.tensor([0.4, 0.4]), src, centre, FS, head=head, tdiff=0.05, seed=0)[:, 0]
    direct = slice(0, int((1.5 / C + 0.003) * FS))  # direct sound only: before the first reflection
    for b, louder in ((0, 0), (1, 1)):
        left, right = h[b, 0, direct], h[b, 1, direct]
        level = [(x.double() ** 2).sum().item() for x in (left, right)]
        onset = [int((x.abs() > 0.3 * x.abs().max()).nonzero()[0]) for x in (left, right)]
        assert level[louder] > 2 * level[1 - louder]
        assert onset[louder] < onset[1 - louder]


def test_head_yaw_turns_the_scene():
    """A source in front of a head turned 90 degrees to the right is on its left."""
    room = torch.tensor([[6.0, 5.0, 3.0]], dtype=torch.float64)
    head_pos = torch.tensor([[3.0, 2.5, 1.5]], dtype=torch.float64)
    src = torch.tensor([[[4.5, 2.5, 1.5]]], dtype=torch.float64)  # room +x of the head
    h = simulate_brir(room, torch.tensor([0.3]), src, head_pos, FS, head=SphereHead(), head_yaw_deg=-90.0, max_order=0)
    left, right = h[0, 0, 0], h[0, 0, 1]
    assert (left**2).sum() > 2 * (right**2).sum()


def test_array_geometries():
    tetra = make_array("tetrahedral")
    assert torch.linalg.vector_norm(tetra.offsets_m, dim=-1).tolist() == pytest.approx([0.042] * 4)
    assert torch.pdist(tetra.offsets_m).tolist() == pytest.approx([0.042 * math.sqrt(8 / 3)] * 6, rel=1e-3)
    circ = make_array("circular", num_mics=6, radius_m=0.05)
    assert torch.pdist(circ.offsets_m).min().item() == pytest.approx(0.05)
    pos = make_array("pair", spacing_m=0.2).positions(torch.tensor([[2.0, 2.0, 1.0]]), yaw_deg=90.0)
    # yaw 90: the listener looks along room +y, so its left ear points along room -x
    assert pos[0, 0].tolist() == pytest.approx([1.9, 2.0, 1.0])
    assert make_array(circ.name).offsets_m.shape == (6, 3)  # names round-trip
    with pytest.raises(ValueError, match="allowed"):
        make_array("spiral")


def test_array_interchannel_delay_matches_direction():
    """Direct-path TDOA on a pair equals d sin(azimuth) / c for a far source."""
    room = torch.tensor([[20.0, 20.0, 5.0]], dtype=torch.float64)
    centre = torch.tensor([[10.0, 10.0, 2.0]], dtype=torch.float64)
    mic = make_array("pair", spacing_m=0.3).positions(centre)
    az = math.radians(40)
    src = centre[:, None] + 6 * torch.tensor([[[math.cos(az), math.sin(az), 0.0]]], dtype=torch.float64)
    h = simulate_rir(room, None, src, mic, 48000, absorption=torch.ones(1, 6), max_order=0)[0, 0].double()
    corr = np.correlate(h[1].numpy(), h[0].numpy(), mode="full")
    lag = (np.argmax(corr) - (h.shape[-1] - 1)) / 48000  # right minus left arrival
    expected = 0.3 * math.sin(az) / C * (1 - 0.0)  # plane-wave approximation at 6 m
    assert lag == pytest.approx(expected, abs=1.5 / 48000)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(src_pos=[[[7.0, 1.0, 1.0]]]), r"src_pos\[0, 0\].*outside"),
        (dict(mic_pos=[[[1.0, 1.0, -0.5]]]), r"mic_pos\[0, 0\].*outside"),
        (dict(room_dim=[[6.0, 0.0, 3.0]]), r"room_dim\[0, 1\].*> 0"),
        (dict(rt60=[0.05]), r"rt60\[0\].*cannot be reached.*shortest RT60"),
        (dict(rt60=[-1.0]), r"rt60\[0\].*> 0"),
        (dict(rt60=[0.5, 0.5]), r"rt60 has batch size 2"),
        (dict(src_pos=[[1.0, 1.0, 1.0]]), r"src_pos must have shape \(B, S, 3\)"),
        (dict(mic_pos=[[1.0, 1.0]]), r"mic_pos must have shape \(B, M, 3\)"),
        (dict(backend="matlab"), r"backend.*allowed"),
        (dict(tdiff=-0.1), r"tdiff\[0\].*> 0"),
        (dict(tmax=0.001), r"tmax.*direct path"),
        (dict(rt60=None, absorption=[[0.2] * 5 + [1.5]]), r"absorption\[0, 5\] \(ceiling"),
        (dict(rt60=None, absorption=None), r"exactly one of rt60"),
        (dict(backend="pyroomacoustics", tdiff=0.05), r"tdiff is not supported"),
    ],
)
def test_bad_input_names_the_field(kwargs, match):
    args = dict(room_dim=[[6.0, 5.0, 3.0]], rt60=[0.5], src_pos=[[[1.0, 1.0, 1.0]]], mic_pos=[[[4.0, 3.0, 1.5]]], fs=FS)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate_rir(**args)


def test_large_room_short_rt60_is_an_error_not_nan():
    """gpuRIR's failure case (big room, short RT60) gives a clear error instead of NaN."""
    with pytest.raises(ValueError, match="cannot be reached"):
        simulate_rir([[30.0, 30.0, 10.0]], [0.1], [[[5.0, 5.0, 2.0]]], [[[20.0, 20.0, 2.0]]], FS, tdiff=0.05)


def test_seed_makes_tail_reproducible():
    room, src, mic, rt60 = random_rooms(2, seed=6)
    a = simulate_rir(room, rt60, src, mic, FS, tdiff=0.05, seed=7)
    b = simulate_rir(room, rt60, src, mic, FS, tdiff=0.05, seed=7)
    c = simulate_rir(room, rt60, src, mic, FS, tdiff=0.05, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gpurir_backend_when_installed():
    pytest.importorskip("gpuRIR", reason="gpuRIR is not on PyPI; optional backend not installed")
    room, src, mic, rt60 = random_rooms(2, seed=8)
    ours = simulate_rir(room, rt60, src, mic, FS, max_order=8, tmax=0.1)
    theirs = simulate_rir(room, rt60, src, mic, FS, max_order=8, tmax=0.1, backend="gpurir")
    a, b = ours.flatten().double(), theirs[..., : ours.shape[-1]].flatten().double()
    assert (a @ b / (a.norm() * b.norm())).item() > 0.9
