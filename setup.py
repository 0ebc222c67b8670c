"""What the ``django-streaming-app`` distribution ships (see build_backend/streaming_build.py).

Everything under ``streaming_app/`` except the client's modules, which
``streaming-app-client`` (clients/python/) ships and this distribution requires at the
same version; an editable install serves the whole tree and needs no client distribution.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
VERSION = re.search(r'^version = "([^"]+)"', (HERE / "pyproject.toml").read_text(), re.M).group(1)  # type: ignore[union-attr]
EDITABLE = os.environ.get("STREAMING_APP_EDITABLE_BUILD") == "1"

# The server's own requirements. Each range admits the versions tested (docs/packaging.md)
# and stops before the next major or, for Django, before the next feature release.
SERVER_REQUIRES = [
    "Django>=4.2,<6.2",
    "channels>=4.3,<5",
    "daphne>=4.2,<5",
    "channels-redis>=4.3,<5",
    "djangorestframework>=3.16,<4",
    "prometheus-client>=0.20,<1",  # streaming_app.metrics
]
# Kept in step with clients/python/pyproject.toml's dependencies.
CLIENT_OWN_REQUIRES = ["websockets>=14,<18"]

# What streaming-app-client ships (clients/python/streaming_app/ links to these).
CLIENT_PACKAGES = {"streaming_app.client", "streaming_app.protocol"}
CLIENT_MODULES = {("streaming_app", "exceptions"), ("streaming_app", "flow")}


class AppOnlyBuildPy(build_py):
    """Leaves the client's top-level modules (exceptions, flow) out of the app's wheel."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        modules = super().find_package_modules(package, package_dir)
        if EDITABLE:
            return modules
        return [m for m in modules if (m[0], m[1]) not in CLIENT_MODULES]


packages = find_packages(include=["streaming_app", "streaming_app.*"])
if not EDITABLE:
    packages = [
        p for p in packages if not any(p == c or p.startswith(c + ".") for c in CLIENT_PACKAGES)
    ]

setup(
    packages=packages,
    # py.typed comes with the client distribution, which every install of the app has.
    package_data={"streaming_app": ["templates/**/*", "static/**/*"] + (["py.typed"] if EDITABLE else [])},
    install_requires=SERVER_REQUIRES
    + (CLIENT_OWN_REQUIRES if EDITABLE else [f"streaming-app-client=={VERSION}"]),
    cmdclass={"build_py": AppOnlyBuildPy},
)
