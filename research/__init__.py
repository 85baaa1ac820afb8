"""Research code of the demo pack: data preparation, networks, training, pack building, analysis and experiments.

Not part of the product: nothing under ``pridss_rt/`` imports it, and the wheel packages ``pridss_rt*`` only.
Run the scripts from the repository root, as files (``python research/training/train_ae.py ...``) or as modules
(``python -m research.training.train_ae ...``); each puts the repository root on ``sys.path`` so that
``research.*`` imports resolve either way. Commands: research/README.md.
"""
