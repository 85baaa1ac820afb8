"""Training of the demo pack's networks (autoencoder, classifiers, coherence critic) and of evaluation tools."""
