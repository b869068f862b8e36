"""``python -m eval.speed`` (dense against sparse timing): runs :mod:`crepe.cli.speed` (installed: ``crepe-eval-speed``)."""

if __name__ == "__main__":
    from crepe.cli.scripts import speed

    speed()
