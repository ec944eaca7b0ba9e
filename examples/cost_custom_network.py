"""Price a network you defined: device counts, area, energy and latency on three accelerators.

    python examples/cost_custom_network.py
    PHOTONIC_SIM_QUICK=1 python examples/cost_custom_network.py   # CI quick mode (same, it is fast)

The network is an ordinary PyTorch module: a tensor-train photonic layer 256 → 64
(``photonic_sim.nn.TTPhotonicLinear``, modes (4, 8, 8) → (4, 4, 4), rank 3), a ReLU and an
``nn.Linear`` 64 → 10. ``photonic_sim.accelerators.estimate`` reads it by duck typing and
prices it on ``dense_onn``, ``tonn_space`` and ``tonn_time``. The counts are checked against
the formulas of ``photonic_sim.accelerators.mapping`` written out by hand below, and a 6-bit
ADC is checked to cost 2^(6−8) = 1/4 of the 8-bit ADC energy per conversion (Walden figure
of merit of the device card). The same network as a layer-list YAML priced by
``photonic-sim cost --model layers.yaml`` gives the same counts.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from pathlib import Path

import torch
from torch import nn

import photonic_sim.nn as pnn
from photonic_sim import cli
from photonic_sim.accelerators import estimate
from photonic_sim.devices.cards import load_device_card

K = 8  # block size of the shipped accelerator cards


class MyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = pnn.TTPhotonicLinear((4, 8, 8), (4, 4, 4), ranks=3, block_size=K)
        self.act = nn.ReLU()
        self.classifier = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.act(self.features(x)))


def blocks(rows: int, cols: int) -> int:
    return math.ceil(rows / K) * math.ceil(cols / K)


def svd_mzis(rows: int, cols: int) -> int:
    return rows * (rows - 1) // 2 + cols * (cols - 1) // 2 + min(rows, cols)


def main() -> None:
    net = MyNet()
    assert net(torch.rand(3, 256)).shape == (3, 10)  # it is a working model, not only a description

    # hardware matrices by hand: TT core k is (r_{k-1}·m_k) × (n_k·r_k), ranks (1, 3, 3, 1)
    cores = [(1 * 4, 4 * 3), (3 * 4, 8 * 3), (3 * 4, 8 * 1)]
    dense_layers = [(64, 256), (10, 64)]
    expected = {
        "dense_onn": sum(blocks(r, c) for r, c in dense_layers),
        "tonn_space": sum(blocks(r, c) for r, c in cores) + blocks(10, 64),
    }
    svd = {"dense_onn": sum(svd_mzis(r, c) for r, c in dense_layers),
           "tonn_space": sum(svd_mzis(r, c) for r, c in cores) + svd_mzis(10, 64)}
    for arch in ("dense_onn", "tonn_space", "tonn_time"):
        rep = estimate(arch, net)
        c = rep.counts
        b = expected.get(arch, c["blocks"])
        if arch == "tonn_time":
            assert c["logical_blocks"] == expected["tonn_space"]
        assert c["blocks"] == b and c["mzi_blocked"] == b * K * K, (arch, c)
        assert c["phase_shifters"] == b * (2 * K * K + K) and c["adcs"] == c["dacs"] == b * K, (arch, c)
        if arch in svd:
            assert c["mzi_svd"] == svd[arch], (arch, c["mzi_svd"], svd[arch])
        d = rep.to_dict()
        print(f"{arch:>10}: {c['blocks']:4d} blocks, {c['mzi_blocked']:6d} MZIs (blocked), "
              f"{c['mzi_svd']:6d} (SVD), area {d['area_mm2']['total']:8.2f} mm², "
              f"{rep.inference['energy_j'] * 1e6:9.3f} µJ and {rep.inference['latency_s'] * 1e6:7.3f} µs per inference")

    # converter energy follows the card's bits through the Walden figure of merit
    e8 = estimate("tonn_space", net, load_device_card("silicon_thermo_optic"))
    e6 = estimate("tonn_space", net, load_device_card("silicon_thermo_optic", {"adc.bits": 6}))
    ratio = e8.inference["breakdown"]["energy_j"]["adc"] / e6.inference["breakdown"]["energy_j"]["adc"]
    print(f"ADC energy per inference, 8 bit / 6 bit = {ratio:.6f} (Walden: 2^2 = 4)")
    assert abs(ratio - 4.0) < 1e-9, ratio

    # the same network as a layer list, through the command line
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mynet.yaml"
        path.write_text("layers:\n"
                        "  - {kind: tt, in_modes: [4, 8, 8], out_modes: [4, 4, 4], ranks: 3, activation: relu}\n"
                        "  - {kind: dense, in: 64, out: 10}\n")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # the command line's main(), in this process
            code = cli.main(["cost", "--accelerator", "tonn_space", "--model", str(path), "--json"])
    assert code == 0, code
    counts = json.loads(out.getvalue())["counts"]
    assert counts == estimate("tonn_space", net).counts, counts
    print("photonic-sim cost --model mynet.yaml: same counts as the nn.Module")


if __name__ == "__main__":
    main()
