"""Every command is a Hydra app that finds its configs through the package, from any directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["prepare", "train", "evaluate", "translate", "average"]


def run(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", [*COMMANDS, "export", "serve"])
def test_console_script_help_shows_usage_and_only_the_groups_the_command_takes(name, tmp_path):
    from rosettamt.cli._help import accepted_groups

    exe = shutil.which(f"rosettamt-{name}")
    assert exe, f"console script rosettamt-{name} is not installed"
    res = run([exe, "--help"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"rosettamt-{name} (Hydra app; config: configs/{name}.yaml")  # the usage
    section = res.stdout.split("== Configuration groups ==\n", 1)[1].split("\n\n", 1)[0].splitlines()
    listed = {line.split(":")[0].strip(): line.split(":")[1].strip() for line in section[1:]
              if line.startswith("  ") and not line.startswith("  +")}  # +GROUP: only evaluate's +data
    expected = accepted_groups(name)
    assert listed == {group: ", ".join(options) for group, options in expected.items()}
    assert ("decode" in listed) == (name != "prepare" and name != "average")
    assert ("model" in listed) == (name == "train")
    assert "== Config ==" in res.stdout and not (tmp_path / "outputs").exists()


def test_help_of_a_users_own_config_is_the_commands_with_the_users_presets(tmp_path):
    """rosettamt-train -cd MYCONF -cn mytrain, where mytrain.yaml extends train and MYCONF/model/
    holds a preset of the user's: the help is rosettamt-train's and lists that preset."""
    (tmp_path / "model").mkdir()
    (tmp_path / "mytrain.yaml").write_text("defaults:\n  - train\n  - _self_\n")
    (tmp_path / "model" / "mine.yaml").write_text("d_model: 64\n")
    res = run([sys.executable, "-m", "rosettamt.train", "-cd", str(tmp_path), "-cn", "mytrain", "--help"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("rosettamt-train (Hydra app")
    assert "  model: base, mine, multi30k_tiny, small, tiny\n" in res.stdout


def test_a_group_the_command_does_not_take_is_named_in_one_line(tmp_path):
    res = run([sys.executable, "-m", "rosettamt.prepare", "model=tiny"], tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == ("rosettamt: error: rosettamt-prepare takes no model= (its config groups: data, "
                                  "tokenizer; see rosettamt-prepare --help)")


@pytest.mark.parametrize("module,key,override", [
    ("rosettamt.prepare", "tokenizer:", "tokenizer.vocab_size=1234"),
    ("rosettamt.train", "trainer:", "decode.beam_size=1234"),
    ("rosettamt.evaluate", "split:", "decode.beam_size=1234"),
    ("rosettamt.translate", "show_attention:", "decode.beam_size=1234"),
])
def test_python_dash_m_composes_config_from_any_directory(module, key, override, tmp_path):
    res = run([sys.executable, "-m", module, "--cfg", "job", override], tmp_path)
    assert res.returncode == 0, res.stderr
    assert key in res.stdout and ": 1234" in res.stdout
    assert not (tmp_path / "outputs").exists()  # --cfg only prints


def test_unknown_key_is_rejected_by_hydra_before_anything_runs(tmp_path):
    res = run([sys.executable, "-m", "rosettamt.train", "trainer.max_stepz=5"], tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == "rosettamt: error: trainer.max_stepz: Key 'max_stepz' not in 'TrainerConfig'"
    assert not (tmp_path / "outputs").exists()


def test_a_new_entry_of_a_mapping_option_says_how_to_add_it(tmp_path):
    res = run([sys.executable, "-m", "rosettamt.train", "data.files.train=[a,b]"], tmp_path)  # data=multi30k
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip() == ("rosettamt: error: data.files.train: Key 'train' is not in struct; data.files has "
                                  "no such entry yet: add it with +data.files.train=...")


def test_evaluate_takes_data_keys_as_typed_for_training(tmp_path):
    """evaluate's data node is null (a checkpoint only says which language pair), yet data.dir=... (the
    spelling of data_dir= that training uses) and other data.* keys are taken, not a traceback."""
    res = run([sys.executable, "-m", "rosettamt.evaluate", "checkpoint=x.pt", "data.dir=corpus",
               "+data.files.test=[a,b]"], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == "rosettamt: error: checkpoint=x.pt: no such file"


def test_multirun_sweeps_into_outputs_multirun(toy_files, tmp_path):
    train_src, train_tgt = toy_files["train"]
    res = run([sys.executable, "-m", "rosettamt.prepare", "-m", "data=files", f"data.files.train=[{train_src},{train_tgt}]",
               "data.val_split=", "data.test_splits=[]", "data.cache_dir=cache", "tokenizer.vocab_size=60,70"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("vocab size 60") == 1 and res.stdout.count("vocab size 70") == 1
    jobs = sorted(p.name for p in (tmp_path / "outputs" / "multirun").glob("*/*/*") if p.is_dir())
    assert jobs == ["0", "1"]


@pytest.mark.slow
def test_regular_wheel_install_carries_the_configs(tmp_path):
    """A non-editable install must find configs inside the package, not in the repository."""
    pytest.importorskip("hatchling")
    wheels = tmp_path / "wheels"
    res = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
              tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    (wheel,) = wheels.glob("rosettamt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "rosettamt/configs/train.yaml" in names and "rosettamt/configs/model/multi30k_tiny.yaml" in names
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)  # a wheel is a zip of the installed files
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = "import rosettamt.paths as p; print(p.__file__); print(p.config_dir())"
    res = run([sys.executable, "-c", code], tmp_path, env=env)
    module_file, configs = res.stdout.split()
    assert Path(module_file).is_relative_to(target) and Path(configs) == target / "rosettamt" / "configs"
    res = run([sys.executable, "-c", "from rosettamt.cli.train import main; import sys; sys.argv=['x','--cfg','job']; main()"],
              tmp_path, env=env)
    assert res.returncode == 0 and "d_model: 256" in res.stdout, res.stderr
