"""``python -m crepe.prune``: the command lives in :mod:`crepe.cli.prune`."""

from crepe.io.memory import reexec_with_hugepage_malloc

reexec_with_hugepage_malloc()  # first, before the heavy imports: the command may restart itself once

from crepe.cli.prune import cli  # noqa: E402

cli()
