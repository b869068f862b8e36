"""Kept for old imports: the perplexity functions live in :mod:`crepe.perplexity` (``eval`` holds the
command-line entry points and imports the library, never the other way round)."""

from crepe.perplexity import DTYPES, layerwise_perplexity, perplexity, window_nll  # noqa: F401
