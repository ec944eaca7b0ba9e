"""photonic_sim.reports"""
