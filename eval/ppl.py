"""``python -m eval.ppl`` (perplexity with the papers' protocol): runs :mod:`crepe.cli.ppl` (installed: ``crepe-eval-ppl``)."""

if __name__ == "__main__":
    from crepe.cli.scripts import ppl

    ppl()
