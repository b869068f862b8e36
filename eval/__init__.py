"""Evaluation: perplexity with the papers' protocol (``python -m eval.ppl``)."""
