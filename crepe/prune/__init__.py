"""Pruning a model: one linear along the per-linear path (:mod:`.linear`), the whole model layer by
layer on calibration data (:mod:`.model`), or every linear from statistics collected once on the
dense model (:mod:`.cached`). ``python -m crepe.prune`` is the command (:mod:`crepe.cli.prune`)."""
