"""rosettamt-serve (Hydra app; config: configs/serve.yaml; needs the serve extra).

    rosettamt-serve run_dir=outputs/RUN                    # http://127.0.0.1:5000: the page, /docs
    rosettamt-serve checkpoint=PATH serve.port=8080 serve.api_keys=[secret] decode.beam_size=4
    rosettamt-serve run_dir=outputs/RUN serve.host=0.0.0.0 serve.max_wait_ms=10
"""

from __future__ import annotations

from pathlib import Path

from rosettamt.cli._app import hydra_command
from rosettamt.config import ServeAppConfig


@hydra_command("serve")
def main(cfg: ServeAppConfig, run_dir: Path) -> None:
    from rosettamt.serve.server import run  # FastAPI, uvicorn and torch only after the config is valid

    run(cfg)


if __name__ == "__main__":
    main()
