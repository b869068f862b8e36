"""PHO: proxy-based search of CRePE's hyperparameters (``python -m pho.search``) and the PPL hill
climb it replaces (``python -m pho.hillclimb``). See docs/pho.md."""
