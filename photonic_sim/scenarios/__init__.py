"""photonic_sim.scenarios"""
