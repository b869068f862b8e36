"""Evaluating a model: perplexity over token windows (layer by layer when streamed) and lm-eval zero-shot."""
