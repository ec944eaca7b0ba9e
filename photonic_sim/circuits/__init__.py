"""photonic_sim.circuits: MZI meshes (Clements, Reck), unitary decomposition, SVD blocks.

The simphony bridge (``photonic_sim.circuits.simphony_bridge``) is imported on its own: it
needs the optional ``simphony`` dependency.
"""

from photonic_sim.circuits.decompose import decompose
from photonic_sim.circuits.mesh import ClementsMesh, Column, Mesh, ReckMesh
from photonic_sim.circuits.svd import SVDBlock, attenuator_transmission

__all__ = ["ClementsMesh", "Column", "Mesh", "ReckMesh", "SVDBlock", "attenuator_transmission", "decompose"]
