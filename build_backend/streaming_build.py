"""The build backend: setuptools, told whether it builds an editable install.

This repository holds two distributions: ``django-streaming-app`` (the Django app,
``pyproject.toml`` here) and ``streaming-app-client`` (``clients/python/``), which ships
the modules a client needs (``streaming_app.client``, ``.protocol``, ``.exceptions``,
``.flow``) and which the app depends on. A wheel or sdist of the app leaves those modules
out and requires the client at the same version. An editable install serves this whole
source tree, those modules included, so it asks for the client's own dependencies
instead: ``pip install -e ".[dev]"`` keeps working from a clone with nothing published.

pip runs each hook in a fresh process, so the environment variable set here reaches
``setup.py`` for that hook only.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401  (the hooks passed through unchanged)
    build_sdist,
    build_wheel,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

EDITABLE = "STREAMING_APP_EDITABLE_BUILD"


def _editable() -> None:
    os.environ[EDITABLE] = "1"


def get_requires_for_build_editable(config_settings: Any = None) -> list[str]:
    _editable()
    return _setuptools.get_requires_for_build_editable(config_settings)


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: Any = None) -> str:
    _editable()
    return _setuptools.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_editable(wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None) -> str:
    _editable()
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
