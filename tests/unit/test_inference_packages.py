"""The inference packages as a user meets them: the documented imports work, importing the front
ends is cheap (no torch, no Hydra CLI), and ``python -m`` still runs each command."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHEAP = ["rosettamt", "rosettamt.text", "rosettamt.translate", "rosettamt.translate.attention",
         "rosettamt.translate.nbest", "rosettamt.prompt", "rosettamt.prepare"]


def test_importing_the_front_ends_loads_neither_torch_nor_the_cli():
    """rosettamt-translate checks options and input before torch loads; nothing below cli/ imports cli/."""
    code = ("import sys\n" + "".join(f"import {m}\n" for m in CHEAP) +
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('rosettamt.cli', 'hydra'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_documented_names_resolve():
    import rosettamt
    import rosettamt.evaluate as ev
    import rosettamt.prompt as pr
    import rosettamt.translate as tr
    from rosettamt.translate.translator import Translator

    assert rosettamt.Translator is tr.Translator is Translator
    assert tr.Candidate("x", 1.0).text == "x"
    for name in ev.__all__:
        assert callable(getattr(ev, name)) or isinstance(getattr(ev, name), str), name
    for name in pr.__all__:
        assert getattr(pr, name) is not None, name
    with pytest.raises(AttributeError):
        tr.NoSuchThing  # noqa: B018


@pytest.mark.parametrize("module", ["rosettamt.evaluate", "rosettamt.translate", "rosettamt.prepare"])
def test_python_dash_m_help(module, tmp_path):
    res = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr
    assert "== Configuration groups ==" in res.stdout and "Traceback" not in res.stderr
