"""Data preparation: the CelebA-HQ cache, alignment template, crop landmarks, runtime-style training pairs."""
