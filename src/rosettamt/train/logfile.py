"""train.log in the run directory: rank 0's log records, whether or not Hydra set up the logging."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator, Optional

from rosettamt.atomic import writable_dir

FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's own job log format


def log_to_file(run_dir: Path, is_main: bool) -> Optional[logging.Handler]:
    """Make sure ``run_dir/train.log`` receives rosettamt's records; the handler added, if any.

    Hydra already writes train.log for the CLI; in-process callers (tests, notebooks) get one
    here. Other ranks only log warnings, so that a DDP run prints each line once.
    """
    logger = logging.getLogger("rosettamt")
    if not is_main:
        logger.setLevel(logging.WARNING)
        return None
    writable_dir(Path(run_dir), "hydra.run.dir")  # before any work: a run that cannot save is one line now
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    target = (Path(run_dir) / "train.log").resolve()
    for lg in (logger, logging.getLogger()):
        for h in lg.handlers:
            if isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == target:
                return None
    handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    return handler


@contextlib.contextmanager
def train_log(run_dir: Path, is_main: bool) -> Iterator[None]:
    """:func:`log_to_file` for the duration of a run; the handler is removed and closed after it."""
    handler = log_to_file(run_dir, is_main)
    try:
        yield
    finally:
        if handler is not None:
            logging.getLogger("rosettamt").removeHandler(handler)
            handler.close()
