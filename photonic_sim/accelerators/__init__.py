"""photonic_sim.accelerators"""
