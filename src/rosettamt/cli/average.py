"""rosettamt-average (Hydra app; config: configs/average.yaml).

    rosettamt-average run_dir=outputs/myrun last=5          # the last 5 periodic checkpoints
    rosettamt-average run_dir=outputs/myrun best=3          # the 3 best by validation BLEU
    rosettamt-average 'inputs=[a.pt,b.pt,c.pt]' output=avg.pt
"""

from __future__ import annotations

import logging
from pathlib import Path

from rosettamt.atomic import unwritable_reason
from rosettamt.cli._app import hydra_command
from rosettamt.config import AverageConfig
from rosettamt.errors import UserError

log = logging.getLogger("rosettamt.average")


@hydra_command("average")
def main(cfg: AverageConfig, run_dir: Path) -> None:
    from rosettamt.checkpoint import checkpoint_dir, save_checkpoint
    from rosettamt.train.average import average_checkpoints, select_checkpoints

    if cfg.inputs:
        if cfg.run_dir or cfg.last or cfg.best:
            raise UserError("give either inputs=[...] or run_dir= with last=N / best=N, not both")
        paths = [Path(p) for p in cfg.inputs]
        default_out = None
    elif cfg.run_dir:
        if not Path(cfg.run_dir).is_dir():
            raise UserError(f"run_dir={cfg.run_dir}: no such directory")
        paths = select_checkpoints(Path(cfg.run_dir), last=cfg.last, best=cfg.best)
        default_out = checkpoint_dir(Path(cfg.run_dir)) / (f"averaged-last{cfg.last}.pt" if cfg.last
                                                          else f"averaged-best{cfg.best}.pt")
    else:
        raise UserError("nothing to average: give run_dir=DIR with last=N or best=N, or inputs=[a.pt,b.pt,...]")
    output = Path(cfg.output) if cfg.output else default_out
    if output is None:
        raise UserError("with inputs=[...] give output=PATH for the averaged checkpoint")
    if output.resolve() in {p.resolve() for p in paths}:
        raise UserError(f"output={output} is one of the inputs; choose another path")
    if output.is_dir():
        raise UserError(f"output={output} is a directory; give a file name")
    if unwritable_reason(output.parent):  # checked before anything is loaded
        raise UserError(f"output={output}: {unwritable_reason(output.parent)}")
    check_replaceable(output)
    averaged = average_checkpoints(paths)
    save_checkpoint(averaged, output, named=cfg.output is not None)
    log.info("averaged %d checkpoints (%s) -> %s", len(paths), ", ".join(str(p) for p in paths), output)
    print(output)


def check_replaceable(output: Path) -> None:
    """An existing output= is replaced only when it is an earlier average (a checkpoint made by
    averaging, without training state): never a file the run keeps (last.pt, a checkpoint named
    in index.json), never another checkpoint, never a file that is not a checkpoint."""
    from rosettamt.checkpoint import TRAINING_KEYS, load_checkpoint, read_index

    if output.is_symlink() or not output.is_file():  # absent, or a device / FIFO the user named
        return
    index = read_index(output.parent) if (output.parent / "index.json").is_file() else {}
    listed = {e.get("file") for key in ("best", "periodic", "averaged", "averaged_best", "selected", "last")
              for e in (index.get(key) if isinstance(index.get(key), list) else [index.get(key)])
              if isinstance(e, dict)}
    in_run = bool(index) or output.parent.name == "checkpoints"  # a run's folder: its last.pt is the run's
    if output.name in listed or (output.name == "last.pt" and in_run):
        raise UserError(f"output={output} is one of its run's checkpoints (last.pt or named in index.json); "
                        "choose another output=")
    try:
        existing = load_checkpoint(output)
    except UserError as err:
        raise UserError(f"output={output} exists and cannot be replaced: {err}") from None
    if any(key in existing for key in TRAINING_KEYS):
        raise UserError(f"output={output} holds training state (a run resumes from it); choose another output=")
    if "averaged_from" not in existing:
        raise UserError(f"output={output} is a checkpoint, not an earlier average; choose another output=")

if __name__ == "__main__":
    main()
