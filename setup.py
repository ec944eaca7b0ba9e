"""Package layout that pyproject.toml cannot say on its own (all metadata is in pyproject.toml).

The built-in libraries stay at the top of the repository (``devices/``, ``accelerators/``,
``training/``, ``scenarios/``: they are the source); a wheel carries them as
``photonic_sim/builtin/<kind>/*.yaml``. ``photonic_sim.library`` finds them there in an
installed package and at the top of the checkout otherwise (editable installs included).
"""

from setuptools import find_namespace_packages, setup

BUILTIN = ("devices", "accelerators", "training", "scenarios")

setup(
    packages=[
        *find_namespace_packages(include=["photonic_sim", "photonic_sim.*"], exclude=["*.__pycache__"]),
        *(f"photonic_sim.builtin.{kind}" for kind in BUILTIN),
    ],
    package_dir={f"photonic_sim.builtin.{kind}": kind for kind in BUILTIN},
    package_data={
        "photonic_sim": ["**/*.json", "**/*.c", "**/*.h"],
        **{f"photonic_sim.builtin.{kind}": ["*.yaml"] for kind in BUILTIN},
    },
)
