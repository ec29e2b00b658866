"""rosettamt-translate: an interactive prompt on a terminal, a filter on pipes and files.

stdout carries translations and nothing else (the prompt's own chatter, warnings
and plot paths go to stderr), so ``rosettamt-translate ... < in.txt > out.txt``
always gives one output line per input line, in order. Input bytes that are not
UTF-8 are replaced (U+FFFD) with one warning, never a crash.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, TextIO, Tuple

from rosettamt.config import Strategy, TranslateConfig
from rosettamt.errors import UserError

if TYPE_CHECKING:  # torch loads only once the options and the input have been checked
    from rosettamt.translate import Candidate, Translator


def clean_text(text: str) -> str:
    """translate.clean_text, imported on first use (translate.py brings torch)."""
    from rosettamt.translate import clean_text as clean

    return clean(text)

log = logging.getLogger(__name__)

PROMPT = "> "
BLOCK_LINES = 2000  # lines translated (and written) together in pipe mode
HISTORY_FILE = ".rosettamt_history"
HELP = """\
Type a sentence and press Enter to translate it. Commands:
  :beam N          beam size (1 = greedy)
  :greedy          same as :beam 1
  :nbest N         show the N best translations with their scores
  :attn on|off     save a cross-attention heatmap per sentence and show where each word looked
  :layer L         decoder layer whose attention is shown (-1 = last)
  :head H|mean|grid  one head, the mean over heads, or a grid of all heads
  :settings        show the current settings
  :help            this text
  :quit            leave (Ctrl-D and Ctrl-C work too)"""


@dataclass
class Settings:
    """What the prompt's commands change; initialised from the TranslateConfig."""

    beam_size: int = 1
    nbest: int = 1
    show_attention: bool = False
    layer: int = -1
    head: Optional[int] = None
    grid: bool = False

    @classmethod
    def from_config(cls, cfg: TranslateConfig) -> "Settings":
        nbest = cfg.nbest if cfg.nbest != 1 else cfg.decode.nbest
        beam = 1 if cfg.decode.strategy == Strategy.greedy else cfg.decode.beam_size
        if beam < 1:
            raise UserError(f"decode.beam_size={beam}: must be at least 1")
        if nbest < 1:
            raise UserError(f"nbest={nbest}: must be at least 1")
        if nbest > beam:
            log.info("nbest=%d: searching with a beam of %d", nbest, nbest)
            beam = nbest
        return cls(beam, nbest, cfg.show_attention, cfg.attention_layer, cfg.attention_head, cfg.attention_grid)

    def describe(self) -> str:
        head = "grid of all heads" if self.grid else ("mean over heads" if self.head is None else f"head {self.head}")
        search = "greedy" if self.beam_size == 1 else f"beam {self.beam_size}"
        return (f"search: {search}, nbest: {self.nbest}, attention: {'on' if self.show_attention else 'off'} "
                f"(layer {self.layer}, {head})")


# ---------------------------------------------------------------------- input / output


def decode_lines(data: bytes, name: str = "<stdin>") -> List[str]:
    """Split bytes into lines (\\n or \\r\\n); invalid UTF-8 is replaced and warned about once."""
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()  # the final newline ends the last line, it does not start another
    lines, bad = [], []
    for number, chunk in enumerate(raw, 1):
        chunk = chunk[:-1] if chunk.endswith(b"\r") else chunk
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(chunk.decode("utf-8", errors="replace"))
            bad.append(number)
    if bad:
        log.warning("%s: invalid UTF-8 on %d line(s) (first: line %d), replaced by U+FFFD",
                    name, len(bad), bad[0])
    return lines


def format_nbest(line_number: int, candidates: List["Candidate"]) -> List[str]:
    """n-best output: one ``LINE<TAB>SCORE<TAB>TRANSLATION`` row per candidate (LINE from 1)."""
    return [f"{line_number}\t{c.score:.4f}\t{c.text}" for c in candidates]


def _read_input(cfg: TranslateConfig) -> List[str]:
    if cfg.input is None:
        return decode_lines(sys.stdin.buffer.read(), "<stdin>")
    path = Path(cfg.input).expanduser()
    if not path.is_file():
        raise UserError(f"input={cfg.input}: no such file")
    try:
        return decode_lines(path.read_bytes(), str(path))
    except OSError as err:
        raise UserError(f"input={cfg.input}: {err.strerror}") from None


def _open_output(cfg: TranslateConfig) -> TextIO:
    if cfg.output is None:
        if hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(encoding="utf-8")  # whatever the locale says
        return sys.stdout
    path = Path(cfg.output).expanduser()
    if not path.parent.is_dir():
        raise UserError(f"output={cfg.output}: directory {path.parent} does not exist")
    try:
        return open(path, "w", encoding="utf-8", newline="\n")
    except OSError as err:
        raise UserError(f"output={cfg.output}: {err.strerror}") from None


# ---------------------------------------------------------------------- attention


def attention_dir(checkpoint: Optional[Path]) -> Path:
    """Where the heatmaps of a checkpoint go: <run dir>/attention."""
    if checkpoint is None:
        return Path.cwd() / "attention"
    folder = checkpoint.resolve().parent
    return (folder.parent if folder.name == "checkpoints" else folder) / "attention"


class AttentionPlotter:
    """Saves <run dir>/attention/NNN.png for a sentence and returns the text view.

    The run dir is the checkpoint's folder, or its parent for a run's ``checkpoints/`` folder.
    """

    def __init__(self, translator: "Translator", settings: Settings) -> None:
        self.translator = translator
        self.settings = settings
        self.directory = attention_dir(translator.checkpoint_path)

    def __call__(self, sentence: str) -> Tuple[str, Path, str]:
        """(translation, png path, text view) for one sentence."""
        from rosettamt import viz

        s = self.settings
        text, src, tgt, weights = self.translator.translate_with_attention(
            sentence, layer=s.layer, beam_size=s.beam_size)
        layer = s.layer % self.translator.n_decoder_layers
        which = "all heads" if s.grid else ("mean over heads" if s.head is None else f"head {s.head}")
        title = f"cross-attention, decoder layer {layer}, {which}"
        try:
            path = viz.plot_attention(src, tgt, weights, viz.next_plot_path(self.directory),
                                      head=s.head, grid=s.grid, title=title)
        except OSError as err:
            raise UserError(f"cannot write attention plots to {self.directory}: {err.strerror}") from None
        return text, path, viz.text_view(src, tgt, viz.select_heads(weights, s.head))


def check_attention_settings(translator: "Translator", settings: Settings) -> None:
    """Reject a layer or head the model does not have, naming the option."""
    n_layers, n_heads = translator.n_decoder_layers, translator.n_heads
    if not -n_layers <= settings.layer < n_layers:
        raise UserError(f"attention_layer={settings.layer}: the model has {n_layers} decoder layers "
                        f"(0..{n_layers - 1}, or -1 for the last)")
    if settings.head is not None and not 0 <= settings.head < n_heads:
        raise UserError(f"attention_head={settings.head}: the model has {n_heads} heads (0..{n_heads - 1})")


# ---------------------------------------------------------------------- pipe mode


def translate_stream(translator: "Translator", lines: List[str], out: TextIO, settings: Settings,
                     progress: bool = False) -> None:
    """Translate all lines in length-sorted blocks and write them to ``out`` in input order."""
    plotter = AttentionPlotter(translator, settings) if settings.show_attention else None
    for start in range(0, len(lines), BLOCK_LINES):
        block = lines[start:start + BLOCK_LINES]
        if plotter is None or settings.nbest > 1:
            results = translator.translate(block, beam_size=settings.beam_size, nbest=settings.nbest,
                                           progress=progress)
        else:
            results = []
        rows: List[str] = []
        for i, line in enumerate(block):
            number = start + i + 1
            if plotter is not None and settings.nbest == 1 and not clean_text(line):
                results.append("")  # nothing to plot
            elif plotter is not None:
                text, path, view = plotter(line)
                print(f"line {number}: attention plot {path}", file=sys.stderr)
                if sys.stderr.isatty():
                    print(view, file=sys.stderr)
                if settings.nbest == 1:
                    results.append(text)
            result = results[i]
            rows.extend(format_nbest(number, result) if settings.nbest > 1 else [result])
        out.write("".join(row + "\n" for row in rows))
        out.flush()


# ---------------------------------------------------------------------- interactive prompt


class Prompt:
    """A read-translate-print loop with readline editing, history and ':' commands."""

    def __init__(self, translator: "Translator", settings: Settings, history: Optional[Path] = None) -> None:
        self.translator = translator
        self.settings = settings
        self.history = history if history is not None else Path.home() / HISTORY_FILE
        self.commands: Dict[str, Callable[[str], bool]] = {
            "help": self._help, "h": self._help, "?": self._help,
            "quit": self._quit, "q": self._quit, "exit": self._quit,
            "beam": self._beam, "greedy": lambda _: self._beam("1"), "nbest": self._nbest,
            "attn": self._attn, "layer": self._layer, "head": self._head,
            "settings": self._show, "show": self._show,
        }

    def run(self) -> None:
        """Loop until :quit, Ctrl-D or Ctrl-C (all exit normally)."""
        for stream in (sys.stdin, sys.stdout):  # odd bytes or a non-UTF-8 terminal: no crash
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="replace")
        readline = self._setup_readline()
        info = self.translator.checkpoint_info
        pair = f"{info.get('src_lang', '?')} -> {info.get('tgt_lang', '?')}"
        print(f"rosettamt: {pair} ({self.settings.describe()}). "
              "Type a sentence; :help for commands, Ctrl-D to quit.", file=sys.stderr)
        try:
            while True:
                try:
                    line = input(PROMPT)
                except EOFError:
                    print(file=sys.stderr)
                    break
                try:
                    if not self.handle(line):
                        break
                except UserError as err:  # e.g. an unwritable plot folder: say so, keep the prompt
                    print(f"rosettamt: error: {err}", file=sys.stderr)
        except KeyboardInterrupt:
            print(file=sys.stderr)
        finally:
            if readline is not None:
                try:
                    readline.write_history_file(str(self.history))
                except OSError as err:
                    log.debug("history not saved to %s: %s", self.history, err)

    def _setup_readline(self):
        try:
            import readline
        except ImportError:  # e.g. Windows without pyreadline: plain input() still works
            return None
        readline.set_history_length(1000)
        if self.history.is_file():
            try:
                readline.read_history_file(str(self.history))
            except OSError as err:
                log.debug("history not read from %s: %s", self.history, err)
        return readline

    def handle(self, line: str) -> bool:
        """Run one command or translate one line; False means leave."""
        stripped = line.strip()
        if stripped[:1] == ":" and (stripped[1:2].isalpha() or stripped[1:2] == "?"):
            name, _, arg = stripped[1:].partition(" ")
            command = self.commands.get(name.lower())
            if command is None:
                print(f"unknown command :{name} (:help lists them)", file=sys.stderr)
                return True
            return command(arg.strip())
        if clean_text(line):  # a blank line just gives the prompt again
            self.translate(line)
        return True

    def translate(self, line: str) -> None:
        """Print the translation(s) of one line; with attention on, also the text view and plot path."""
        s = self.settings
        started = time.perf_counter()
        if s.show_attention:
            text, path, view = AttentionPlotter(self.translator, s)(line)
            print(text, flush=True)
            print(view, flush=True)
            print(f"attention plot: {path}", file=sys.stderr)
        elif s.nbest > 1:
            for rank, c in enumerate(self.translator.translate([line], beam_size=s.beam_size, nbest=s.nbest)[0], 1):
                print(f"{rank}. ({c.score:.3f}) {c.text}", flush=True)
        else:
            print(self.translator.translate([line], beam_size=s.beam_size)[0], flush=True)
        log.debug("translated in %.3f s", time.perf_counter() - started)

    # commands: each takes the argument text and returns False to leave

    def _help(self, _: str) -> bool:
        print(HELP, file=sys.stderr)
        return True

    def _quit(self, _: str) -> bool:
        return False

    def _show(self, _: str) -> bool:
        print(self.settings.describe(), file=sys.stderr)
        return True

    def _int_arg(self, command: str, arg: str, low: int) -> Optional[int]:
        try:
            value = int(arg)
        except ValueError:
            value = None
        if value is None or value < low:
            print(f":{command} needs a whole number >= {low}, got {arg!r}", file=sys.stderr)
            return None
        return value

    def _beam(self, arg: str) -> bool:
        value = self._int_arg("beam", arg, 1)
        if value is not None:
            self.settings.beam_size = value
            if self.settings.nbest > value:
                self.settings.nbest = value
            self._show("")
        return True

    def _nbest(self, arg: str) -> bool:
        value = self._int_arg("nbest", arg, 1)
        if value is not None:
            self.settings.nbest = value
            self.settings.beam_size = max(self.settings.beam_size, value)
            self._show("")
        return True

    def _attn(self, arg: str) -> bool:
        if arg.lower() not in ("on", "off"):
            print(":attn needs on or off", file=sys.stderr)
            return True
        self.settings.show_attention = arg.lower() == "on"
        self._show("")
        return True

    def _layer(self, arg: str) -> bool:
        n = self.translator.n_decoder_layers
        try:
            value = int(arg)
        except ValueError:
            value = n  # out of range: reported below
        if not -n <= value < n:
            print(f":layer needs a number in {-n}..{n - 1}", file=sys.stderr)
            return True
        self.settings.layer = value
        self._show("")
        return True

    def _head(self, arg: str) -> bool:
        n = self.translator.n_heads
        if arg in ("mean", "grid"):
            self.settings.head, self.settings.grid = None, arg == "grid"
        elif arg.isdigit() and int(arg) < n:
            self.settings.head, self.settings.grid = int(arg), False
        else:
            print(f":head needs mean, grid or a head number 0..{n - 1}", file=sys.stderr)
            return True
        self._show("")
        return True


# ---------------------------------------------------------------------- entry point


def check_checkpoint_options(cfg: TranslateConfig) -> None:
    """Exactly one of checkpoint=PATH / run_dir=DIR, and it exists (no slow imports needed)."""
    if (cfg.checkpoint is None) == (cfg.run_dir is None):
        raise UserError("give exactly one of checkpoint=PATH or run_dir=DIR")
    if cfg.run_dir is not None and not Path(cfg.run_dir).expanduser().is_dir():
        raise UserError(f"run_dir={cfg.run_dir}: no such directory")
    if cfg.checkpoint is not None and not Path(cfg.checkpoint).expanduser().is_file():
        raise UserError(f"checkpoint={cfg.checkpoint}: no such file")


def checkpoint_from_config(cfg: TranslateConfig) -> Path:
    """checkpoint=PATH, or the best checkpoint of run_dir=DIR."""
    check_checkpoint_options(cfg)
    if cfg.run_dir is not None:
        from rosettamt.checkpoint import find_best_checkpoint

        return find_best_checkpoint(Path(cfg.run_dir).expanduser())
    return Path(cfg.checkpoint).expanduser()


def run(cfg: TranslateConfig) -> None:
    """rosettamt-translate: interactive on a terminal, else translate all input lines."""
    settings = Settings.from_config(cfg)
    check_checkpoint_options(cfg)  # bad options fail at once, before torch is imported
    interactive = cfg.input is None and cfg.output is None and sys.stdin.isatty()
    lines: List[str] = []
    if not interactive:  # check input and output before spending time on the model
        lines = _read_input(cfg)
        if cfg.output is not None and not Path(cfg.output).expanduser().parent.is_dir():
            raise UserError(f"output={cfg.output}: directory {Path(cfg.output).parent} does not exist")
    from rosettamt.device import setup_allocator
    from rosettamt.translate import Translator

    setup_allocator(cfg.decode.keep_freed_memory, cfg.device)
    started = time.perf_counter()
    translator = Translator.from_checkpoint(checkpoint_from_config(cfg), device=cfg.device, decode=cfg.decode)
    check_attention_settings(translator, settings)
    log.info("loaded %s on %s in %.1f s", translator.checkpoint_path, translator.device,
             time.perf_counter() - started)
    if interactive:
        Prompt(translator, settings).run()
        return
    out = _open_output(cfg)
    try:
        translate_stream(translator, lines, out, settings, progress=sys.stderr.isatty())
    except BrokenPipeError:  # e.g. `| head`: the reader left, which is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        if out is not sys.stdout:
            out.close()
    if cfg.output is not None:
        log.info("wrote %d translations to %s", len(lines), cfg.output)
