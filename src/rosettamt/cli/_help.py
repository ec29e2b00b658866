"""``--help`` for every command: its usage (the command module's docstring), the config groups
that command takes (Hydra's own help lists every group in configs/, most of which the other
commands refuse), then the composed config.

configs/hydra/help/rosettamt.yaml asks for ``${rosettamt_help:}``; the resolver below fills it in
for the command being run (the decorator registers it with its own config name, so a user's
``-cn`` config extending the command's still gets the command's help), with the options Hydra's
config search path knows (a user's ``-cd`` presets included).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from typing import Dict, List

from omegaconf import OmegaConf

from rosettamt.paths import config_dir


def accepted_groups(config_name: str) -> Dict[str, List[str]]:
    """The config groups ``configs/<config_name>.yaml`` lists in its defaults (the ones a
    ``GROUP=OPTION`` override may change), each with the options found in configs/<group>/."""
    raw = OmegaConf.to_container(OmegaConf.load(config_dir() / f"{config_name}.yaml"), resolve=False)
    groups: Dict[str, List[str]] = {}
    for entry in raw.get("defaults", []):  # type: ignore[union-attr]
        if not isinstance(entry, dict):
            continue  # the schema, _self_
        for key in entry:
            name = str(key).removeprefix("optional ").strip()
            if name.startswith(("override ", "hydra/")):
                continue
            groups[name] = group_options(name)
    return groups


def optional_groups(config_name: str) -> Dict[str, List[str]]:
    """Groups a command's schema has a field for but its defaults leave out (rosettamt-evaluate's
    ``data``: the checkpoint's own data config unless ``+data=NAME`` adds one)."""
    from rosettamt.config import SCHEMAS

    schema = SCHEMAS.get(f"{config_name}_schema")
    fields = {f.name for f in dataclasses.fields(schema)} if schema is not None else set()
    taken = accepted_groups(config_name)
    return {name: group_options(name) for name in sorted(fields - set(taken))
            if (config_dir() / name).is_dir()}


def group_options(group: str) -> List[str]:
    """The options of a config group: what Hydra's search path holds while a command runs (a
    user's ``-cd DIR`` presets too), else the packaged configs/<group>/."""
    try:
        from hydra.core.global_hydra import GlobalHydra

        if GlobalHydra.instance().is_initialized():
            return sorted(GlobalHydra.instance().config_loader().get_group_options(group))
    except Exception:  # help must print whatever Hydra's internals do
        pass
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def group_error_hint(config_name: str, message: str) -> str:
    """Hydra's "Could not override 'model'. No match in the defaults list." for a command that
    has no such group, said in the command's terms."""
    found = re.match(r"Could not override '([^']+)'\. No match in the defaults list", message)
    if not found:  # "In 'experiment/x': ..." is about a config file, not the command line
        return message
    group = found.group(1)
    groups = ", ".join(accepted_groups(config_name)) or "none"
    if group in optional_groups(config_name):
        return (f"rosettamt-{config_name} takes {group} only as +{group}=OPTION (its config groups: {groups}; "
                f"see rosettamt-{config_name} --help)")
    return (f"rosettamt-{config_name} takes no {group}= (its config groups: {groups}; "
            f"see rosettamt-{config_name} --help)")


def command_help(config_name: str) -> str:
    """The text above ``== Config ==`` in ``rosettamt-<config_name> --help``."""
    module = importlib.import_module(f"rosettamt.cli.{config_name}")
    usage = (module.__doc__ or f"rosettamt-{config_name}").strip()
    groups, optional = accepted_groups(config_name), optional_groups(config_name)
    lines = [usage, "", "== Configuration groups =="]
    if groups:
        lines.append("Choose an option of a group with GROUP=OPTION:")
        lines += [f"  {name}: {', '.join(options)}" for name, options in groups.items()]
    else:
        lines.append(f"rosettamt-{config_name} takes no config group; set options with KEY=VALUE.")
    if optional:
        lines.append("Added only when given, with +GROUP=OPTION:")
        lines += [f"  +{name}: {', '.join(options)}" for name, options in optional.items()]
    return "\n".join(lines).replace("$", "$$")  # the help template is a string.Template


def register_help_resolver(config_name: str) -> None:
    """``${rosettamt_help:}`` is this command's help from now on (one command runs per process;
    tests that run several in one process re-register it each time)."""
    OmegaConf.register_new_resolver("rosettamt_help", lambda: command_help(config_name), replace=True)
