"""ViT path: ToaSt token channel selection (TCS) and coupled head-dimension pruning.

Modules: ``config`` (frozen configs), ``adapters`` (ViT/DeiT layouts), ``heads`` (pure head
scores and selection), ``surgery`` (masked / repacked head pruning, save and load), ``tcs`` (runtime
FFN channel selection), ``macs`` (analytic MAC counter), ``data`` / ``train`` (the MNIST-5k task),
``bench`` (latency), ``__main__`` (the CLI). Importing has no side effects.
"""
