"""The seven stages of PriDSS, one module each, in data-flow order, plus the tracker of streams:

1. ``detect``     faces and their 5 landmarks (MTCNN by default, YuNet by path, or your detector)
2. ``align``      similarity transform to the pack's template, the aligned crop, and the way back
3. ``encode``     aligned crops -> latent codes
4. ``fuse``       opposite-gender references from the bank; identity segments of the original, context of the reference
5. ``synthesize`` fused latents -> faces
6. ``score``      P(male), identity similarity, PIC (+ the coherence critic), argmin
7. ``blend``      feathered paste-back with colour matching; pixelation, the fail-closed output
-  ``track``      IoU tracks that keep each face's chosen reference across frames

Each stage is a set of functions over arrays and networks; the frame loop that calls them is
:mod:`pridss_rt.pipeline.orchestrator`, through an executor of :mod:`pridss_rt.executors`.
"""
