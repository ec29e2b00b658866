"""scripts/quickstart.sh's arguments: the default recipe with its 90-minute cap, or the recipe the user
names at that recipe's own length. The script runs for real with stand-ins for pip and the two
commands on PATH (they record their arguments), and what it hands rosettamt-train is composed with
the real configs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rosettamt import config as C
from rosettamt.paths import config_dir

C.register_schemas()
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "quickstart.sh"


def _quickstart(tmp_path: Path, *args: str) -> list[str]:
    """Run a copy of quickstart.sh in an empty repo; return the arguments rosettamt-train got."""
    repo, bin_dir, log = tmp_path / "repo", tmp_path / "bin", tmp_path / "log"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "scripts" / "quickstart.sh")
    bin_dir.mkdir()
    log.mkdir()
    for name in ("pip", "rosettamt-prepare", "rosettamt-train"):
        stub = bin_dir / name
        stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{log}/{name}.args"\n')
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MULTI30K_DIR": "corpus"}
    proc = subprocess.run(["bash", str(repo / "scripts" / "quickstart.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (log / "rosettamt-prepare.args").read_text().split() == ["data.dir=corpus"]
    return (log / "rosettamt-train.args").read_text().splitlines()


def _composed(args: list[str]) -> C.TrainConfig:
    overrides = [a for a in args if not a.startswith("hydra.")]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return C.to_object(compose(config_name="train", overrides=overrides))


def test_default_is_the_en_de_recipe_capped_at_90_minutes(tmp_path):
    args = _quickstart(tmp_path)
    assert args[:3] == ["experiment=multi30k_en_de", "trainer.max_time=5400", "data.dir=corpus"]
    assert args[3].startswith("hydra.run.dir=outputs/quickstart-")
    cfg = _composed(args)
    assert (cfg.experiment_name, cfg.trainer.max_time, cfg.data.dir) == ("multi30k_en_de", 5400, "corpus")


@pytest.mark.parametrize("extra,max_time,max_steps", [
    (["experiment=multi30k_en_de_fast"], 3600, 4800),  # the recipe's own cap and length
    (["experiment=multi30k_en_de_fast", "trainer.max_time=1800"], 1800, 4800),  # the user's cap wins
    (["model=tiny", "trainer.max_steps=50"], 5400, 50),  # other overrides keep the default recipe
])
def test_named_recipe_runs_at_its_own_length(tmp_path, extra, max_time, max_steps):
    args = _quickstart(tmp_path, *extra)
    assert args[-len(extra):] == extra
    cfg = _composed(args)
    assert (cfg.trainer.max_time, cfg.trainer.max_steps) == (max_time, max_steps)
    named = next((a.split("=", 1)[1] for a in extra if a.startswith("experiment=")), "multi30k_en_de")
    assert cfg.experiment_name == named
