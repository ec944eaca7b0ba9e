"""photonic_sim.training"""
