"""photonic_sim.devices: device cards and single-device models (batched torch)."""

from typing import TYPE_CHECKING

from photonic_sim._lazy import attach

if TYPE_CHECKING:  # the public names, read by attach(); each loads on first use
    from photonic_sim.devices.cards import (
        DEVICES_DIR,
        UNITS,
        CardError,
        DeviceCard,
        list_device_cards,
        load_device_card,
    )
    from photonic_sim.devices.coupler import DirectionalCoupler
    from photonic_sim.devices.crosstalk import apply_crosstalk, crosstalk_from_card, crosstalk_matrix
    from photonic_sim.devices.detector import Photodetector
    from photonic_sim.devices.mzi import coupler_matrix, db_to_amplitude, mzi_matrix
    from photonic_sim.devices.mzi_device import MZI, MZIStatic
    from photonic_sim.devices.phase_shifter import PhaseShifter, StaticErrors
    from photonic_sim.devices.readout import Readout, ReadoutChain
    from photonic_sim.devices.source import Laser, Modulator, dbm_to_watt, watt_to_dbm

__all__ = [
    "DEVICES_DIR",
    "UNITS",
    "CardError",
    "DeviceCard",
    "DirectionalCoupler",
    "Laser",
    "MZI",
    "MZIStatic",
    "Modulator",
    "PhaseShifter",
    "Photodetector",
    "Readout",
    "ReadoutChain",
    "StaticErrors",
    "apply_crosstalk",
    "coupler_matrix",
    "crosstalk_from_card",
    "crosstalk_matrix",
    "db_to_amplitude",
    "dbm_to_watt",
    "list_device_cards",
    "load_device_card",
    "mzi_matrix",
    "watt_to_dbm",
]

__getattr__, __dir__ = attach(__name__, __file__)
