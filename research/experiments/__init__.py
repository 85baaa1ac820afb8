"""Levers tried on the demo pack (most not shipped): blind paired looks, mirrored references, curated banks."""
