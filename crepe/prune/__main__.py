"""``python -m crepe.prune`` (installed: ``crepe-prune``): the command lives in :mod:`crepe.cli.prune`."""

from crepe.cli.scripts import prune

prune()
