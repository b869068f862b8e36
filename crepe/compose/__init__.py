"""Techniques that compose with any pruning score: N:M channel permutation, non-uniform layerwise
sparsity (OWL, AlphaPruning, JSON plans) and DSnoT re-pruning. See docs/composition.md."""
