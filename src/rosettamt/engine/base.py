"""The interface every engine offers the Translator and the evaluation (torch-free)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Protocol, Sequence

if TYPE_CHECKING:
    from rosettamt.config import DecodeConfig
    from rosettamt.search.hypothesis import Hypothesis

BACKENDS = ("rosettamt", "ctranslate2")


class Engine(Protocol):
    """Searches target ids for source ids; ``cfg`` is the model's ModelConfig (positions, layers, heads)."""

    cfg: Any
    tag: str  # appended to output file names: "" (rosettamt fp32), "-bf16", "-ct2", "-ct2-int8", ...

    def search(self, src_ids: Sequence[Sequence[int]], cfg: "DecodeConfig",
               progress: bool = False) -> List[List["Hypothesis"]]:
        """Source pieces as ids (no EOS) -> per sentence, its n-best hypotheses, in input order."""
        ...
