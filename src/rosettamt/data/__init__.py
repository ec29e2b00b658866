"""The data side: corpus -> tokenizer -> cached ids -> batches."""
