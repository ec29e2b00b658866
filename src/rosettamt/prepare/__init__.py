"""Only the home of ``python -m rosettamt.prepare`` (= ``rosettamt-prepare``, see __main__.py).

The library code that prepares a corpus and its tokenizer is rosettamt.data.pipeline; the
command is rosettamt.cli.prepare. This package imports neither, so importing it costs nothing.
"""
