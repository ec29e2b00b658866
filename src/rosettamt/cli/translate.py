"""rosettamt-translate (Hydra app; config: configs/translate.yaml)."""

from __future__ import annotations

from pathlib import Path

from rosettamt.cli._app import hydra_command
from rosettamt.errors import UserError


@hydra_command("translate")
def main(cfg, run_dir: Path) -> None:
    raise UserError("rosettamt-translate is not built yet")


if __name__ == "__main__":
    main()
