"""Export-side tools of pridss-rt (PyTorch definitions, ONNX export, FP16 conversion, engine builds).

Never imported by the runtime (``pridss_rt``). Needs ``pip install -e '.[export]'``.
"""
