"""photonic_sim.devices"""
