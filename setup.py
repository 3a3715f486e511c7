"""Lists the packages under the one import name `faultbed` (metadata is in pyproject.toml).

The repository keeps cluster/, nemesis/ and checkers/ at its top; pyproject.toml's package-dir maps
them to faultbed.cluster, faultbed.nemesis and faultbed.checkers, and this finds their subpackages.
"""

from setuptools import find_packages, setup

ROOTS = {"faultbed": "faultbed", "faultbed.cluster": "cluster", "faultbed.nemesis": "nemesis",
         "faultbed.checkers": "checkers"}


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(folder) if f"{name}.{sub}" not in ROOTS)
    return sorted(set(found))


setup(packages=packages())
