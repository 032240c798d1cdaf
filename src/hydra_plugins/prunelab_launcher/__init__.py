"""prunelab's Hydra launcher (``hydra/launcher=stacked``); a Hydra plugin must live here."""
