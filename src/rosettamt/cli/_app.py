"""The one decorator every command uses: Hydra app + typed config + one-line errors."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rosettamt.config import register_schemas, to_object
from rosettamt.errors import UserError
from rosettamt.paths import config_dir

register_schemas()


def hydra_command(config_name: str) -> Callable[[Callable[[Any, Path], Any]], Callable[[], None]]:
    """Turn ``run(cfg: <schema dataclass>, run_dir: Path)`` into a Hydra console script."""

    def wrap(run: Callable[[Any, Path], Any]) -> Callable[[], None]:
        @hydra.main(config_path=str(config_dir()), config_name=config_name, version_base="1.3")
        @functools.wraps(run)
        def _main(dcfg: DictConfig) -> None:
            cfg = to_object(dcfg)
            run_dir = Path(HydraConfig.get().runtime.output_dir)
            try:
                run(cfg, run_dir)
            except UserError as err:
                logging.getLogger("rosettamt").debug("user error", exc_info=True)
                print(f"rosettamt: error: {err}", file=sys.stderr)
                sys.exit(2)
            except KeyboardInterrupt:
                print("rosettamt: interrupted", file=sys.stderr)
                sys.exit(130)

        return _main

    return wrap
