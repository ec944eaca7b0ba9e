"""photonic_sim.circuits"""
