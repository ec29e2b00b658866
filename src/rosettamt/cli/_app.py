"""The one decorator every command uses: Hydra app + typed config + one-line errors + clean stops.

Every way a command can end is decided here: a UserError is one line ``rosettamt: error: ...``
and exit status 2; Ctrl-C (SIGINT) is one line and 130; SIGTERM is one line and 143 (the
trainer first saves last.pt, see rosettamt/train/interrupt.py). Temp files are removed on the
way out (rosettamt.atomic), so no stop leaves a half-written file in place of a good one.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Callable, List, Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rosettamt.atomic import check_creatable
from rosettamt.cli._help import group_error_hint, register_help_resolver
from rosettamt.config import register_schemas, to_object
from rosettamt.errors import Interrupted, UserError
from rosettamt.paths import config_dir

register_schemas()

ArgvFilter = Callable[[List[str]], List[str]]


def check_run_dir(argv: List[str], config_name: str) -> None:
    """Before Hydra creates the run directory (hydra.run.dir=, or the config's outputs/...): a path
    through a regular file or an unwritable folder is one line here instead of Hydra's traceback."""
    if any(arg.startswith("-") for arg in argv):  # --help, --cfg, -m: Hydra's own modes
        return
    given = [_unquoted(arg.split("=", 1)[1]) for arg in argv if arg.split("=", 1)[0].lstrip("+") == "hydra.run.dir"]
    if given:
        check_creatable(Path(given[-1]), "hydra.run.dir")
        check_no_links(Path(given[-1]).expanduser())
        return
    raw = OmegaConf.to_container(OmegaConf.load(config_dir() / f"{config_name}.yaml"), resolve=False)
    default = str(raw.get("hydra", {}).get("run", {}).get("dir", "."))  # type: ignore[union-attr]
    prefix = default.split("${", 1)[0]  # outputs/${now:...} -> outputs/
    if prefix not in ("", ".", "./"):
        check_creatable(Path(prefix), f"hydra.run.dir={default} (the default)")


def _unquoted(value: str) -> str:
    """A Hydra value as it names a path: ``"outputs/x"`` (a quoted override) is ``outputs/x``."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


# What Hydra and the commands write inside a run folder (Hydra with a plain open(), which follows links)
RUN_FILES = (".hydra", ".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "checkpoints",
             "tensorboard", "metrics.jsonl", "config.yaml", "results.json", "curves.png", "test", "attention")


def check_no_links(run_dir: Path) -> None:
    """An existing run folder (maybe someone else's) must not hold a symbolic link where a command
    writes: through it, files outside the folder would be written or deleted."""
    if not run_dir.is_dir():
        return
    logs = [p.name for p in run_dir.glob("*.log")]
    for name in (*RUN_FILES, *logs):
        if (run_dir / name).is_symlink():
            raise UserError(f"hydra.run.dir={run_dir}: {name} in it is a symbolic link; the commands write this "
                            "folder's files in place and follow no links in it: remove the link")


def _terminate(signum: int, frame: Optional[FrameType]) -> None:
    raise Interrupted(signum)


# options that are mappings: an entry they lack is added with +KEY=VALUE on the command line
MAPPINGS = ("data.files", "data.pair_files", "data.hub_splits")


def config_error_line(err: BaseException) -> str:
    """Hydra's / OmegaConf's multi-line composition error as one line naming the option:
    ``decode.precision: Invalid value 'int4', expected one of [auto, fp32, bf16, int8]``."""
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    key = getattr(cause, "full_key", None)
    if isinstance(cause, OmegaConfBaseException) and key:
        parent = key.rsplit(".", 1)[0]
        if "not in struct" in first and parent in MAPPINGS:  # e.g. data.files.train= with data=multi30k
            return f"{key}: {first}; {parent} has no such entry yet: add it with +{key}=..."
        return f"{key}: {first}"
    options = getattr(err, "options", None)
    if isinstance(err, MissingConfigException) and options:
        return f"{first} (available: {', '.join(options)})"
    if isinstance(err, OverrideParseException):
        return f"cannot parse a command-line override: {first}"
    return first


def _fail(message: str, status: int) -> None:
    print(f"rosettamt: {message}", file=sys.stderr)
    sys.exit(status)


def hydra_command(config_name: str, argv_filter: Optional[ArgvFilter] = None
                  ) -> Callable[[Callable[[Any, Path], Any]], Callable[[], None]]:
    """Turn ``run(cfg: <schema dataclass>, run_dir: Path)`` into a Hydra console script.

    ``argv_filter`` may take arguments out of the command line before Hydra reads it
    (rosettamt-evaluate's ``data.*`` overrides).
    """

    def wrap(run: Callable[[Any, Path], Any]) -> Callable[[], None]:
        @hydra.main(config_path=str(config_dir()), config_name=config_name, version_base="1.3")
        @functools.wraps(run)
        def _main(dcfg: DictConfig) -> None:
            try:
                try:
                    cfg = to_object(dcfg)
                except OmegaConfBaseException as err:  # a value the schema rejects, one line here too
                    raise UserError(config_error_line(err)) from None
                run_dir = Path(HydraConfig.get().runtime.output_dir)
                composed.append(True)  # from here on an OmegaConf error is the code's, not the command line's
                run(cfg, run_dir)
            except UserError as err:
                logging.getLogger("rosettamt").debug("user error", exc_info=True)
                _fail(f"error: {err}", 2)
            except OSError as err:  # the last resort: a file the code did not check first
                if err.filename is None:
                    raise
                logging.getLogger("rosettamt").debug("unchecked OSError", exc_info=True)
                _fail(f"error: {err.filename}: {err.strerror or err}", 2)

        composed: List[bool] = []

        @functools.wraps(_main)
        def _command() -> None:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, _terminate)  # a clean stop: `finally` blocks run, one line
            # Hydra prints composition errors over several lines and exits 1; with HYDRA_FULL_ERROR
            # they reach us instead (unless the user set it: then Hydra's full report, as asked)
            own_report = "HYDRA_FULL_ERROR" not in os.environ
            composed.clear()  # a command may run more than once in one process (tests)
            register_help_resolver(config_name)
            try:
                if argv_filter is not None:
                    sys.argv[1:] = argv_filter(sys.argv[1:])
                check_run_dir(sys.argv[1:], config_name)
                if own_report:
                    os.environ["HYDRA_FULL_ERROR"] = "1"
                _main()
            except (HydraException, OmegaConfBaseException) as err:
                if composed or not own_report:
                    raise
                _fail(f"error: {group_error_hint(config_name, config_error_line(err))}", 2)
            except UserError as err:
                _fail(f"error: {err}", 2)
            except Interrupted as err:
                _fail(str(err), err.exit_status)
            except KeyboardInterrupt:
                _fail("interrupted", 130)
            finally:
                if own_report:
                    os.environ.pop("HYDRA_FULL_ERROR", None)

        return _command

    return wrap
