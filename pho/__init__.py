"""PHO: proxy-based search of CRePE's hyperparameters (see the PHO issue; not yet implemented)."""
