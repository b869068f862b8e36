"""Calibration and evaluation text: corpora, tokenised windows."""
