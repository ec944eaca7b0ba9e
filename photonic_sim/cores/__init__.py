"""photonic_sim.cores"""
