"""rosettamt: parallel text in, a trained encoder-decoder Transformer, BLEU and a translator out."""

__version__ = "0.1.0"

__all__ = ["Translator", "__version__"]


def __getattr__(name: str) -> object:
    # Lazy so that `import rosettamt` stays cheap (no torch import) for the CLI's --help.
    if name == "Translator":
        from rosettamt.translate.translator import Translator

        return Translator
    raise AttributeError(f"module 'rosettamt' has no attribute {name!r}")
