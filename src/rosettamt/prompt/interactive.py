"""The interactive prompt of rosettamt-translate: line editing, history and ':' commands.

Translations go to stdout, everything else (banner, messages, plot paths) to stderr.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Optional

from rosettamt.config import MAX_BEAM
from rosettamt.errors import UserError
from rosettamt.prompt.plots import AttentionPlotter
from rosettamt.prompt.settings import Settings
from rosettamt.prompt.typeahead import read_line
from rosettamt.text import clean_text
from rosettamt.translate.attention import check_attention_head, check_attention_layer

if TYPE_CHECKING:
    from rosettamt.translate.translator import Translator

log = logging.getLogger("rosettamt.prompt")


def _masks_sigint() -> bool:
    """Signal masks exist here (POSIX) and this is the main thread, the one that takes Ctrl-C."""
    return hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def holding_ctrl_c(hold: bool = True):
    """Block SIGINT in this (the main) thread for the duration, so that every thread started
    meanwhile (torch's and OpenMP's pools) inherits the block and a Ctrl-C can only reach the main
    thread.

    Python turns SIGINT into KeyboardInterrupt in the main thread only. When the kernel hands the
    signal to another thread while the main thread sits in readline's select(), nothing wakes the
    main thread and the prompt ignores the Ctrl-C for good. The prompt lets SIGINT in again only while
    it waits for a line (:func:`_ctrl_c_allowed`); a Ctrl-C that arrives while the model loads or a
    sentence is being translated waits until then, and the prompt exits at that point. Afterwards
    the mask is restored; a Ctrl-C still pending then has nothing left to stop and is dropped.
    """
    if not (hold and _masks_sigint()):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if signal.SIGINT not in before:
            if signal.SIGINT in signal.sigpending():
                signal.sigwait({signal.SIGINT})
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


@contextlib.contextmanager
def _ctrl_c_allowed():
    """SIGINT unblocked in the main thread for the duration (the mask as it was afterwards)."""
    if not _masks_sigint():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


PROMPT = "> "
HISTORY_FILE = ".rosettamt_history"
HELP = """\
Type a sentence and press Enter to translate it. Commands:
  :beam N          beam size (1 = greedy)
  :greedy          same as :beam 1
  :nbest N         show the N best translations with their scores
  :attn on|off     save a cross-attention heatmap per sentence and show where each word looked
  :layer L         decoder layer whose attention is shown (-1 = last)
  :head H|mean|grid  one head, the mean over heads, or a grid of all heads
  :tgt LANG        translate into LANG (a multilingual model; :tgt alone lists its directions)
  :src LANG        translate from LANG (where the model knows several sources for the target)
  :settings        show the current settings
  :help            this text
  :quit            leave (Ctrl-D and Ctrl-C work too)"""


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
            "tgt": lambda arg: self._direction(arg, "tgt"), "src": lambda arg: self._direction(arg, "src"),
        }

    def run(self) -> None:
        """Loop until :quit, Ctrl-D or Ctrl-C (all exit normally)."""
        for stream in (sys.stdin, sys.stdout):  # odd bytes or a non-UTF-8 terminal: no crash
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="replace")
        readline = self._setup_readline()
        info = self.translator.checkpoint_info
        pair = f"{info.get('src_lang', '?')} -> {info.get('tgt_lang', '?')}"
        if self.translator.multilingual:
            pair = f"{len(self.translator.directions)} directions"  # the settings name the current one
        print(f"rosettamt: {pair} ({self.settings.describe()}). "
              "Type a sentence; :help for commands, Ctrl-D to quit.", file=sys.stderr)
        try:
            while True:
                try:
                    with _ctrl_c_allowed():
                        line = read_line(PROMPT, readline)  # input(), keeping a Ctrl-D typed ahead
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
        if s.nbest > 1:
            cands = self.translator.translate([line], beam_size=s.beam_size, nbest=s.nbest, **s.direction)[0]
            for rank, c in enumerate(cands, 1):
                print(f"{rank}. ({c.score:.3f}) {c.text}", flush=True)
        else:
            print(self.translator.translate([line], beam_size=s.beam_size, **s.direction)[0], flush=True)
        if s.show_attention:  # the best translation's attention (of the first segment of a long line)
            _, path, view = AttentionPlotter(self.translator, s)(line)  # passes s.direction on
            print(view, flush=True)
            print(f"attention plot: {path}", file=sys.stderr)
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

    def _int_arg(self, command: str, arg: str, low: int, high: int = MAX_BEAM) -> Optional[int]:
        try:
            value = int(arg)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            print(f":{command} needs a whole number in [{low}, {high}], got {arg!r}", file=sys.stderr)
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
            check_attention_layer(value, n)
        except (ValueError, UserError):
            print(f":layer needs a number in {-n}..{n - 1}", file=sys.stderr)
            return True
        self.settings.layer = value
        self._show("")
        return True

    def _direction(self, arg: str, side: str) -> bool:
        """:tgt LANG / :src LANG: keep the other side where the model knows the new pair, else its default."""
        known = ", ".join(f"{s}-{t}" for s, t in self.translator.directions)
        if not arg:
            print(f"this model translates {known}; :{side} LANG picks one", file=sys.stderr)
            return True
        s = self.settings
        tries = [(arg, s.tgt_lang), (arg, None)] if side == "src" else [(s.src_lang, arg), (None, arg)]
        errors = []
        for src, tgt in tries:
            try:
                s.src_lang, s.tgt_lang = self.translator.pick_direction(src, tgt)
                self._show("")
                return True
            except UserError as err:
                errors.append(err)
        # the clearer refusal: "does not translate into xx" for :tgt, "not trained to translate xx-yy" for :src
        print(f":{side} {arg}: {errors[-1] if side == 'tgt' else errors[0]}", file=sys.stderr)
        return True

    def _head(self, arg: str) -> bool:
        n = self.translator.n_heads
        if arg in ("mean", "grid"):
            self.settings.head, self.settings.grid = None, arg == "grid"
            self._show("")
            return True
        try:
            if not arg.isdigit():  # int() would take "+1" or " 1"
                raise ValueError(arg)
            check_attention_head(int(arg), n)
        except (ValueError, UserError):
            print(f":head needs mean, grid or a head number 0..{n - 1}", file=sys.stderr)
            return True
        self.settings.head, self.settings.grid = int(arg), False
        self._show("")
        return True
