"""One pruning run from options to files (:mod:`.job`), its options, opening the model, and the Python API."""
