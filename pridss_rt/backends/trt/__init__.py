"""The TensorRT backend: engine sessions on cuda-python streams (``session``), the engine folders and
their manifests (``engines``), and the cuda-python helpers (``cuda``: streams, events, pinned and device
memory) that the device executor shares."""
