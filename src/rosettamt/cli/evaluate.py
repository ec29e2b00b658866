"""rosettamt-evaluate (Hydra app; config: configs/evaluate.yaml)."""

from __future__ import annotations

from pathlib import Path

from rosettamt.cli._app import hydra_command
from rosettamt.errors import UserError


@hydra_command("evaluate")
def main(cfg, run_dir: Path) -> None:
    raise UserError("rosettamt-evaluate is not built yet")


if __name__ == "__main__":
    main()
