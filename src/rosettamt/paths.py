"""Where the packaged YAML configs are, whatever the working directory."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> Path:
    """The ``configs/`` directory: inside the installed package, or the repository's own.

    A regular install carries the configs as ``rosettamt/configs`` (see
    pyproject.toml); an editable install points back at the repository, where
    they sit at the top level.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parents[1] / "configs"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"rosettamt configs not found next to {here}; reinstall the package")
