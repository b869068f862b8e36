"""crepe: post-training pruning of LLMs (CRePE, RIA, Wanda, SparseGPT, ...) and ViTs (ToaSt).

Importing this package has no side effects: no global RNG draws, no logging handlers, no
heavy imports. Entry points: ``python -m crepe.prune``, ``python -m eval.ppl``,
``python -m pho.search``, ``python -m crepe.vit``.
"""

__version__ = "0.1.0"
