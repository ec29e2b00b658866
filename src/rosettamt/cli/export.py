"""rosettamt-export (Hydra app; config: configs/export.yaml).

    rosettamt-export run_dir=outputs/RUN format=ctranslate2 output=exports/en_de-ct2
    rosettamt-export checkpoint=PATH format=ctranslate2 quantization=int8 output=exports/en_de-ct2-int8
    rosettamt-export run_dir=outputs/RUN format=hf output=exports/en_de-hf
    rosettamt-export run_dir=outputs/RUN format=argos output=exports/argos overwrite=true
"""

from __future__ import annotations

from pathlib import Path

from rosettamt.cli._app import hydra_command
from rosettamt.config import ExportConfig


@hydra_command("export")
def main(cfg: ExportConfig, run_dir: Path) -> None:
    from rosettamt.export import export  # torch and the engines load only once the options are valid

    export(cfg)


if __name__ == "__main__":
    main()
