"""Kept for old imports: the perplexity functions live in :mod:`crepe.evaluation.perplexity` (``eval`` holds the
command-line entry points and imports the library, never the other way round)."""

from crepe.evaluation.perplexity import (  # noqa: F401
    DTYPES,
    layerwise_perplexity,
    perplexity,
    window_nll,
)
