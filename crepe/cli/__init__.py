"""Command-line parsers: ``python -m crepe.prune`` (:mod:`.prune`) and flags other commands share."""
