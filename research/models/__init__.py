"""Networks of the demo pack (models.py) and the shared training pieces (common.py: cache, regions, metrics)."""
