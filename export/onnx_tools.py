"""ONNX graph hygiene before conversion and TensorRT parsing."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load(path: str | Path):
    import onnx

    return onnx.load(str(path))  # also reads external data next to the file


def save(model, path: str | Path, external_data_threshold: int = 1_800_000_000) -> Path:
    """Save ``model``; protobuf cannot exceed 2 GB, so very large graphs use external data."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if model.ByteSize() > external_data_threshold:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data")
    else:
        onnx.save_model(model, str(path))
    return path


def sanitize(model):
    """Fold constants (Polygraphy + ONNX-GraphSurgeon, when installed: TensorRT folds what is left itself), infer
    shapes, check."""
    import onnx

    try:
        from polygraphy.backend.onnx import fold_constants
        from polygraphy.logger import G_LOGGER
    except ImportError:
        folded = model
    else:
        G_LOGGER.module_severity = G_LOGGER.WARNING  # no per-pass chatter in build logs
        folded = fold_constants(model, num_passes=3, do_shape_inference=True, error_ok=True)
    folded = onnx.shape_inference.infer_shapes(folded)
    onnx.checker.check_model(folded)
    return folded


def input_specs(model) -> list[tuple[str, list[int | str], int]]:
    """(name, dims with symbolic names or -1, elem_type) of the graph inputs (initializers excluded)."""
    inits = {i.name for i in model.graph.initializer}
    out = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or -1) for d in vi.type.tensor_type.shape.dim]
        out.append((vi.name, dims, vi.type.tensor_type.elem_type))
    return out


def random_feed(model, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Standard-normal inputs for every graph input (symbolic dims = ``batch``)."""
    from onnx import helper

    feed = {}
    for name, dims, et in input_specs(model):
        shape = [batch if not isinstance(d, int) or d <= 0 else d for d in dims]
        dtype = helper.tensor_dtype_to_np_dtype(et)
        feed[name] = rng.standard_normal(shape).astype(dtype)
    return feed
