"""The bottom layer: atomic file and folder writes, JSON reads, provenance stamps, the environment a run
records, memory housekeeping and the console (logging setup, one-line errors). Imports nothing of crepe."""
