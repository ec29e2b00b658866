"""One checkpoint format for every use: training state, evaluation, translation.

INTERFACE (owned by the training work; evaluate.py and translate.py rely on exactly this):

A checkpoint is a dict of plain data (tensors, numbers, strings, bytes, lists, dicts), saved with
torch.save and loaded with torch.load(weights_only=True):
    {"format": "rosettamt-1", "model": state_dict, "model_config": dict (ModelConfig),
     "config": dict (the whole resolved TrainConfig), "tokenizer": Tokenizer.state_dict(),
     "step": int, "epoch": int, "val_bleu": float | None,
     "optimizer": ..., "scheduler": ..., "sampler": ..., "rng": ...}   # training-only keys optional

def save_checkpoint(state: dict, path: Path) -> None          # atomic: tmp file, fsync, rename
def load_checkpoint(path: Path, map_location="cpu") -> dict   # weights_only=True; UserError on bad file
def load_for_inference(path: Path, device) -> tuple[Seq2SeqTransformer, Tokenizer, dict]  # (model.eval(), tok, ckpt)
def find_best_checkpoint(run_dir: Path) -> Path               # best by val BLEU, else last.pt; UserError if none
"""
