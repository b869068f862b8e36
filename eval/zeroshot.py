"""``python -m eval.zeroshot`` (zero-shot accuracy through lm-eval): runs :mod:`crepe.cli.zeroshot` (installed: ``crepe-eval-zeroshot``)."""

if __name__ == "__main__":
    from crepe.cli.scripts import zeroshot

    zeroshot()
