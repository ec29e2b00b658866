"""Which options a resumed run continues with: ``rosettamt-train hydra.run.dir=RUN trainer.resume=true``.

A resume command that selects no config group (``experiment=``, ``model=`` ...) continues RUN with
the options it was started with (``RUN/config.yaml``, written at every start) and the command's own
``key=value`` overrides on top, instead of the packaged defaults. The :data:`LOCATIONS` are the
exception: a run folder is data, so where to read, download or cache comes from the command line
only, and a config.yaml that names other places is one error that prints the command to run.
A command that selects a group is taken as written (the checkpoint must then fit it), as is every
config built outside the CLI.
"""

from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path
from typing import Any, List, Optional

from rosettamt import config as C
from rosettamt.errors import UserError

log = logging.getLogger("rosettamt.train")

# What a run folder's config.yaml may not choose: where data is read from or downloaded, where caches
# go. (trainer.resume_from is never taken from it either: a resume continues RUN's own last.pt.)
LOCATIONS = ("data.dir", "data.download", "data.url", "data.hub_name", "data.hub_config", "data.hub_revision",
             "data.files", "data.pair_files", "data.cache_dir")


def resumed_config(cfg: C.TrainConfig, run_dir: Path, overrides: Optional[List[str]],
                   world_size: int = 1) -> C.TrainConfig:
    """The config a resume command means (see the module doc); ``overrides``: the command line's
    key=value overrides (None: not the CLI, ``cfg`` as given)."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    from rosettamt.paths import config_dir

    saved = Path(run_dir) / "config.yaml"
    if overrides is None or not cfg.trainer.resume or cfg.trainer.resume_from or not saved.is_file():
        return cfg
    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    keys = [o.split("=", 1)[0].lstrip("+") for o in overrides if not o.startswith("hydra.")]
    if any(k in groups or k.startswith("~") for k in keys):
        return cfg
    current = OmegaConf.create(C.to_dict(cfg))
    named = [loc for loc in LOCATIONS if any(k == loc or k.startswith(loc + ".") for k in keys)]
    try:
        base = OmegaConf.load(saved)
        if not isinstance(base, DictConfig):
            raise ValueError(f"a {type(base).__name__}, not a mapping of options")
        unnamed = [(loc, _plain(OmegaConf.select(base, loc))) for loc in LOCATIONS if loc not in named]
        for key in [*keys, *LOCATIONS, "trainer.resume_from"]:  # locations: the command's, whole
            OmegaConf.update(base, key, OmegaConf.select(current, key), merge=False, force_add=True)
        merged = C.to_object(OmegaConf.merge(OmegaConf.structured(C.TrainConfig), base))
    except (OmegaConfBaseException, YAMLError, ValueError, TypeError, OSError) as err:  # not YAML, not the schema
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{saved}: cannot continue the run with its own options ({first}); give them on the "
                        "command line as when it started") from None
    missing = [(loc, value) for loc, value in unnamed if value != _plain(OmegaConf.select(current, loc))]
    if missing:  # what to read, download or cache: the user's words, never the folder's
        raise UserError(f"{saved} names data or cache locations that this command does not; "
                        + _what_to_run(overrides, missing, run_dir, world_size))
    changed = [k for k in keys if k != "trainer.resume"]
    log.info("resuming %s with the options it was started with (%s)%s", run_dir, saved.name,
             f"; this command sets {', '.join(changed)}" if changed else "")
    return merged


def _what_to_run(overrides: List[str], missing: List[tuple], run_dir: Path, world_size: int) -> str:
    """The command that resumes with the folder's locations named, each one checked to parse back
    (Hydra's grammar) to the folder's value; a value that cannot be shown is asked for by name."""
    prog = "rosettamt-train" if world_size == 1 else f"torchrun --nproc_per_node={world_size} -m rosettamt.train"
    given = [shlex.quote(o) for o in overrides if not o.startswith(("hydra.", "trainer.resume="))]
    shown = [(loc, hydra_override(loc, value)) for loc, value in missing]
    unshowable = [loc for loc, text in shown if text is None]
    if unshowable:
        return f"name {', '.join(unshowable)} on the command line to continue"
    rel = os.path.relpath(run_dir)
    where = hydra_override("hydra.run.dir", str(run_dir) if rel.startswith("..") else rel) or "hydra.run.dir=RUN"
    return "name them to continue: " + " ".join([prog, *given, *(t for _, t in shown), where, "trainer.resume=true"])


def hydra_override(key: str, value: Any) -> Optional[str]:
    """``key=value`` as a shell-quoted Hydra override that parses back to exactly ``value``
    (strings quoted, ``null``, lists, mappings; ``++`` for a mapping); None when there is none
    (control characters, keys Hydra cannot spell)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    def render(v: Any) -> str:
        if v is None or isinstance(v, bool):
            return {None: "null", True: "true", False: "false"}[v]
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, dict):
            return "{" + ",".join(f"{k}:{render(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ",".join(render(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    text = f"{'++' if isinstance(value, dict) else ''}{key}={render(value)}"
    if not text.isprintable() or "${" in text:  # Hydra would resolve ${...} even inside quotes
        return None
    try:
        back = OverridesParser.create().parse_override(text).value()
    except Exception:  # noqa: BLE001 - anything Hydra cannot parse: ask for the option by name instead
        return None
    return shlex.quote(text) if _plain(back) == value else None


def _plain(value: Any) -> Any:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if type(value).__name__ == "QuotedString" else value
