"""The config groups `--help` lists for a command are exactly the ones that command composes with."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from rosettamt.cli._help import accepted_groups, command_help, group_error_hint
from rosettamt.config import register_schemas
from rosettamt.paths import config_dir

COMMANDS = ["train", "prepare", "evaluate", "translate", "average", "export", "serve"]
GROUPS = sorted(p.name for p in config_dir().iterdir() if p.is_dir() and p.name != "hydra")


def _composes(command: str, override: str) -> bool:
    register_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        try:
            compose(config_name=command, overrides=[override])
        except ConfigCompositionException as err:
            assert "No match in the defaults list" in str(err), err
            return False
    return True


@pytest.mark.parametrize("command", COMMANDS)
def test_listed_groups_are_exactly_the_ones_a_command_composes_with(command):
    register_schemas()
    listed = accepted_groups(command)
    for group in GROUPS:
        options = sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))
        assert (group in listed) == _composes(command, f"{group}={options[0]}"), (command, group)
        if group in listed:
            assert listed[group] == options
    assert "hydra" not in listed and set(listed) <= set(GROUPS)


def test_help_text_is_the_usage_then_the_groups_and_survives_the_template():
    text = command_help("translate")
    assert text.startswith("rosettamt-translate (Hydra app; config: configs/translate.yaml).")
    assert text.endswith("== Configuration groups ==\nChoose an option of a group with GROUP=OPTION:\n"
                         "  decode: beam, greedy")
    assert "takes no config group" in command_help("average")


def test_group_error_hint_rewrites_only_hydras_no_match_message():
    assert group_error_hint("translate", "Could not override 'model'. No match in the defaults list.") == (
        "rosettamt-translate takes no model= (its config groups: decode; see rosettamt-translate --help)")
    for other in ("In 'translate': Could not find 'decode/nope' (available: beam, greedy)",
                  "In 'experiment/multi30k_en_de': Could not override 'model'. No match in the defaults list.",
                  "Could not delete 'model'. No match in the defaults list"):
        assert group_error_hint("translate", other) == other  # about a config file, or not a GROUP=OPTION
    assert group_error_hint("evaluate", "Could not override 'data'. No match in the defaults list.") == (
        "rosettamt-evaluate takes data only as +data=OPTION (its config groups: decode; "
        "see rosettamt-evaluate --help)")


def test_evaluate_lists_the_data_group_it_takes_only_with_a_plus():
    assert "Added only when given, with +GROUP=OPTION:\n  +data: files, hub, multi30k" in command_help("evaluate")
    assert "Added only" not in command_help("translate")
    assert _composes("evaluate", "+data=multi30k") and not _composes("evaluate", "data=multi30k")
