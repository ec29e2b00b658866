"""``--help`` for every command: its usage (the command module's docstring), the config groups
that command takes (Hydra's own help lists every group in configs/, most of which the other
commands refuse), then the composed config.

configs/hydra/help/rosettamt.yaml asks for ``${rosettamt_help:}``; the resolver below fills it in
for the command being run (Hydra has set its config before it prints the help).
"""

from __future__ import annotations

import importlib
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
            groups[name] = sorted(p.stem for p in (config_dir() / name).glob("*.yaml"))
    return groups


def group_error_hint(config_name: str, message: str) -> str:
    """Hydra's "Could not override 'model'. No match in the defaults list." for a command that
    has no such group, said in the command's terms."""
    if "No match in the defaults list" not in message or "'" not in message:
        return message
    group = message.split("'")[1]
    groups = ", ".join(accepted_groups(config_name)) or "none"
    return (f"rosettamt-{config_name} takes no {group}= (its config groups: {groups}; "
            f"see rosettamt-{config_name} --help)")


def command_help(config_name: str) -> str:
    """The text above ``== Config ==`` in ``rosettamt-<config_name> --help``."""
    module = importlib.import_module(f"rosettamt.cli.{config_name}")
    usage = (module.__doc__ or f"rosettamt-{config_name}").strip()
    groups = accepted_groups(config_name)
    lines = [usage, "", "== Configuration groups =="]
    if groups:
        lines.append("Choose an option of a group with GROUP=OPTION:")
        lines += [f"  {name}: {', '.join(options)}" for name, options in groups.items()]
    else:
        lines.append(f"rosettamt-{config_name} takes no config group; set options with KEY=VALUE.")
    return "\n".join(lines).replace("$", "$$")  # the help template is a string.Template


def _resolve_help() -> str:
    from hydra.core.hydra_config import HydraConfig

    return command_help(HydraConfig.get().job.config_name)


def register_help_resolver() -> None:
    if not OmegaConf.has_resolver("rosettamt_help"):
        OmegaConf.register_new_resolver("rosettamt_help", _resolve_help)
