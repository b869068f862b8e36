"""Where architectures differ: the per-family adapters and model loading."""
