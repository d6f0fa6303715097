"""The composition root: settings, the adapters, the loop and kopf, wired into one operator process."""
