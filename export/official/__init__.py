"""PyTorch definitions of the official PriDSS stack, their checkpoint loaders and ONNX export.

- :mod:`.stylegan2`   rosinality StyleGAN2 (key-exact ``g_ema``), W+ -> S affines, S-driven synthesis
                      (reference: the original grouped modulated conv; export: batch-friendly form)
- :mod:`.stylefusion` StyleFusion FusionNet + FFHQ hierarchy, batched, any device
- :mod:`.e4e`         e4e encoder (IR-SE50 + FPN + style heads) and IR-SE building blocks
- :mod:`.arcface`     ArcFace IR-SE50 (model_ir_se50.pth layout) with e4e's id-loss preprocessing
- :mod:`.gender`      gender classifier contract and the 2-class softmax adapter
- :mod:`.pipeline`    PyTorch reference of the whole PriDSS loop (the parity oracle)
- :mod:`.checkpoints` loaders for the official checkpoint files (``torch.load(weights_only=True)``)
- :mod:`.keyspec`     official key names/shapes written out independently of the modules
- :mod:`.onnx_export` ONNX export with a dynamic ``batch`` axis

Everything here needs torch; the runtime (``pridss_rt``) never imports it.
"""
