"""prunelab's Hydra plug-ins: the launcher ``hydra/launcher=stacked`` and the default sweeper
``hydra/sweeper=checked``; a Hydra plugin must live here."""
