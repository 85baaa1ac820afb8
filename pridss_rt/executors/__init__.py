"""Executors: the stage operations of one frame on one kind of memory, behind one interface
(:class:`~pridss_rt.executors.base.Executor`). The frame logic that calls them is written once, in
:mod:`pridss_rt.pipeline.orchestrator`.

- :mod:`~pridss_rt.executors.host`: numpy frames, OpenCV warps, any backend's sessions (ONNX Runtime, TensorRT)
- :mod:`~pridss_rt.executors.device`: the frame and every crop stay in GPU memory (TensorRT bindings,
  cuda-python streams, the native CUDA warp and paste-back kernels)
"""
