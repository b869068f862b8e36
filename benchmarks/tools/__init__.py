"""Tools the benchmarks need that are not benchmarks: fixtures (a synthetic Llama, a trained ViT, the local zero-shot task) and a plot."""
