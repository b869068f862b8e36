"""Pruning methods as pure tensor functions: the registry of methods and weight updates, the
scores, the mask selection, SparseGPT and the reconstructions. Nothing here touches a model."""
