"""The one decorator every command uses: Hydra app + typed config + one-line errors."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rosettamt.config import register_schemas, to_object
from rosettamt.errors import UserError
from rosettamt.paths import config_dir

register_schemas()


def reject_overrides(argv: List[str], rejected: Dict[str, str]) -> None:
    """One-line error for overrides of keys under a node that is null by default (Hydra answers
    those with an AssertionError traceback): ``rejected`` maps a key prefix to what to use instead."""
    for arg in argv:
        key = arg.split("=", 1)[0].lstrip("+~")
        for prefix, instead in rejected.items():
            if key.startswith(prefix):
                print(f"rosettamt: error: {arg}: {instead}", file=sys.stderr)
                sys.exit(2)


def hydra_command(config_name: str, rejected: Optional[Dict[str, str]] = None
                  ) -> Callable[[Callable[[Any, Path], Any]], Callable[[], None]]:
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

        if not rejected:
            return _main

        @functools.wraps(_main)
        def _checked() -> None:
            reject_overrides(sys.argv[1:], rejected)
            _main()

        return _checked

    return wrap
