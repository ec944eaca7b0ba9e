"""A sweep of malformed inputs (issue 21, Acceptance; items 6 and 7): scenario files, device
and accelerator cards, training recipes, MNIST data files and command-line flags.

Every case must exit 2 with exactly ONE stderr line that names the file (or flag) and the key,
write nothing (the whole temporary tree, the --out folder's parent included, is unchanged),
print no traceback, echo no user data at length (no secret, no line longer than MAX_LINE) and
finish in seconds. The sweep runs in-process through ``photonic_sim.cli.main``; a few cases
also run as a real ``python -m photonic_sim.cli`` subprocess.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from photonic_sim.cli import main

REPO = Path(__file__).resolve().parents[1]
SECRET = "hunter2-s3cret"
MAX_LINE = 600  # characters: a message names file, key, a short preview and the allowed values
MAX_SECONDS = 5.0

TINY = """\
name: tiny
seed: 0
devices: dev.yaml
accelerator: acc.yaml
training: rec.yaml
model:
  name: tiny_tt
  layers:
    - {kind: tt, in_modes: [4, 4, 4], out_modes: [2, 5, 1], ranks: [1, 2, 2, 1], activation: none}
task: {kind: digits}
"""
MNIST = """\
name: tiny_mnist
seed: 0
devices: dev.yaml
accelerator: acc.yaml
training: rec.yaml
model:
  name: lin
  layers:
    - {kind: dense, in_features: 784, out_features: 10}
task: {kind: mnist, data_dir: data}
"""
DEV = (REPO / "devices" / "silicon_thermo_optic.yaml").read_text()
ACC = (REPO / "accelerators" / "tonn_space.yaml").read_text()
ACC_TIME = (REPO / "accelerators" / "tonn_time.yaml").read_text()
REC = (REPO / "training" / "sign_rge.yaml").read_text()


def _sub(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once"
    return text.replace(old, new)


def _set_line(text: str, key: str, value: str) -> str:
    """Replace the top-level line ``key: ...`` by ``key: value`` (or append it)."""
    lines = [line for line in text.splitlines() if not line.startswith(f"{key}:")]
    return "\n".join(lines) + f"\n{key}: {value}\n"


for _key, _value in (("steps", "1"), ("eval_every", "1"), ("checkpoint_every", "0"), ("batch_size", "4"),
                     ("eval_batch_size", "8")):  # a case that wrongly passes fails fast, it does not train long
    REC = _set_line(REC, _key, _value)


def _laughs(levels: int = 12) -> str:
    """A billion-laughs document: each level lists the previous one ten times."""
    out = ["lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        out.append(f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(out) + "\n"


def _idx(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.dtype(">i4") if code == 0x0C else np.uint8).tobytes()


IMAGES = np.zeros((20, 28, 28), dtype=np.uint8)
LABELS = (np.arange(20) % 10).astype(np.uint8)


# ------------------------------------------------------------------ cases
# Each case: files to write ({name: text or bytes}), the argv after "photonic-sim" ({out} is
# the --out folder, {sc} the scenario path), and the words the one error line must hold.
# Unless given, files are TINY as s.yaml plus the shipped device card, accelerator card and
# recipe as dev.yaml / acc.yaml / rec.yaml.
RUN = ["run", "{sc}", "--out", "{out}", "--no-progress"]
CASES: dict[str, tuple[dict, list[str], list[str]]] = {}


def case(name: str, files: dict | None = None, argv: list[str] | None = None, words: tuple = ()) -> None:
    assert name not in CASES
    CASES[name] = (files or {}, argv or RUN, list(words))


# --- scenario files -------------------------------------------------------------------------
case("sc_unknown_key", {"s.yaml": TINY + "seeed: 1\n"}, words=["s.yaml", "seeed"])
case("sc_seed_type", {"s.yaml": _set_line(TINY, "seed", "zero")}, words=["s.yaml", "seed"])
case("sc_seed_negative", {"s.yaml": _set_line(TINY, "seed", "-4")}, words=["s.yaml", "seed"])
case("sc_seed_5000_digits", {"s.yaml": _set_line(TINY, "seed", "1" + "0" * 5000)}, words=["s.yaml", "seed"])
case("sc_seed_inf", {"s.yaml": _set_line(TINY, "seed", ".inf")}, words=["s.yaml", "seed"])
case("sc_name_pattern", {"s.yaml": _set_line(TINY, "name", "'-bad name'")}, words=["s.yaml", "name"])
case("sc_flow_list_1e4", {"s.yaml": _set_line(TINY, "description", "[" + ",".join(["0"] * 10_000) + "]")},
     words=["s.yaml", "description"])
case("sc_flow_list_1e6", {"s.yaml": _set_line(TINY, "description", "[" + ",".join(["0"] * 1_000_000) + "]")},
     words=["s.yaml", "<root>"])
case("sc_string_50mb", {"s.yaml": _set_line(TINY, "description", "x" * 50_000_000)}, words=["s.yaml", "<root>"])
case("sc_billion_laughs", {"s.yaml": TINY + _laughs()}, words=["s.yaml", "lol", "aliases"])
case("sc_nested_10000", {"s.yaml": _set_line(TINY, "description", "[" * 10_000 + "]" * 10_000)},
     words=["s.yaml", "line"])
case("sc_nested_40", {"s.yaml": _set_line(TINY, "description", "[" * 40 + "]" * 40)}, words=["s.yaml", "description"])
case("sc_recursive_alias", {"s.yaml": _set_line(TINY, "description", "&a [*a]")}, words=["s.yaml", "description"])
case("sc_python_tag", {"s.yaml": _set_line(TINY, "description", "!!python/object/apply:os.system ['echo hacked']")},
     words=["s.yaml", "description", "tag"])
case("sc_custom_tag", {"s.yaml": _set_line(TINY, "description", "!secret x")}, words=["s.yaml", "description"])
case("sc_duplicate_key", {"s.yaml": TINY + "seed: 1\n"}, words=["s.yaml", "seed", "duplicate"])
case("sc_malformed", {"s.yaml": _set_line(TINY, "task", "{kind: digits")}, words=["s.yaml", "line"])
case("sc_json_tabs_secret", {"s.yaml": '{\n\t"name": "x",\n\t"password": "' + SECRET + '"\n}\n'},
     words=["s.yaml"])
case("sc_binary", {"s.yaml": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + SECRET.encode()}, words=["s.yaml", "<root>"])
case("sc_secret_text", {"s.yaml": f"password={SECRET}\nuser=admin\n"}, words=["s.yaml", "<root>"])
case("sc_empty", {"s.yaml": ""}, words=["s.yaml", "<root>"])
case("sc_list_root", {"s.yaml": "- 1\n- 2\n"}, words=["s.yaml", "<root>"])
case("sc_list_key", {"s.yaml": TINY + "? [a, b]\n: 1\n"}, words=["s.yaml", "key"])
case("sc_long_key", {"s.yaml": TINY + "k" * 1000 + ": 1\n"}, words=["s.yaml", "unknown key"])
case("sc_key_too_long_for_yaml", {"s.yaml": TINY + "k" * 100_000 + ": 1\n"}, words=["s.yaml", "line 11"])
case("sc_long_number", {"s.yaml": _set_line(TINY, "seed", "1." + "0" * 100)}, words=["s.yaml", "seed"])
case("sc_model_preset", {"s.yaml": _set_line(TINY.split("model:")[0], "model", "digitz") + "task: {kind: digits}\n"},
     words=["s.yaml", "model", "digits"])
case("sc_layer_kind", {"s.yaml": _sub(TINY, "{kind: tt,", "{kind: ttt,")}, words=["s.yaml", "model.layers.0.kind"])
case("sc_model_io", {"s.yaml": _sub(TINY, "in_modes: [4, 4, 4]", "in_modes: [4, 4, 2]")}, words=["s.yaml", "model"])
case("sc_task_kind", {"s.yaml": _set_line(TINY, "task", "{kind: digitz}")}, words=["s.yaml", "task.kind"])
case("sc_test_fraction", {"s.yaml": _set_line(TINY, "task", "{kind: digits, test_fraction: 1.5}")},
     words=["s.yaml", "task.test_fraction"])
case("sc_test_fraction_nan", {"s.yaml": _set_line(TINY, "task", "{kind: digits, test_fraction: .nan}")},
     words=["s.yaml", "task.test_fraction"])
case("sc_pde_sigma_inf", {"s.yaml": _set_line(TINY, "task", "{kind: pde, pde: burgers, sigma: .inf}")},
     words=["s.yaml", "task.sigma"])
case("sc_pde_sampling", {"s.yaml": _set_line(TINY, "task", "{kind: pde, pde: burgers, sampling: halton}")},
     words=["s.yaml", "task.sampling", "sobol"])
case("sc_pde_sampling_pool", {"s.yaml": _set_line(TINY, "task", "{kind: pde, pde: burgers, sampling: sobol, resample_pool: 50}")},
     words=["s.yaml", "task.sampling", "resample_pool"])
case("sc_pde_grid_too_big", {"s.yaml": _set_line(TINY, "task", "{kind: pde, pde: burgers, sampling: grid, collocation: 1025}")},
     words=["s.yaml", "task.collocation", "1048576"])
case("sc_pde_symmetry_key", {"s.yaml": _set_line(TINY, "task", "{kind: pde, pde: burgers, symmetry: {y: odd}}")},
     words=["s.yaml", "task.symmetry", "odd"])
case("sc_pde_symmetry_value", {"s.yaml": _set_line(TINY, "task", "{kind: pde, pde: burgers, symmetry: {x: skew}}")},
     words=["s.yaml", "task.symmetry", "odd"])
case("sc_pde_input_warp_width", {"s.yaml": _set_line(TINY, "task", "{kind: pde, pde: burgers, input_warp: {x: 0}}")},
     words=["s.yaml", "task.input_warp", "width > 0"])
case("sc_pde_separable_rank", {"s.yaml": _set_line(TINY, "task", "{kind: pde, pde: burgers, separable: 0}")},
     words=["s.yaml", "task.separable"])
case("sc_pde_separable_width", {"s.yaml": _set_line(TINY, "task", "{kind: pde, pde: burgers, separable: 4}")},
     words=["s.yaml", "model", "4"])
case("sc_pde_input_gain_count", {"s.yaml": _set_line(TINY, "task", "{kind: pde, pde: burgers, input_gain: [1, 2, 3]}")},
     words=["s.yaml", "task.input_gain"])
case("sc_variant_name", {"s.yaml": TINY + "variants: {'bad name': {seed: 1}}\n"}, words=["s.yaml", "variants"])
case("sc_variant_variants", {"s.yaml": TINY + "variants: {v: {variants.w: 1}}\n"}, words=["s.yaml", "variants.v"])
case("sc_variant_bad_value", {"s.yaml": TINY + "variants: {v: {training.steps: 0}}\n"},
     words=["s.yaml", "variants.v", "steps"])
case("sc_overrides_not_mapping", {"s.yaml": TINY + "overrides: {devices: 5}\n"}, words=["s.yaml", "overrides.devices"])
case("sc_missing_card", {"s.yaml": _set_line(TINY, "devices", "nope/dev.yaml")}, words=["s.yaml", "devices"])
case("sc_unknown_recipe", {"s.yaml": _set_line(TINY, "training", "hybrid_zoo")}, words=["s.yaml", "training"])

# --- device cards ---------------------------------------------------------------------------
THZ = "bandwidth: {value: 27, unit: GHz"
case("dev_duplicate_top", {"dev.yaml": DEV + "name: again\n"}, words=["dev.yaml", "name", "duplicate"])
case("dev_duplicate_nested", {"dev.yaml": _sub(DEV, "phase_shifter:\n", "phase_shifter:\n  kind: mems\n")},
     words=["dev.yaml", "phase_shifter.kind", "duplicate"])
case("dev_overflow_si", {"dev.yaml": _sub(DEV, THZ, "bandwidth: {value: 1.0e+300, unit: GHz")},
     words=["dev.yaml", "photodetector.bandwidth", "overflows"])
case("dev_absurd_ghz", {"dev.yaml": _sub(DEV, THZ, "bandwidth: {value: 1.0e+200, unit: GHz")},
     words=["dev.yaml", "photodetector.bandwidth", "allowed"])
case("dev_absurd_watts", {"dev.yaml": _sub(DEV, "max_power: {value: 100, unit: mW", "max_power: {value: 1.0e+308, unit: W")},
     words=["dev.yaml", "laser.max_power"])
case("dev_negative_power", {"dev.yaml": _sub(DEV, "p_pi: {value: 30,", "p_pi: {value: -30,")},
     words=["dev.yaml", "phase_shifter.p_pi"])
case("dev_zero_wavelength", {"dev.yaml": _sub(DEV, "\nwavelength: {value: 1550,", "\nwavelength: {value: 0,")},
     words=["dev.yaml", "wavelength"])
case("dev_nan", {"dev.yaml": _sub(DEV, "p_pi: {value: 30,", "p_pi: {value: .nan,")}, words=["dev.yaml", "phase_shifter.p_pi"])
case("dev_inf", {"dev.yaml": _sub(DEV, "p_pi: {value: 30,", "p_pi: {value: .inf,")}, words=["dev.yaml", "phase_shifter.p_pi"])
case("dev_bigint", {"dev.yaml": _sub(DEV, "p_pi: {value: 30,", "p_pi: {value: 1" + "0" * 400 + ",")},
     words=["dev.yaml", "phase_shifter.p_pi"])
case("dev_unit_dimension", {"dev.yaml": _sub(DEV, "p_pi: {value: 30, unit: mW", "p_pi: {value: 30, unit: V")},
     words=["dev.yaml", "phase_shifter.p_pi.unit"])
case("dev_unit_list", {"dev.yaml": _sub(DEV, "p_pi: {value: 30, unit: mW", "p_pi: {value: 30, unit: [mW]")},
     words=["dev.yaml", "phase_shifter.p_pi.unit"])
case("dev_value_list", {"dev.yaml": _sub(DEV, "p_pi: {value: 30,", "p_pi: {value: [" + ",".join(["3"] * 5000) + "],")},
     words=["dev.yaml", "phase_shifter.p_pi.value"])
case("dev_value_string", {"dev.yaml": _sub(DEV, "p_pi: {value: 30,", f"p_pi: {{value: '{'y' * 100_000}',")},
     words=["dev.yaml", "phase_shifter.p_pi.value"])
case("dev_bits_fraction", {"dev.yaml": _sub(DEV, "bits: {value: 8, unit: bits, ref: \"phase", "bits: {value: 7.5, unit: bits, ref: \"phase")},
     words=["dev.yaml", "phase_shifter.bits"])
case("dev_unknown_section", {"dev.yaml": DEV + "heater: {}\n"}, words=["dev.yaml", "heater"])
case("dev_section_scalar", {"dev.yaml": _sub(DEV, "tia:\n", "tia: 5\ntia_old:\n")}, words=["dev.yaml", "tia"])
case("dev_secret_text", {"dev.yaml": f"password={SECRET}\n"}, words=["dev.yaml", "<root>"])
case("dev_binary", {"dev.yaml": bytes(range(256)) + SECRET.encode()}, words=["dev.yaml", "<root>"])
case("dev_secret_malformed", {"dev.yaml": f"password: [{SECRET}\n"}, words=["dev.yaml", "line"])
case("acc_secret_malformed", {"acc.yaml": f"token: {{{SECRET}\n"}, words=["acc.yaml", "line"])
case("dev_json_tabs", {"dev.yaml": '{\n\t"password": "' + SECRET + '"\n}\n'}, words=["dev.yaml"])
case("dev_too_large", {"dev.yaml": DEV + "#" + "x" * 2_000_000 + "\n"}, words=["dev.yaml", "<root>"])
case("dev_billion_laughs", {"dev.yaml": _laughs() + DEV}, words=["dev.yaml", "lol", "aliases"])
case("dev_python_tag", {"dev.yaml": _sub(DEV, "kind: thermo_optic", "kind: !!python/name:os.system ''")},
     words=["dev.yaml", "phase_shifter.kind", "tag"])
case("dev_sensitivity", {"dev.yaml": _sub(DEV, "sensitivity: {value: -27,", "sensitivity: {value: 1000,")},
     words=["dev.yaml", "photodetector.sensitivity"])
case("dev_link_overflow", {"dev.yaml": _sub(DEV, "insertion_loss: {value: 0.25,", "insertion_loss: {value: 5,")},
     words=["s.yaml", "devices", "dev.yaml", "link budget"])
case("dev_gamma_noise", {"dev.yaml": _sub(DEV, "gamma_noise_std: {value: 0.002,", "gamma_noise_std: {value: 0.5,")},
     words=["dev.yaml", "phase_shifter.gamma_noise_std"])
case("dev_dac_one_bit", {}, RUN + ["--set", "devices.dac.bits=1"], words=["s.yaml", "dac.bits"])
case("set_link_overflow", {}, RUN + ["--set", "devices.coupler.insertion_loss=5"],
     words=["s.yaml", "overrides.devices.coupler.insertion_loss", "link budget"])
case("dev_loss_absurd", {"dev.yaml": _sub(DEV, "insertion_loss: {value: 0.25,", "insertion_loss: {value: 99,")},
     words=["dev.yaml", "phase_shifter.insertion_loss"])
case("dev_override_absurd", {}, RUN + ["--set", "devices.laser.max_power=1.0e+308"], words=["s.yaml", "laser.max_power"])

# --- accelerator cards ----------------------------------------------------------------------
CLOCK = "clock: {value: 10, unit: GHz"
case("acc_duplicate", {"acc.yaml": ACC + "block_size: 4\n"}, words=["acc.yaml", "duplicate"])
case("acc_clock_overflow", {"acc.yaml": _sub(ACC, CLOCK, "clock: {value: 1.0e+300, unit: GHz")},
     words=["acc.yaml", "clock", "overflows"])
case("acc_clock_absurd", {"acc.yaml": _sub(ACC, CLOCK, "clock: {value: 1.0e+200, unit: Hz")}, words=["acc.yaml", "clock"])
case("acc_clock_negative", {"acc.yaml": _sub(ACC, CLOCK, "clock: {value: -10, unit: GHz")}, words=["acc.yaml", "clock"])
case("acc_block_size", {"acc.yaml": _set_line(ACC, "block_size", "0")}, words=["acc.yaml", "block_size"])
case("acc_block_size_one", {"acc.yaml": _set_line(ACC, "block_size", "1")}, words=["acc.yaml", "block_size"])
case("acc_block_size_1024", {"acc.yaml": _set_line(ACC, "block_size", "1024")}, words=["acc.yaml", "block_size"])
case("acc_num_cores_missing", {"acc.yaml": "\n".join(line for line in ACC_TIME.splitlines() if not line.startswith("num_cores"))},
     words=["acc.yaml", "num_cores"])
case("acc_architecture", {"acc.yaml": _set_line(ACC, "architecture", "tonn_spaec")}, words=["acc.yaml", "architecture"])
case("acc_area_overhead", {"acc.yaml": _set_line(ACC, "area_overhead", "{value: 0.5, unit: '', ref: x}")},
     words=["acc.yaml", "area_overhead"])
case("acc_energy_absurd", {"acc.yaml": _sub(ACC, "energy_per_op: {value: 1, unit: pJ", "energy_per_op: {value: 1.0e+300, unit: J")},
     words=["acc.yaml", "digital.energy_per_op"])
case("acc_secret_text", {"acc.yaml": f"{SECRET} is the password\n"}, words=["acc.yaml", "<root>"])

# --- training recipes -----------------------------------------------------------------------
case("rec_steps_zero", {"rec.yaml": _set_line(REC, "steps", "0")}, words=["rec.yaml", "steps"])
case("rec_steps_string", {"rec.yaml": _set_line(REC, "steps", "'200'")}, words=["rec.yaml", "steps"])
case("rec_strategy", {"rec.yaml": _set_line(REC, "strategy", "zo-sign-rgee")}, words=["rec.yaml", "strategy"])
case("rec_duplicate", {"rec.yaml": REC + "steps: 5\n"}, words=["rec.yaml", "steps", "duplicate"])
case("rec_logit_scale_inf", {"rec.yaml": _set_line(REC, "logit_scale", ".inf")}, words=["rec.yaml", "logit_scale"])
case("rec_unknown_option", {}, RUN + ["--set", "training.strategy_options.qq=4"], words=["s.yaml", "strategy_options.qq"])
case("rec_lr_negative", {}, RUN + ["--set", "training.strategy_options.lr=-1"], words=["s.yaml", "strategy_options.lr"])
case("rec_lr_inf", {}, RUN + ["--set", "training.strategy_options.lr=.inf"], words=["s.yaml", "strategy_options.lr"])
case("rec_q_zero", {}, RUN + ["--set", "training.strategy_options.q=0"], words=["s.yaml", "strategy_options.q"])
case("rec_optimizer", {}, RUN + ["--set", "training.strategy_options.optimizer=adamm"],
     words=["s.yaml", "strategy_options.optimizer"])
# Bounds the chip sets (the phases a strategy may move), checked when the builder makes the strategy,
# before the first query: bad input like the rest (exit 2, the option's key path), not a failed run.
case("rec_nnz_beyond_chip", {}, RUN + ["--set", "training.strategy_options.nnz=100000"],
     words=["s.yaml", "training.strategy_options.nnz", "integer in [1,"])
case("rec_coords_beyond_chip", {}, RUN + ["--set", "training.strategy=zo-cge", "--set",
                                          "training.strategy_options={coords_per_step: 100000}"],
     words=["s.yaml", "training.strategy_options.coords_per_step"])
case("rec_stage_nnz_beyond_chip", {}, RUN + ["--set", "training.strategy=staged", "--set",
                                             "training.strategy_options={stages: [{strategy: zo-rge, steps: 1, nnz: 100000}]}"],
     words=["s.yaml", "training.strategy_options.stages.0.nnz"])
_STAGES = "training.strategy_options={stages: [{strategy: zo-rge, steps: 2}, {strategy: mixedtrain, steps: 2, loss: %s}]}"
case("rec_stage_loss_name", {}, RUN + ["--set", "training.strategy=staged", "--set", _STAGES % "evaluaton"],
     words=["s.yaml", "stages.1.loss", "evaluation"])
case("rec_stage_loss_labels", {}, RUN + ["--set", "training.strategy=staged", "--set", _STAGES % "evaluation"],
     words=["s.yaml", "stages[1].loss", "label-free", "batch"])
case("rec_loss_task", {}, RUN + ["--set", "training.loss=pinn"], words=["s.yaml", "training.loss"])
case("rec_keep_value", {}, RUN + ["--set", "training.keep=best"], words=["s.yaml", "training.keep", "lowest_eval_loss"])
case("rec_keep_task", {}, RUN + ["--set", "training.keep=lowest_eval_loss"], words=["s.yaml", "training.keep", "last"])

# --- MNIST data files -----------------------------------------------------------------------
IMG, LAB = "data/t10k-images-idx3-ubyte", "data/t10k-labels-idx1-ubyte"
GOOD = {"s.yaml": MNIST, IMG: _idx(IMAGES), LAB: _idx(LABELS)}
GZ = gzip.compress(_idx(IMAGES + np.arange(28, dtype=np.uint8)))
case("data_truncated_gz", {"s.yaml": MNIST, IMG + ".gz": GZ[: len(GZ) // 2], LAB: _idx(LABELS)},
     words=["s.yaml", "task.data_dir", "images-idx3-ubyte.gz", "gzip"])
case("data_corrupt_gz", {"s.yaml": MNIST, IMG: _idx(IMAGES), LAB + ".gz": b"\x1f\x8b\x08\x00" + bytes(64)},
     words=["s.yaml", "task.data_dir", "labels-idx1-ubyte.gz"])
case("data_not_gz", {"s.yaml": MNIST, IMG + ".gz": _idx(IMAGES), LAB: _idx(LABELS)},
     words=["s.yaml", "task.data_dir", "images-idx3-ubyte.gz"])
case("data_bad_magic", {**GOOD, IMG: b"\x01\x02\x03\x04" + bytes(100)}, words=["s.yaml", "task.data_dir", "magic"])
case("data_short_header", {**GOOD, IMG: bytes([0, 0, 8, 3, 0, 0])}, words=["s.yaml", "task.data_dir", "images-idx3-ubyte"])
case("data_body_length", {**GOOD, IMG: _idx(IMAGES)[:-5]}, words=["s.yaml", "task.data_dir", "header declares"])
case("data_image_size", {**GOOD, IMG: _idx(np.zeros((20, 10, 10), dtype=np.uint8))},
     words=["s.yaml", "task.data_dir", "images-idx3-ubyte", "28, 28"])
case("data_label_dtype", {**GOOD, LAB: _idx(LABELS, 0x0C)}, words=["s.yaml", "task.data_dir", "labels-idx1-ubyte"])
case("data_label_range", {**GOOD, LAB: _idx(np.where(LABELS == 3, 10, LABELS))},
     words=["s.yaml", "task.data_dir", "labels-idx1-ubyte", "0..9"])
case("data_count_mismatch", {**GOOD, LAB: _idx(LABELS[:15])}, words=["s.yaml", "task.data_dir", "labels"])
case("data_no_dir", {"s.yaml": MNIST}, words=["s.yaml", "task.data_dir"])
case("data_no_pair", {"s.yaml": MNIST, IMG: _idx(IMAGES)}, words=["s.yaml", "task.data_dir"])

# --- command-line flags ---------------------------------------------------------------------
case("set_no_equals", {}, RUN + ["--set", "seed"], words=["s.yaml", "--set", "seed"])
case("set_empty_part", {}, RUN + ["--set", "training..steps=3"], words=["s.yaml", "--set"])
case("set_unknown_key", {}, RUN + ["--set", "training.stepz=3"], words=["s.yaml", "stepz"])
case("set_bad_type", {}, RUN + ["--set", "seed=abc"], words=["s.yaml", "seed"])
case("set_malformed", {}, RUN + ["--set", "seed=[1,2"], words=["s.yaml", "--set seed"])
case("set_too_long", {}, RUN + ["--set", "description=" + "x" * 100_000], words=["s.yaml", "--set description"])
case("set_list_index", {}, RUN + ["--set", "model.layers.9.kind=tt"], words=["s.yaml", "model.layers.9"])
case("set_card_bits", {}, RUN + ["--set", "devices.phase_shifter.bits=0"], words=["s.yaml", "phase_shifter.bits"])
case("set_clock_negative", {}, RUN + ["--set", "accelerator.clock=-1"], words=["s.yaml", "clock"])
case("set_python_tag", {}, RUN + ["--set", "seed=!!python/object/apply:os.system [ls]"], words=["s.yaml", "--set seed"])
case("set_flow_list", {}, RUN + ["--set", "seed=[" + ",".join(["1"] * 1000) + "]"], words=["s.yaml", "seed"])
SWEEP = ["sweep", "{sc}", "--out", "{out}"]
case("grid_no_equals", {}, SWEEP + ["--grid", "seed"], words=["--grid"])
case("grid_no_values", {}, SWEEP + ["--grid", "seed="], words=["--grid"])
case("grid_bad_value", {}, SWEEP + ["--grid", "training.steps=1,x"], words=["s.yaml", "steps"])
case("grid_unknown_key", {}, SWEEP + ["--grid", "training.stepz=1,2"], words=["s.yaml", "stepz"])
case("sweep_seeds_zero", {}, SWEEP + ["--grid", "seed=1,2", "--seeds", "0"], words=["--seeds"])
case("sweep_workers_negative", {}, SWEEP + ["--grid", "seed=1,2", "--workers", "-1"], words=["--workers"])
COMPARE = ["compare", "{sc}", "--out", "{out}", "--strategies", "spsa"]
case("compare_seeds_zero", {}, COMPARE + ["--seeds", "0"], words=["--seeds"])
case("compare_seeds_text", {}, COMPARE + ["--seeds", "three"], words=["--seeds"])
case("compare_workers_zero", {}, COMPARE + ["--workers", "0"], words=["--workers"])
case("compare_unknown_strategy", {}, ["compare", "{sc}", "--out", "{out}", "--strategies", "zo-rgee", "--seeds", "1"],
     words=["zo-rgee"])
case("run_threads_zero", {}, RUN + ["--threads", "0"], words=["--threads"])
case("run_unknown_flag", {}, RUN + ["--bogus"], words=["--bogus"])
case("recipe_start_unknown", {}, RUN + ["--set", "training.start=warm"], words=["s.yaml", "start", "calibrated"])
case("run_ray_calibrated_start", {}, RUN + ["--backend", "ray", "--set", "training.start=calibrated"],
     words=["--backend ray", "training.start"])
case("run_device_unknown", {}, RUN + ["--device", "tpu" + SECRET * 20], words=["--device", "allowed: cpu, cuda"])
case("run_device_not_torch", {}, RUN + ["--device", "mps"], words=["--device", "mps", "allowed: cpu, cuda"])
case("run_device_cuda_index", {}, RUN + ["--device", "cuda:99"], words=["--device"])
case("run_device_with_chip", {}, RUN + ["--device", "cuda", "--chip", "tcp://127.0.0.1:9"], words=["--device"])

# --- found by the malformed-input audit: each crashed (traceback), ran anyway, exited 1 mid-run or
# named no file/key before it was fixed ----------------------------------------------------------
LONG = "x" * 300  # one path component longer than the file system allows (ENAMETOOLONG)
case("sc_task_kind_list", {"s.yaml": _set_line(TINY, "task", "{kind: [digits]}")}, words=["s.yaml", "task.kind"])
case("sc_layer_kind_mapping", {"s.yaml": _sub(TINY, "{kind: tt,", "{kind: {a: 1},")},
     words=["s.yaml", "model.layers.0.kind"])
case("sc_tt_negative_modes", {"s.yaml": _sub(TINY, "in_modes: [4, 4, 4]", "in_modes: [-4, -4, 4]")},
     words=["s.yaml", "model.layers.0.in_modes", ">= 1"])
case("sc_misspelt_key_among_missing", {"s.yaml": _sub(TINY, "ranks: [1, 2, 2, 1]", "rank: [1, 2, 2, 1]")},
     words=["s.yaml", "model.layers.0.rank", "unknown key", "did you mean 'ranks'"])
case("sc_key_not_a_string", {"s.yaml": TINY + "1: 2\n"}, words=["s.yaml", "<root>", "not a string", "seed"])
case("sc_override_empty_key", {"s.yaml": TINY + "overrides: {devices: {'': 8}}\n"},
     words=["s.yaml", "overrides.devices", "empty part"])
case("sc_override_key_empty_part", {"s.yaml": TINY + "overrides: {training: {'strategy_options..lr': 1}}\n"},
     words=["s.yaml", "overrides.training.strategy_options..lr", "empty part"])
case("sc_card_name_too_long", {"s.yaml": _set_line(TINY, "devices", LONG)}, words=["s.yaml", "devices", "no such device"])
case("sc_card_path_too_long", {"s.yaml": _set_line(TINY, "accelerator", LONG + ".yaml")},
     words=["s.yaml", "accelerator", "no such accelerator"])
case("sc_card_unknown_home", {"s.yaml": _set_line(TINY, "training", "~no-such-user-photonic/rec.yaml")},
     words=["s.yaml", "training", "no such training recipe"])
case("sc_scenario_name_too_long", {}, ["run", "{sc}" + LONG + ".yaml", "--out", "{out}"], words=["no such scenario"])
case("sc_digits_empty_test_split", {"s.yaml": _set_line(TINY, "task", "{kind: digits, test_fraction: 0.0001}")},
     words=["s.yaml", "task.test_fraction", "0 for test"])
case("validate_name_too_long", {}, ["validate", "{sc}" + LONG + ".yaml"], words=["validate", "no such file"])
case("report_name_too_long", {}, ["report", "{out}" + LONG], words=["report", "no report.json"])
case("cost_card_name_too_long", {}, ["cost", "--accelerator", LONG, "--model", "digits"],
     words=["--accelerator", "no such accelerator card"])
case("cost_model_name_too_long", {}, ["cost", "--accelerator", "tonn_space", "--model", "{sc}" + LONG + ".yaml"],
     words=["--model"])
case("dev_v_pi_denormal", {"dev.yaml": _sub(DEV, "v_pi: {value: 4.36,", "v_pi: {value: 1.0e-300,")},
     words=["dev.yaml", "phase_shifter.v_pi"])
case("dev_responsivity_denormal", {"dev.yaml": _sub(DEV, "responsivity: {value: 1.1,", "responsivity: {value: 1.0e-300,")},
     words=["dev.yaml", "photodetector.responsivity"])
case("dev_tia_gain_denormal", {"dev.yaml": _sub(DEV, "gain: {value: 5000,", "gain: {value: 1.0e-300,")},
     words=["dev.yaml", "tia.gain"])
case("dev_wall_plug_denormal", {}, RUN + ["--set", "devices.laser.wall_plug_efficiency=1.0e-300"],
     words=["s.yaml", "laser.wall_plug_efficiency"])
case("rec_q_beyond_int64", {}, RUN + ["--set", "training.strategy_options.q=1.0e+308"],
     words=["s.yaml", "strategy_options.q", "at most"])
case("rec_eps_integer_beyond_int64", {}, RUN + ["--set", "training.strategy_options.eps=" + "1" + "0" * 30],
     words=["s.yaml", "strategy_options.eps"])
case("rec_stage_q_beyond_int64", {}, RUN + ["--set", "training.strategy=staged", "--set",
                                            "training.strategy_options={stages: [{strategy: zo-rge, steps: 1, q: 1.0e+308}]}"],
     words=["s.yaml", "stages", "q"])
case("run_threads_beyond_int", {}, RUN + ["--threads", "1" + "0" * 20], words=["--threads", "out of range"])
case("run_out_empty", {}, RUN + ["--out", ""], words=["--out", "empty"])
case("run_out_nul", {}, RUN + ["--out", "{out}\x00x"], words=["--out", "NUL"])
case("sweep_grid_seed_bad_value", {}, SWEEP + ["--grid", "seed=1,abc"], words=["s.yaml", "seed"])
case("sweep_seeds_past_the_seed_range", {}, SWEEP + ["--grid", "training.steps=1", "--seeds", "5000000000"],
     words=["--seeds"])
case("compare_seeds_past_the_seed_range", {}, COMPARE + ["--seeds", "3", "--set", "seed=4294967294"], words=["--seeds"])
MNIST_ONE = {"s.yaml": MNIST, IMG: _idx(IMAGES[:1]), LAB: _idx(LABELS[:1])}
case("data_one_example", MNIST_ONE, words=["s.yaml", "task.test_fraction", "0 for test"])
case("data_ndim_255", {**GOOD, IMG: bytes([0, 0, 8, 255]) + bytes(1020)},
     words=["s.yaml", "task.data_dir", "images-idx3-ubyte", "dimensions"])
case("data_dir_too_long", {"s.yaml": _sub(MNIST, "data_dir: data", "data_dir: " + LONG)},
     words=["s.yaml", "task.data_dir", "no such directory"])
case("data_dir_nul", {"s.yaml": _sub(MNIST, "data_dir: data", 'data_dir: "da\\0ta"')}, words=["s.yaml", "task.data_dir"])
PDE = """\
name: tiny_pde
seed: 0
devices: dev.yaml
accelerator: acc.yaml
training: rec.yaml
model:
  name: p
  layers:
    - {kind: tt, in_modes: [1, 2], out_modes: [8, 8], ranks: [1, 2, 1], activation: sin}
    - {kind: dense, in_features: 64, out_features: 1}
task: {kind: pde, pde: burgers, collocation: 4, test_points: 40, residual_points: 20, estimator: finite_difference}
chip: {insertion_loss: false}
"""
PINN_REC = _set_line(_set_line((REPO / "training" / "pinn_zo.yaml").read_text(), "steps", "1"), "eval_every", "1")


def pde_case(name: str, task: str | None = None, extra: list[str] = (), words: tuple = ()) -> None:
    scenario = PDE if task is None else _set_line(PDE, "task", task)
    case(name, {"s.yaml": scenario, "rec.yaml": PINN_REC}, RUN + list(extra), words=words)


pde_case("pde_eval_level_without_sparse_grid", "{kind: pde, pde: burgers, estimator: finite_difference, eval_level: 2}",
         words=["s.yaml", "task.eval_level", "sparse_grid"])
pde_case("pde_sigma_final_without_stein", "{kind: pde, pde: burgers, estimator: finite_difference, sigma_final: 0.01}",
         words=["s.yaml", "task.sigma_final", "monte_carlo"])
pde_case("pde_sigma_final_wider_than_sigma", "{kind: pde, pde: burgers, estimator: monte_carlo, mc_samples: 4, "
         "sigma: 0.1, sigma_final: 5}", words=["s.yaml", "task.sigma_final", "sigma"])
pde_case("pde_causal_without_time", "{kind: pde, pde: darcy, estimator: finite_difference, causal_eps: 1}",
         words=["s.yaml", "task.causal_eps", "time"])
pde_case("pde_collocation_beyond_int64", "{kind: pde, pde: burgers, estimator: finite_difference, collocation: "
         + "1" + "0" * 30 + "}", words=["s.yaml", "task.collocation"])
pde_case("pde_input_warp_center", "{kind: pde, pde: burgers, estimator: finite_difference, "
         "input_warp: {x: {width: 0.1, center: 3}}}", words=["s.yaml", "task.input_warp.x.center", "-1 .. 1"])
pde_case("pde_autograd_in_situ", extra=["--set", "task.estimator=autograd"], words=["s.yaml", "task.estimator", "fo"])
pde_case("pde_intensity_readout", extra=["--set", "training.readout=intensity"],
         words=["s.yaml", "overrides.training.readout", "coherent"])


def _write(root: Path, files: dict) -> Path:
    base = {"s.yaml": TINY, "dev.yaml": DEV, "acc.yaml": ACC, "rec.yaml": REC}
    for name, content in {**base, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root / "s.yaml"


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _setup(tmp_path: Path, name: str) -> tuple[list[str], list[str]]:
    files, argv, words = CASES[name]
    sc = _write(tmp_path / "in", files)
    (tmp_path / "runs").mkdir()
    out = tmp_path / "runs" / "out"
    return [a.replace("{sc}", str(sc)).replace("{out}", str(out)) for a in argv], words


def _check_line(err: str, out: str, words: list[str]) -> None:
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines[:5]
    line = lines[0]
    assert len(line) <= MAX_LINE, line[:200]
    assert SECRET not in line, line
    for word in words:
        assert word in line, (word, line)


def _expect_refused(argv: list[str], words: list[str], root: Path, capsys, state) -> None:
    """``main(argv)`` exits 2 with one clean line naming ``words``, in seconds, and ``state(root)``
    (what is on disk under ``root``) is what it was before."""
    capsys.readouterr()
    before = state(root)
    t0 = time.perf_counter()
    rc = main(argv)
    elapsed = time.perf_counter() - t0
    captured = capsys.readouterr()
    assert rc == 2, captured.err[-500:]
    _check_line(captured.err, captured.out, words)
    assert state(root) == before
    assert elapsed < MAX_SECONDS, f"{elapsed:.1f} s"


@pytest.fixture(scope="module", autouse=True)
def _warm():
    """Import everything a run loads once, so each case's time is its own."""
    assert main(["validate", str(REPO / "scenarios" / "quickstart.yaml")]) == 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_exits_2_with_one_line_and_writes_nothing(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default runs/ would land here, inside the snapshot
    argv, words = _setup(tmp_path, name)
    _expect_refused(argv, words, tmp_path, capsys, _snapshot)


def test_sweep_has_at_least_70_cases_over_every_kind_of_input():
    kinds = {name.split("_")[0] for name in CASES}
    assert len(CASES) >= 70
    assert {"sc", "dev", "acc", "rec", "data", "set", "grid", "compare", "sweep", "run"} <= kinds


@pytest.mark.parametrize("name", ["sc_billion_laughs", "dev_secret_text", "data_truncated_gz", "set_too_long",
                                  "compare_seeds_zero"])
def test_malformed_input_as_a_real_process(name, tmp_path):
    argv, words = _setup(tmp_path, name)
    before = _snapshot(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "photonic_sim.cli", *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr[-500:]
    _check_line(proc.stderr, proc.stdout, words)
    assert _snapshot(tmp_path) == before


# Output locations and resume (issue 21 items 1, 3, 5): each prepared in the runs/ folder by a
# small function, then the same checks (exit 2, one line naming --out or the file, nothing
# written, seconds).
def _dangling(runs: Path) -> None:
    (runs / "out").symlink_to(runs / "nowhere")


def _symlink_to_file(runs: Path) -> None:
    (runs / "file").write_text("x")
    (runs / "out").symlink_to(runs / "file")


def _out_is_file(runs: Path) -> None:
    (runs / "out").write_text("not a folder")


def _finished_run(runs: Path) -> None:
    (runs / "out").mkdir()
    (runs / "out" / "report.json").write_text("{}")


def _garbage_checkpoint(runs: Path) -> None:
    (runs / "out" / "checkpoint").mkdir(parents=True)
    (runs / "out" / "checkpoint" / "checkpoint.pt").write_bytes(b"\x80\x04garbage" + SECRET.encode())


def _truncated_checkpoint(runs: Path) -> None:
    import io

    import torch

    buf = io.BytesIO()
    torch.save({"step": 1, "params": torch.zeros(3)}, buf)
    (runs / "out" / "checkpoint").mkdir(parents=True)
    (runs / "out" / "checkpoint" / "checkpoint.pt").write_bytes(buf.getvalue()[:40])


RUN_OUT = ["run", "{sc}", "--out", "{out}", "--no-progress"]
OUT_CASES = {
    "out_dangling_symlink": (_dangling, RUN_OUT, ["--out"]),
    "out_symlink_to_file": (_symlink_to_file, RUN_OUT, ["--out"]),
    "out_is_a_file": (_out_is_file, RUN_OUT, ["--out"]),
    "out_name_too_long": (None, ["run", "{sc}", "--out", "{runs}/" + "x" * 300, "--no-progress"], ["--out"]),
    "out_under_proc": (None, ["run", "{sc}", "--out", "/proc/photonic-sim-out", "--no-progress"], ["--out"]),
    "out_under_sys": (None, ["run", "{sc}", "--out", "/sys/photonic-sim-out", "--no-progress"], ["--out"]),
    "out_finished_run_without_overwrite": (_finished_run, RUN_OUT, ["--out"]),
    "resume_without_checkpoint": (None, RUN_OUT + ["--resume"], ["--resume"]),
    "resume_garbage_checkpoint": (_garbage_checkpoint, RUN_OUT + ["--resume"], ["checkpoint"]),
    "resume_truncated_checkpoint": (_truncated_checkpoint, RUN_OUT + ["--resume"], ["checkpoint"]),
    "sweep_out_dangling_symlink": (_dangling, ["sweep", "{sc}", "--out", "{out}", "--grid", "seed=1,2"], ["--out"]),
    "compare_out_is_a_file": (_out_is_file, ["compare", "{sc}", "--out", "{out}", "--strategies", "spsa",
                                             "--seeds", "1"], ["--out"]),
}


@pytest.mark.parametrize("name", sorted(OUT_CASES))
def test_bad_output_location_exits_2_before_training_and_writes_nothing(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prepare, argv, words = OUT_CASES[name]
    sc = _write(tmp_path / "in", {})
    runs = tmp_path / "runs"
    runs.mkdir()
    if prepare:
        prepare(runs)
    argv = [a.replace("{sc}", str(sc)).replace("{out}", str(runs / "out")).replace("{runs}", str(runs))
            for a in argv]
    _expect_refused(argv, words, tmp_path, capsys, _left_behind)  # a lock taken and dropped leaves nothing


def _left_behind(root: Path) -> dict:
    """Every entry under ``root``: files by size and mtime, links by target, folders by name."""
    out = {}
    for p in root.rglob("*"):
        key = str(p.relative_to(root))
        if p.is_symlink():
            out[key] = ("link", str(p.readlink()))
        elif p.is_file():
            out[key] = (p.stat().st_size, p.stat().st_mtime_ns)
        else:
            out[key] = "dir"
    return out
