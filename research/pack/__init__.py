"""From checkpoints to a pridss-rt pack: export, variants, recovery of weights, install, timings."""
