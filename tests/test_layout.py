"""Block floorplan (accelerator card ``layout``): thermal crosstalk across blocks by distance and
the floorplan's area (docs/physics.md#layout). References by hand: the distance-decay value
factor·exp(−(d − pitch)/decay_length) of two heaters on different blocks, d from the grid
origins and the local heater positions; rows·columns·pitch² for the area."""
import math

import pytest
import torch

from photonic_sim.accelerators import estimate, load_accelerator_card
from photonic_sim.accelerators.cards import CardError
from photonic_sim.accelerators.layout import block_origins, floorplan_area, heater_positions, layout_crosstalk
from photonic_sim.cores.photonic import DenseONN
from photonic_sim.cores.spec import NetworkSpec, dense
from photonic_sim.devices import crosstalk_from_card, load_device_card

PITCH = 1.2e-3  # an 8×8 SVD block spans 0.925 mm × 0.3 mm at 50 µm mzi_pitch
DEV = load_device_card("silicon_thermo_optic", overrides={"crosstalk.model": "distance"})


def acc(**extra):
    return load_accelerator_card("dense_onn", overrides={"layout.block_pitch": PITCH, **extra})


def local_positions():
    net = DenseONN(NetworkSpec("one", (dense(8, 8),)))
    return net.block.positions() * DEV.waveguide.mzi_pitch


def test_origins_row_major_grid():
    o = block_origins(acc(), 5)  # ⌈√5⌉ = 3 columns
    expect = [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)]
    assert o.tolist() == [[c * PITCH, r * PITCH] for c, r in expect]
    assert block_origins(acc(**{"layout.columns": 1}), 3)[:, 0].tolist() == [0.0, 0.0, 0.0]


def test_two_heaters_on_different_blocks_couple_by_distance_decay():
    local = local_positions()
    bp = local.shape[0]
    o = block_origins(acc(), 2)
    k = layout_crosstalk(local, o, DEV, cutoff=0.0).to_dense()
    f, dl, p = DEV.crosstalk.factor, DEV.crosstalk.decay_length, DEV.waveguide.mzi_pitch
    # the right-most heater of block 0 and the left-most of block 1
    i = int(torch.argmax(local[:, 0]))
    j = int(torch.argmin(local[:, 0]))
    (xi, yi), (xj, yj) = local[i].tolist(), local[j].tolist()
    d = math.hypot(PITCH + xj - xi, yj - yi)
    assert k[i, bp + j].item() == pytest.approx(f * math.exp(-(d - p) / dl), rel=1e-12)
    assert k[bp + j, i].item() == pytest.approx(f * math.exp(-(d - p) / dl), rel=1e-12)
    # within a block: the block-local matrix of the device card
    torch.testing.assert_close(k[:bp, :bp], crosstalk_from_card(local, DEV), rtol=0, atol=0)
    assert k[:bp, bp:].abs().sum() > 0  # blocks are no longer thermally isolated


def test_cutoff_keeps_the_matrix_sparse():
    local = local_positions()
    o = block_origins(acc(), 4)
    full = layout_crosstalk(local, o, DEV, cutoff=0.0).to_dense()
    cut = layout_crosstalk(local, o, DEV, cutoff=1e-6)
    assert cut.is_sparse and cut._nnz() < (full != 0).sum()
    kept = full >= 1e-6 * DEV.crosstalk.factor
    assert torch.equal(cut.to_dense(), torch.where(kept, full, torch.zeros_like(full)))


def test_overlapping_blocks_refused():
    with pytest.raises(ValueError, match=r"layout\.block_pitch: blocks overlap"):
        layout_crosstalk(local_positions(), block_origins(acc(**{"layout.block_pitch": 500e-6}), 2), DEV)


def test_heater_positions_block_by_block():
    local = torch.tensor([[0.0, 0.0], [1e-5, 2e-5]], dtype=torch.float64)
    pos = heater_positions(local, block_origins(acc(), 2))
    assert pos.tolist() == [[0.0, 0.0], [1e-5, 2e-5], [PITCH, 0.0], [PITCH + 1e-5, 2e-5]]


def test_area_from_the_floorplan():
    assert floorplan_area(acc(), 5) == pytest.approx(6 * PITCH**2, rel=1e-15)  # 2 rows × 3 columns
    rep = estimate(acc(), "hjb20", DEV)
    n = rep.counts["blocks"]
    cols = math.ceil(math.sqrt(n))
    assert rep.area_m2["blocks_floorplan"] == pytest.approx(-(-n // cols) * cols * PITCH**2, rel=1e-15)
    assert "phase_shifters" not in rep.area_m2
    assert "phase_shifters" in estimate("dense_onn", "hjb20", DEV).area_m2  # no layout: device sums


@pytest.mark.parametrize("override", [{"layout.block_pitch": 0.0}, {"layout.columns": 0}])
def test_layout_ranges_checked(override):
    with pytest.raises(CardError, match=r"layout\.(block_pitch|columns): .*allowed"):
        load_accelerator_card("dense_onn", overrides=override)


def test_chip_with_a_floorplan_couples_heaters_across_blocks():
    """A two-block dense chip given block origins: realised = h + h·Kᵀ + bias with K over all
    heaters (h: the heater phases, from the same chip without crosstalk, no bias, no γ error),
    and a block's phases now move when only the other block is reprogrammed."""
    from photonic_sim.chip import Chip

    quiet = {"crosstalk.model": "distance", "crosstalk.decay_length": 1e-4, "phase_shifter.bias_range": 0.0,
             "phase_shifter.gamma_noise_std": 0.0}
    dev = load_device_card("silicon_thermo_optic", overrides=quiet)
    net = DenseONN(NetworkSpec("two", (dense(16, 8),)))
    assert net.num_blocks == 2
    origins = block_origins(acc(), 2)
    chip = Chip(net, dev, seed=1, dtype=torch.float64)
    chip._build_static(1, False, origins)  # the layout hook (Chip has no layout argument yet)
    bare = Chip(net, load_device_card("silicon_thermo_optic", overrides={**quiet, "crosstalk.factor": 0.0}),
                seed=1, dtype=torch.float64)
    ph = net.init_phases(torch.Generator().manual_seed(0))[None]
    span = chip._block_span
    h = bare._realise(ph, False)[:, :span]
    k = layout_crosstalk(net.block.positions() * dev.waveguide.mzi_pitch, origins, dev).to_dense()
    torch.testing.assert_close(chip._realise(ph, False)[:, :span], h + h @ k.T, rtol=0, atol=1e-12)
    bp = net.block.num_phases
    other = ph.clone()
    other[0, bp:span] = 0.0  # block 1 switched off: block 0 cools by the cross-block terms
    moved = (chip._realise(ph, False) - chip._realise(other, False))[0, :bp]
    torch.testing.assert_close(moved, (h[0, bp:] @ k[:bp, bp:].T), rtol=0, atol=1e-12)
    assert moved.abs().max() > 1e-4


def test_builder_places_the_blocks_of_a_scenario_with_a_layout():
    """A scenario whose accelerator card has a ``layout`` builds its chip on that floorplan
    (distance-decay crosstalk): with a pitch so large that no coupling between blocks survives
    the cutoff, the realised phases equal the thermally isolated chip's up to the couplings the
    cutoff drops (1e-6 of the factor; measured 1.2e-7 rad); at a 1 mm pitch the neighbours'
    heaters add up to 0.017 rad (measured); no layout, no change."""
    from photonic_sim import Experiment

    def realised(*sets):
        exp = Experiment.from_file("quickstart", ["training.steps=1", "devices.crosstalk.model=distance", *sets])
        return exp.layout, exp.chip._realise(exp.params[None].to(torch.float64), False)[0]

    none, plain = realised()
    assert none is None
    far_origins, far = realised("accelerator.layout.block_pitch=0.05")
    near_origins, near = realised("accelerator.layout.block_pitch=0.001")
    assert far_origins.shape == near_origins.shape == (24, 2)
    assert torch.allclose(far, plain, rtol=0, atol=1e-6)
    assert float((near - plain).abs().max()) > 1e-3


def test_overlapping_floorplan_is_refused_at_load():
    from photonic_sim.scenarios import ScenarioError, load_scenario

    with pytest.raises(ScenarioError) as exc:
        load_scenario("quickstart", ["accelerator.layout.block_pitch=0.0003"])
    assert exc.value.key == "overrides.accelerator.layout.block_pitch" and "overlap" in str(exc.value)
