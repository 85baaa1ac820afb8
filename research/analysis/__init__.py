"""Measurements of a pack: the val report, frame grids, the tally of by-eye verdicts."""
