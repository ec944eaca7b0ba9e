"""The chip backend protocol and the remote chip over TCP (photonic_sim.backend).

A scenario's chip served by `photonic-sim serve-chip` in its own process trains bit for bit as
the local chip; a server killed mid-run and restarted on the same port, or a connection dropped
after the server measured but before the reply arrived, resumes from the last acknowledged
state to the same final phases; garbage, oversized and ill-typed requests get error replies
and the server keeps serving; a lab's HardwareChip subclass is a backend that can be served;
a served chip calibrates (measure_block) bit for bit as the local chip, ledger included."""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from photonic_sim import Experiment
from photonic_sim.backend import (
    MAGIC,
    BackendError,
    ChipBackend,
    ChipServer,
    HardwareChip,
    RemoteChip,
    decode_value,
    recv_frame,
    send_frame,
)
from photonic_sim.chip import Chip
from photonic_sim.cli import main
from photonic_sim.scenarios import load_scenario
from photonic_sim.scenarios.serve import chip_server
from test_cli import REPO, TINY  # the tiny TT scenario: 4 steps of sign-RGE, q=4, batch 16


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("remote") / "tiny.yaml"
    path.write_text(TINY)
    return path


def start_server(path: Path, port: int = 0, wait: bool = True):
    """`photonic-sim serve-chip` in its own process; (process, address printed) or (process, None)."""
    proc = subprocess.Popen([sys.executable, "-m", "photonic_sim.cli", "serve-chip", str(path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    if not wait:
        return proc, None
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(180)
    match = re.search(r"tcp://127\.0\.0\.1:\d+", line[0] if line else "")
    if not match:
        proc.kill()
        raise AssertionError(f"serve-chip printed no address: {line}")
    return proc, match.group(0)


def stop(proc) -> None:
    proc.kill()
    proc.wait(30)


@pytest.fixture(scope="module")
def server(tiny):
    proc, address = start_server(tiny)
    yield address
    stop(proc)


@pytest.fixture(scope="module")
def local(tiny):
    """The uninterrupted local run every remote run is compared with."""
    return Experiment.from_file(tiny).run()


def same_run(remote, local) -> None:
    assert torch.equal(remote.phases, local.phases)
    assert remote.history == local.history  # losses, metrics, queries, energy at every step
    for key in ("ledger", "eval_ledger", "queries", "energy_j"):
        assert remote.report["training"][key] == local.report["training"][key], key
    assert remote.report["metrics"] == local.report["metrics"]


# ------------------------------------------------------------------ bit for bit
def test_served_chip_trains_bit_for_bit_as_the_local_chip(tiny, server, local):
    exp = Experiment.from_file(tiny, chip=server)
    remote = exp.run()
    assert isinstance(exp.chip, RemoteChip) and isinstance(exp.chip, ChipBackend)
    assert exp.chip.identity.startswith("tiny (seed 0, chip ")
    assert exp.chip.timing["settle_s"] == exp.device_card.phase_shifter.settle_time
    same_run(remote, local)
    assert remote.report["training"]["queries"] == 4 * 5  # 4 steps of q=4 one-sided (+ the centre)
    assert exp.chip.reconnects == 0 and exp.chip.elapsed_s > 0 and exp.chip.round_trip_s >= exp.chip.elapsed_s


def test_chip_identity_names_what_builds_the_chip(tiny):
    """The served identity changes with anything that changes the chip (here the simulated
    insertion loss) and not otherwise, so a client never resumes on another chip."""
    from photonic_sim.scenarios.serve import chip_identity

    def ident(*sets):
        return chip_identity(Experiment.from_scenario(load_scenario(tiny, list(sets))))

    base = ident()
    assert ident() == base
    assert ident("chip.insertion_loss=false") != base
    assert ident("seed=1") != base
    assert ident("training.steps=9") == base  # the recipe does not build the chip


def test_a_pinn_trains_bit_for_bit_through_a_served_chip():
    """The PDE path: float64 signals, coherent readout, exact converters, inputs in float64."""
    sets = ["training.steps=2", "training.eval_every=2", "training.checkpoint_every=0", "task.test_points=200"]
    scenario = load_scenario("black_scholes_tonn", sets)
    server = chip_server(scenario)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        local = Experiment.from_scenario(scenario).run()
        remote = Experiment.from_scenario(scenario, chip=server.address).run()
        same_run(remote, local)
    finally:
        server.close()


def test_cli_run_through_the_served_chip_writes_the_local_numbers(tiny, server, local, tmp_path, monkeypatch):
    render = importlib.import_module("photonic_sim.reports.render")  # the module, not the function so named
    monkeypatch.setattr(render, "make_figures", lambda *args: {})  # figures are not this test's subject (~10 s)
    assert main(["run", str(tiny), "--chip", server, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["metrics"]["final"] == local.report["metrics"]["final"]
    assert report["training"]["ledger"] == local.report["training"]["ledger"]


def test_a_run_interrupted_on_the_served_chip_resumes_from_its_checkpoint(tiny, server, local, tmp_path,
                                                                          monkeypatch):
    from photonic_sim.training import trainer as trainer_mod

    original = trainer_mod.Trainer._record

    def interrupt(self, row, t0):
        original(self, row, t0)
        if self.step == 3:  # the checkpoint of step 2 is on disk
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer_mod.Trainer, "_record", interrupt)
    with pytest.raises(KeyboardInterrupt):
        Experiment.from_file(tiny, chip=server).run(checkpoint_dir=tmp_path)
    monkeypatch.setattr(trainer_mod.Trainer, "_record", original)
    with RemoteChip(server) as other:  # the chip is used by someone else meanwhile
        other.measure(torch.zeros(2, 64), torch.zeros(other.num_phases, dtype=torch.float64))
    resumed = Experiment.from_file(tiny, chip=server).run(checkpoint_dir=tmp_path, resume=True)
    same_run(resumed, local)


def test_two_runs_sharing_one_served_chip_each_stay_bit_for_bit(tiny, server, local):
    """Two runs at once on one served chip: the second one's reset and measurements move the chip
    on under the first, whose next request is refused as stale; it reloads its acknowledged state
    and asks again (and so does the second)."""
    x = torch.rand(5, 64, generator=torch.Generator().manual_seed(3))
    alone_a, alone_b = Experiment.from_file(tiny).chip, Experiment.from_file(tiny).chip  # fresh local chips
    phases = alone_a.init_phases(torch.Generator().manual_seed(0))
    alone_b.init_phases(torch.Generator().manual_seed(0))
    a = RemoteChip(server)
    a.init_phases(torch.Generator().manual_seed(0))
    assert torch.equal(a.measure(x, phases), alone_a.measure(x, phases))
    with RemoteChip(server) as b:  # resets the chip under a
        b.init_phases(torch.Generator().manual_seed(0))
        assert torch.equal(b.measure(x, phases), alone_b.measure(x, phases))
        assert torch.equal(a.measure(x, phases), alone_a.measure(x, phases)) and a.reloads == 1
        assert torch.equal(b.measure(x, phases), alone_b.measure(x, phases)) and b.reloads == 1
    a.close()

    results, errors = {}, []  # and two whole runs in two threads

    def run(name):
        try:
            results[name] = Experiment.from_file(tiny, chip=server).run()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors and set(results) == {"a", "b"}
    for result in results.values():
        same_run(result, local)


def test_remote_chip_reads_what_the_chip_reads_and_refuses_autograd(server, tiny):
    exp = Experiment.from_file(tiny)
    chip = exp.chip
    with RemoteChip(server) as remote:
        assert torch.equal(remote.controls()["periods"].isnan(), chip.controls()["periods"].isnan())
        assert remote.controls()["slices"] == dict(chip.controls()["slices"])
        g_local, g_remote = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        phases = chip.init_phases(g_local)
        assert torch.equal(remote.init_phases(g_remote), phases)
        assert torch.equal(g_local.get_state(), g_remote.get_state())  # the generator moved on alike
        x = exp.task.data.x_train[:7]
        settings = phases + 0.1 * torch.randn(3, phases.numel(), generator=torch.Generator().manual_seed(1),
                                              dtype=torch.float64)
        for args in ((x, settings), (x, phases), (x[None].expand(3, -1, -1).contiguous(), settings)):
            assert torch.equal(remote.measure(*args), chip.measure(*args))
        assert remote.ledger.totals() == chip.ledger.totals()
        with pytest.raises(ValueError, match="differentiable"):
            remote.measure(x, phases, differentiable=True)
        with pytest.raises(BackendError, match="phases"):
            remote.measure(x, phases[:-1])


# ------------------------------------------------------------------ interrupted connections
class _KillOnce(RemoteChip):
    """A RemoteChip that calls ``on_kill`` once, right after its ``kill_after``-th measurement."""

    def __init__(self, address, kill_after, on_kill, **kwargs):
        self.kill_after, self.on_kill, self.measured = kill_after, on_kill, 0
        super().__init__(address, **kwargs)

    def measure(self, *args, **kwargs):
        out = super().measure(*args, **kwargs)
        self.measured += 1
        if self.measured == self.kill_after:
            self.on_kill()
        return out


def test_a_server_closed_mid_run_and_started_again_on_the_same_port_resumes_bit_for_bit(tiny, local):
    """In-process twin of the next test (seconds instead of two process starts): the first
    server closes after the 3rd measurement, a new one (a freshly built chip) comes up on the
    same port while the client is already retrying."""
    scenario = load_scenario(tiny)
    first = chip_server(scenario)
    threading.Thread(target=first.serve_forever, daemon=True).start()
    servers = [first]

    def start_second():
        time.sleep(0.5)
        servers.append(chip_server(scenario, port=first.port))
        servers[-1].serve_forever()

    def close_and_restart():
        first.close()
        threading.Thread(target=start_second, daemon=True).start()

    try:
        chip = _KillOnce(first.address, 3, close_and_restart, retry_s=60)
        remote = Experiment.from_file(tiny, chip=chip).run()
        assert len(servers) == 2 and chip.reconnects == 1
        same_run(remote, local)
    finally:
        for server in servers:
            server.close()


@pytest.mark.slow  # two process starts: ~25 s on a loaded 2-core machine
def test_a_killed_server_restarted_on_the_same_port_resumes_bit_for_bit(tiny, local):
    first, address = start_server(tiny)
    port = int(address.rsplit(":", 1)[1])
    restarted = []

    def kill_and_restart():  # after the 3rd measurement: step 2 measured, its evaluation not yet
        stop(first)
        restarted.append(start_server(tiny, port, wait=False)[0])

    try:
        chip = _KillOnce(address, 3, kill_and_restart, retry_s=240)
        remote = Experiment.from_file(tiny, chip=chip).run()
        assert restarted and first.returncode is not None
        assert chip.reconnects == 1
        same_run(remote, local)
    finally:
        for proc in [first, *restarted]:
            stop(proc)


class _DroppingProxy:
    """A TCP relay to ``upstream`` that closes the client's connection instead of relaying the
    replies numbered in ``drop`` (1-based, over all connections): the server has done the work,
    the client never hears of it. ``dropped``: the ops whose replies were dropped."""

    def __init__(self, upstream: str, drop: set[int]):
        self.upstream = upstream.removeprefix("tcp://").rsplit(":", 1)
        self.drop, self.replies, self.dropped = drop, 0, []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client):
        up = socket.create_connection((self.upstream[0], int(self.upstream[1])))
        try:
            while True:
                request = _raw_frame(client)
                up.sendall(request)
                reply = _raw_frame(up)
                self.replies += 1
                if self.replies in self.drop:
                    head_len = struct.unpack("<I", request[4:8])[0]
                    self.dropped.append(json.loads(request[16:16 + head_len])["op"])
                    return
                client.sendall(reply)
        except (OSError, EOFError):
            return
        finally:
            client.close()
            up.close()


def _raw_frame(sock) -> bytes:
    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    prefix = exact(16)
    head, payload = struct.unpack("<IQ", prefix[4:])
    return prefix + exact(head + payload)


def test_replies_lost_after_the_server_measured_are_resent_from_the_acknowledged_state(tiny, local):
    """Reply 6 (step 1's measurement: the chip's noise generator and ledger have moved on) and
    reply 11 (step 2's evaluation; replies 7-8 are the reconnection's hello and state reload) never
    arrive; each time the client reloads the last acknowledged state and asks again."""
    server = chip_server(load_scenario(tiny))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = _DroppingProxy(server.address, {6, 11})
    try:
        chip = RemoteChip(proxy.address, retry_s=30)
        remote = Experiment.from_file(tiny, chip=chip).run()
        assert proxy.dropped == ["measure", "measure"] and chip.reconnects == 2
        same_run(remote, local)
    finally:
        proxy.sock.close()
        server.close()


def test_a_different_chip_on_the_address_is_not_resumed_on():
    one = ChipServer(_Toy(), identity="lab chip A")
    threading.Thread(target=one.serve_forever, daemon=True).start()
    chip = RemoteChip(one.address, retry_s=10)
    one.close()
    chip.close()
    two = ChipServer(_Toy(), port=one.port, identity="lab chip B")
    threading.Thread(target=two.serve_forever, daemon=True).start()
    try:
        with pytest.raises(BackendError, match="another chip"):
            chip.measure(torch.zeros(1, 2), torch.zeros(3, dtype=torch.float64))
    finally:
        two.close()


# ------------------------------------------------------------------ frames
def test_frames_carry_every_dtype_bit_for_bit_and_refuse_what_they_cannot_carry():
    values = {"f32": torch.tensor([-0.0, math.nan, 1e-45, 3.4e38, -math.inf], dtype=torch.float32),
              "f64": torch.tensor([[5e-324, -0.0], [math.pi, math.nan]], dtype=torch.float64),
              "i64": torch.tensor([-2**63, 2**63 - 1]), "u8": torch.arange(256, dtype=torch.uint8),
              "bool": torch.tensor([True, False, True]), "empty": torch.zeros(0, 3), "scalar": torch.tensor(2.5),
              "strided": torch.arange(12.0).reshape(3, 4).T}
    a, b = socket.socketpair()
    with a, b:
        send_frame(a, {"op": "x", "args": {"t": values, "s": slice(1, 5, None), "n": [1, "two", None, {"k": 3.5}]}})
        header, tensors = recv_frame(b)
        got = decode_value(header["args"], tensors)
        for key, t in values.items():
            out = got["t"][key]
            assert out.dtype == t.dtype and out.shape == t.shape, key
            assert out.numpy().tobytes() == t.contiguous().numpy().tobytes(), key  # the very bits
        assert got["s"] == slice(1, 5, None) and got["n"] == [1, "two", None, {"k": 3.5}]
        for bad in (torch.zeros(2, dtype=torch.complex64), math.nan, {"$t": 0}, object()):
            with pytest.raises(TypeError):
                send_frame(a, {"x": bad})


def test_a_request_over_the_servers_limit_is_refused_not_retried():
    server = ChipServer(_Toy(), max_payload=1024)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with RemoteChip(server.address, retry_s=60) as chip:
            phases = torch.zeros(3, dtype=torch.float64)
            assert chip.measure(torch.ones(8, 2), phases).shape == (8, 1)
            with pytest.raises(BackendError, match="payload of .* bytes"):
                chip.measure(torch.ones(200, 2), phases)  # 1600 input bytes + 24 of phases > 1024
            assert chip.measure(torch.ones(8, 2), phases).shape == (8, 1)  # a new connection, same chip
            assert chip.reconnects == 1
    finally:
        server.close()


# ------------------------------------------------------------------ calibration through the protocol
@contextlib.contextmanager
def served_in_process(scenario):
    """``scenario``'s chip served by a thread of this process (closed on leaving)."""
    server = chip_server(scenario)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def served_tiny(tiny):
    """The tiny scenario's chip served in-process (measure_block is this section's subject)."""
    with served_in_process(load_scenario(tiny)) as server:
        yield server


def test_a_served_chip_calibrates_bit_for_bit_as_the_local_chip(tiny, served_tiny):
    options = {"settings": 6, "steps": 20}
    local_exp = Experiment.from_file(tiny)
    local_cal = local_exp.calibrate(**options)
    remote_exp = Experiment.from_file(tiny, chip=served_tiny.address)
    remote_cal = remote_exp.calibrate(**options)
    assert isinstance(remote_exp.chip, RemoteChip)
    for name in ("bias", "gamma_scale", "crosstalk", "amplitude", "residual"):
        assert torch.equal(getattr(remote_cal, name), getattr(local_cal, name)), name
    assert remote_cal.kappa is None and local_cal.kappa is None and remote_cal.blocks == local_cal.blocks
    hw_blocks = local_exp.network.num_hw_blocks
    assert local_cal.ledger["queries"] == local_cal.ledger["phase_settings"] == 6 * hw_blocks
    assert remote_cal.ledger == local_cal.ledger  # the calibration's share, counted by the served chip
    assert remote_exp.chip.ledger.totals() == local_exp.chip.ledger.totals()
    assert served_tiny.backend.ledger.totals() == local_exp.chip.ledger.totals()
    # and the chip's noise stream moved on as locally: a measurement after it reads the same bits
    x = local_exp.task.data.x_test[:4]
    ph = torch.zeros(local_exp.chip.num_phases, dtype=torch.float64)
    assert torch.equal(remote_exp.chip.measure(x, ph), local_exp.chip.measure(x, ph))


def test_measure_block_readings_are_the_chips_and_a_chip_without_it_refuses(tiny, served_tiny):
    local = Experiment.from_file(tiny).chip
    with RemoteChip(served_tiny.address) as remote:
        k, bp = 8, 136  # the tiny chip's blocks: 8 x 8 SVD blocks, 136 phases each
        eye = torch.eye(k, dtype=torch.float64)
        ph = torch.rand(3, bp, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        got = remote.measure_block(1, eye, ph)
        assert got.dtype == torch.complex128 and got.shape == (3, k, k)
        assert torch.equal(got, local.measure_block(1, eye, ph))
        assert torch.equal(remote.measure_block(0, eye[:2], ph[0]), local.measure_block(0, eye[:2], ph[0]))
        with pytest.raises(BackendError, match=r"measure_block: block: need an integer in \[0, "):
            remote.measure_block(10**6, eye, ph)
        assert remote.ledger.totals() == local.ledger.totals()  # the refused request counted nothing
    toy = _Toy()
    server = ChipServer(toy, identity="toy")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with RemoteChip(server.address) as remote, pytest.raises(BackendError, match="no per-block readout"):
            remote.measure_block(0, torch.zeros(1, 2), torch.zeros(3))
    finally:
        server.close()


# ------------------------------------------------------------------ malformed requests
def _frame(header: bytes, payload: bytes = b"", head_len=None, payload_len=None) -> bytes:
    return struct.pack("<4sIQ", MAGIC, len(header) if head_len is None else head_len,
                       len(payload) if payload_len is None else payload_len) + header + payload


def _json(obj, tensors=(), payload=b"") -> bytes:
    return _frame(json.dumps({**obj, "tensors": list(tensors)}).encode(), payload)


def _f64(*values) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


N_TINY = 554  # the tiny scenario's control vector
GARBAGE = {  # name: (bytes sent, words of the error, connection stays usable)
    "http": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a photonic-sim chip frame", False),
    "random_bytes": (bytes(range(7, 250)), "not a photonic-sim chip frame", False),
    "oversized_payload": (_frame(b"{}", payload_len=1 << 40), "payload of 1099511627776 bytes", False),
    "oversized_header": (_frame(b"", head_len=1 << 31), "header of 2147483648 bytes", False),
    "not_json": (_frame(b"{op: measure"), "not UTF-8 JSON", True),
    "not_utf8": (_frame(b"\xff\xfe\x00"), "not UTF-8 JSON", True),
    "json_list": (_frame(b"[1, 2]"), "JSON object", True),
    "deep_json": (_frame(b"[" * 100_000 + b"]" * 100_000), "not UTF-8 JSON", True),
    "nan_constant": (_frame(b'{"op": "hello", "id": 1, "args": {"protocol": NaN}}'), "not UTF-8 JSON", True),
    "unknown_op": (_json({"op": "format_disk", "id": 1}), "op: 'format_disk' is unknown", True),
    "op_not_a_string": (_json({"op": [1], "id": 1}), "is unknown", True),
    "unknown_argument": (_json({"op": "state", "id": 1, "args": {"verbose": True}}), "unknown argument", True),
    "args_not_a_mapping": (_json({"op": "state", "id": 1, "args": [1]}), "args must be a mapping", True),
    "inputs_missing": (_json({"op": "measure", "id": 1, "args": {}}), "inputs must be", True),
    "inputs_wrong_shape": (_json({"op": "measure", "id": 1, "args": {"inputs": {"$t": 0}}},
                                 [{"dtype": "float64", "shape": [2, 3]}], _f64(*range(6))), "inputs must be", True),
    "inputs_integer": (_json({"op": "measure", "id": 1, "args": {"inputs": {"$t": 0}}},
                             [{"dtype": "int64", "shape": [1, 64]}], bytes(8 * 64)), "inputs must be", True),
    "phases_wrong_length": (_json({"op": "measure", "id": 1, "args": {"inputs": {"$t": 0}, "phases": {"$t": 1}}},
                                  [{"dtype": "float32", "shape": [1, 64]}, {"dtype": "float64", "shape": [5]}],
                                  bytes(4 * 64) + _f64(*range(5))), f"phases: need a float tensor [{N_TINY}]", True),
    "payload_short": (_json({"op": "state", "id": 1}, [{"dtype": "float64", "shape": [4]}], _f64(1.0)),
                      "more bytes than the payload", True),
    "payload_left_over": (_json({"op": "state", "id": 1}, [{"dtype": "float64", "shape": [1]}], _f64(1.0, 2.0)),
                          "left over", True),
    "unknown_dtype": (_json({"op": "state", "id": 1}, [{"dtype": "object", "shape": [1]}], bytes(8)),
                      "allowed dtypes", True),
    "negative_shape": (_json({"op": "state", "id": 1}, [{"dtype": "uint8", "shape": [-1]}], b""),
                       "shape must be", True),
    "huge_shape": (_json({"op": "state", "id": 1}, [{"dtype": "uint8", "shape": [4] * 9}], bytes(4 ** 9)),
                   "shape must be", True),
    "bool_not_0_1": (_json({"op": "state", "id": 1}, [{"dtype": "bool", "shape": [2]}], b"\x01\x07"),
                     "bool tensor", True),
    "tensor_ref_out_of_range": (_json({"op": "measure", "id": 1, "args": {"inputs": {"$t": 3}}}),
                                "reference out of range", True),
    "ledger_foreign_key": (_json({"op": "load_state", "id": 1, "args": {"state": {"ledger": {"totals": 1}}}}),
                           "ledger must map", True),
    "ledger_negative": (_json({"op": "load_state", "id": 1, "args": {"state": {"ledger": {"calls": -4}}}}),
                        "ledger must map", True),
    "state_wrong_generator": (_json({"op": "load_state", "id": 1,
                                     "args": {"state": {"ledger": {}, "generator": {"$t": 0}}}},
                                    [{"dtype": "uint8", "shape": [3]}], b"abc"), "does not fit this chip", True),
    "init_phases_float_generator": (_json({"op": "init_phases", "id": 1, "args": {"generator": {"$t": 0}}},
                                          [{"dtype": "float64", "shape": [1]}], _f64(1.0)), "generator must be", True),
    "init_phases_short_generator": (_json({"op": "init_phases", "id": 1, "args": {"generator": {"$t": 0}}},
                                          [{"dtype": "uint8", "shape": [3]}], b"abc"), "init_phases: failed", True),
    "expect_not_an_integer": (_json({"op": "state", "id": 1, "expect": "latest"}), "expect: must be an integer", True),
    "stale_expectation": (_json({"op": "measure", "id": 1, "expect": 10**12, "args": {}}),
                          "stale: the chip's state is version", True),
    "old_protocol": (_json({"op": "hello", "id": 1, "args": {"protocol": 0}}), "protocol 0 is not spoken", True),
    "block_missing": (_json({"op": "measure_block", "id": 1, "args": {}}), "block must be an integer", True),
    "block_bool": (_json({"op": "measure_block", "id": 1, "args": {"block": True}}), "block must be an integer", True),
    "block_negative": (_json({"op": "measure_block", "id": 1, "args": {"block": -1}}), "block must be", True),
    "block_out_of_range": (_json({"op": "measure_block", "id": 1, "args": {"block": 99, "inputs": {"$t": 0},
                                                                             "phases": {"$t": 1}}},
                                 [{"dtype": "float64", "shape": [1, 8]}, {"dtype": "float64", "shape": [136]}],
                                 _f64(*[0.0] * 144)), "measure_block: block: need an integer in [0, ", True),
    "block_inputs_integer": (_json({"op": "measure_block", "id": 1, "args": {"block": 0, "inputs": {"$t": 0}}},
                                   [{"dtype": "int64", "shape": [1, 8]}], bytes(64)), "inputs must be a float", True),
    "block_inputs_rank": (_json({"op": "measure_block", "id": 1, "args": {"block": 0, "inputs": {"$t": 0}}},
                                [{"dtype": "float64", "shape": [8]}], _f64(*[0.0] * 8)), "inputs must be", True),
    "block_inputs_out_of_range": (_json({"op": "measure_block", "id": 1, "args": {"block": 0, "inputs": {"$t": 0},
                                                                                  "phases": {"$t": 1}}},
                                        [{"dtype": "float64", "shape": [1, 8]}, {"dtype": "float64", "shape": [136]}],
                                        _f64(*[2.0] * 8, *[0.0] * 136)), "values in [-1, 1]", True),
    "block_phases_missing": (_json({"op": "measure_block", "id": 1, "args": {"block": 0, "inputs": {"$t": 0}}},
                                   [{"dtype": "float64", "shape": [1, 8]}], _f64(*[0.0] * 8)),
                             "phases must be a float", True),
    "block_phases_wrong_length": (_json({"op": "measure_block", "id": 1, "args": {"block": 0, "inputs": {"$t": 0},
                                                                                  "phases": {"$t": 1}}},
                                        [{"dtype": "float64", "shape": [1, 8]}, {"dtype": "float64", "shape": [2, 5]}],
                                        _f64(*[0.0] * 18)), "phases: need shape [P, 136]", True),
    "block_too_many_settings": (_json({"op": "measure_block", "id": 1, "args": {"block": 0, "inputs": {"$t": 0},
                                                                                "phases": {"$t": 1}}},
                                      [{"dtype": "float64", "shape": [1, 8]},
                                       {"dtype": "float32", "shape": [(1 << 16) + 1, 1]}],
                                      _f64(*[0.0] * 8) + bytes(4 * ((1 << 16) + 1))),
                                "is too large", True),
    "block_unknown_argument": (_json({"op": "measure_block", "id": 1, "args": {"block": 0, "all": True}}),
                               "unknown argument 'all'", True),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_a_malformed_request_gets_an_error_reply_and_the_server_keeps_serving(case, server):
    data, words, usable = GARBAGE[case]
    host, port = server.removeprefix("tcp://").rsplit(":", 1)
    with RemoteChip(server, reset=False) as before:  # the chip's state before the bad request
        state = before.state_dict()
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(data)
        header, _ = recv_frame(sock)
        assert header["ok"] is False and words in header["error"], header
        assert len(header["error"]) <= 300 and "\n" not in header["error"]
        if usable:  # the frame was read whole: the same connection answers a good request
            send_frame(sock, {"op": "state", "id": 2, "args": {}})
            reply, tensors = recv_frame(sock)
            assert reply["ok"] and reply["id"] == 2
        else:  # the stream cannot be trusted past it: closed (after the reply was read)
            assert sock.recv(1) == b""
    with RemoteChip(server, reset=False) as after:  # alive, and the refused request changed nothing
        for key, value in state.items():
            other = after.state_dict()[key]
            assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other, key


def test_bad_chip_addresses_and_misfit_chips_are_one_line_exit_2(tiny, server, tmp_path, capsys):
    cases = {"http://127.0.0.1:1": "not an address", "tcp://127.0.0.1:0": "not an address",
             "tcp://127.0.0.1:1": "unreachable", "tcp://" + "x" * 300 + ":5": "not an address"}
    for address, words in cases.items():
        assert main(["run", str(tiny), "--chip", address, "--out", str(tmp_path / "a")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("photonic-sim run: --chip: ") and words in err[0], err
        assert len(err[0]) < 200
    assert main(["run", str(tiny), "--chip", server, "--set", "accelerator=dense_onn",
                 "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "this scenario's network needs" in err[0], err
    assert not (tmp_path / "a").exists()


def test_serve_chip_refuses_a_bad_port_and_a_busy_one(tiny, server, capsys):
    assert main(["serve-chip", str(tiny), "--port", "70000"]) == 2
    assert "--port: 70000 is out of range" in capsys.readouterr().err
    assert main(["serve-chip", str(tiny), "--port", server.rsplit(":", 1)[1]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot listen on 127.0.0.1:" in err[0], err


# ------------------------------------------------------------------ a lab's chip
class _Toy(HardwareChip):
    """Three phases, two inputs, one output: reading = Σ_j x_j · cos(φ_j) · cos(φ_2)."""

    num_phases, in_features, out_features = 3, 2, 1

    def __init__(self):
        super().__init__()
        self.programmed_calls = 0

    def program(self, phases):
        self.phases = phases
        self.programmed_calls += 1

    def read(self, inputs):
        return (inputs * torch.cos(self.phases[:2])).sum(-1, keepdim=True) * torch.cos(self.phases[2])


def test_a_hardware_chip_is_a_backend_with_the_chips_ledger_rules():
    toy = _Toy()
    assert isinstance(toy, ChipBackend)
    x = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    ph = torch.tensor([[0.0, math.pi, 0.0], [math.pi / 2, 0.0, math.pi]], dtype=torch.float64)
    out = toy.measure(x, ph)
    expected = torch.stack([(x * torch.cos(p[:2])).sum(-1, keepdim=True) * math.cos(p[2]) for p in ph])
    assert out.shape == (2, 2, 1) and torch.allclose(out, expected, atol=1e-15)
    toy.measure(x, ph[1])  # the programmed vector again: no new phase setting
    assert toy.ledger.totals() == {"calls": 2, "queries": 3, "phase_settings": 2, "samples": 6,
                                        "dac_conversions": 0, "adc_conversions": 0, "clipped": 0}
    assert toy.programmed_calls == 2
    per_setting = toy.measure(torch.stack([x[:1], x[1:]]), ph)  # setting p on inputs[p] only
    assert torch.allclose(per_setting[:, 0], torch.stack([expected[0, 0], expected[1, 1]]), atol=1e-15)
    with pytest.raises(ValueError, match="differentiable"):
        toy.measure(x, ph, differentiable=True)


def test_a_served_hardware_chip_reads_bit_for_bit_and_resets():
    toy = _Toy()
    server = ChipServer(toy, identity="toy #1", timing={"settle_s": 1e-6})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with RemoteChip(server.address) as remote:
            assert (remote.identity, remote.timing, remote.num_phases) == ("toy #1", {"settle_s": 1e-6}, 3)
            x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
            ph = torch.rand(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
            local = _Toy().measure(x, ph)
            assert torch.equal(remote.measure(x, ph), local)
            assert remote.ledger.queries == 5 and toy.ledger.queries == 5
            closure = remote.closure(lambda p: remote.measure(x, p).mean((1, 2)).double())
            closure(ph[:2])
            assert closure.queries == 2 and remote.ledger.queries == 7
        with RemoteChip(server.address) as again:  # a new client starts from the reset chip
            assert again.ledger.queries == 0 and toy.ledger.queries == 0
    finally:
        server.close()


class _ToyBlocks(_Toy):
    """_Toy with per-block readout: block b reads x · e^{iφ_0} · (b + 1) (2 x 2, one phase)."""

    def program_block(self, block, phases):
        self.block_phases = phases

    def read_block(self, block, inputs):
        return inputs.to(torch.complex128) * torch.exp(1j * self.block_phases[0]) * (block + 1)


def test_a_hardware_chip_with_block_readout_measures_blocks_counted_and_served():
    toy = _ToyBlocks()
    x = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    ph = torch.tensor([[0.0], [math.pi / 2], [math.pi]], dtype=torch.float64)
    out = toy.measure_block(1, x, ph)
    expected = torch.stack([2 * x * complex(math.cos(p), math.sin(p)) for p in ph[:, 0].tolist()])
    assert out.shape == (3, 1, 2) and torch.allclose(out, expected.to(torch.complex128), atol=1e-15)
    assert toy.ledger.totals() == {"calls": 1, "queries": 3, "phase_settings": 3, "samples": 3,
                                   "dac_conversions": 0, "adc_conversions": 0, "clipped": 0}
    with pytest.raises(ValueError, match=r"values in \[-1, 1\]"):
        toy.measure_block(0, 2 * x, ph)
    with pytest.raises(ValueError, match="no per-block readout"):
        _Toy().measure_block(0, x, ph)
    server = ChipServer(_ToyBlocks(), identity="toy blocks")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with RemoteChip(server.address) as remote:
            assert torch.equal(remote.measure_block(1, x, ph), out)
            assert remote.ledger.totals() == toy.ledger.totals()
    finally:
        server.close()


def test_a_chip_object_in_the_builder_must_fit_the_network(tiny):
    exp = Experiment.from_file(tiny, chip=_Toy())
    with pytest.raises(ValueError, match=r"has \(phases, in, out, readout\) = \(3, 2, 1, 'coherent'\)"):
        _ = exp.chip
    with pytest.raises(ValueError, match="not a chip backend"):
        _ = Experiment.from_file(tiny, chip=42).chip
    with pytest.raises(ValueError, match="weight_map: needs the simulated chip"):
        Experiment.from_file(tiny, chip=_Toy()).weight_map(steps=1)


def test_the_howto_example_class_runs(tiny):
    """docs/howto/drive-a-real-chip.md's lab class, run as written on a stand-in instrument."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "howto" / "drive-a-real-chip.md").read_text(),
                        flags=re.S)
    scope: dict = {}
    exec(compile(blocks[0], "docs/howto/drive-a-real-chip.md", "exec"), scope)  # our own docs, not data

    class Instrument:  # what a lab's driver would talk to: here the simulated chip, ideal
        def __init__(self):
            exp = Experiment.from_file(tiny, ideal=True)
            self.chip, self.n = exp.chip, exp.chip.num_phases

        def set_heaters(self, phases):
            self.phases = phases

        def acquire(self, inputs):
            return self.chip.measure(inputs, self.phases)

    instrument = Instrument()
    lab = scope["LabChip"](instrument, num_phases=instrument.n)
    assert isinstance(lab, ChipBackend)
    exp = Experiment.from_file(tiny, chip=lab)
    assert exp.chip is lab
    phases = exp.params
    x = exp.task.data.x_test[:8]
    assert torch.equal(lab.measure(x, phases), instrument.chip.measure(x, phases))
    assert isinstance(Chip, type) and isinstance(instrument.chip, ChipBackend)
