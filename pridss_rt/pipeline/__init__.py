"""The frame pipeline: frame validation (``frames``), the options (``config``), what each face gets
(``results``), and the one frame loop (``orchestrator``) over the stages of :mod:`pridss_rt.stages` and an
executor of :mod:`pridss_rt.executors`."""
