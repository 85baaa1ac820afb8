"""Official checkpoint key names and shapes, written out from the documented layouts.

Written independently of the module classes (from ../shared/docs/method.md §2-§4 and the official
sources named there), so that comparing a module's ``state_dict`` with these tables is a real check
and not a tautology. Each function returns ``{key: shape}`` in no particular order.
"""

from __future__ import annotations

import math


def _bn(prefix: str, c: int, affine: bool = True) -> dict[str, tuple]:
    d = {f"{prefix}.running_mean": (c,), f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}
    if affine:
        d.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)})
    return d


def stylegan2_g_ema(size: int = 1024, channel_multiplier: int = 2, style_dim: int = 512, n_mlp: int = 8) -> dict:
    """rosinality ``g_ema`` keys (method.md §3 "Checkpoints")."""
    ch = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
          256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    keys: dict[str, tuple] = {}
    for i in range(1, n_mlp + 1):
        keys[f"style.{i}.weight"] = (style_dim, style_dim)
        keys[f"style.{i}.bias"] = (style_dim,)
    keys["input.input"] = (1, ch[4], 4, 4)

    def styled(prefix, cin, cout, up):
        keys[f"{prefix}.conv.weight"] = (1, cout, cin, 3, 3)
        keys[f"{prefix}.conv.modulation.weight"] = (cin, style_dim)
        keys[f"{prefix}.conv.modulation.bias"] = (cin,)
        if up:
            keys[f"{prefix}.conv.blur.kernel"] = (4, 4)
        keys[f"{prefix}.noise.weight"] = (1,)
        keys[f"{prefix}.activate.bias"] = (cout,)

    def torgb(prefix, cin, up):
        keys[f"{prefix}.conv.weight"] = (1, 3, cin, 1, 1)
        keys[f"{prefix}.conv.modulation.weight"] = (cin, style_dim)
        keys[f"{prefix}.conv.modulation.bias"] = (cin,)
        keys[f"{prefix}.bias"] = (1, 3, 1, 1)
        if up:
            keys[f"{prefix}.upsample.kernel"] = (4, 4)

    styled("conv1", ch[4], ch[4], False)
    torgb("to_rgb1", ch[4], False)
    log = int(math.log2(size))
    cin = ch[4]
    for k, i in enumerate(range(3, log + 1)):
        cout = ch[2 ** i]
        styled(f"convs.{2 * k}", cin, cout, True)
        styled(f"convs.{2 * k + 1}", cout, cout, False)
        torgb(f"to_rgbs.{k}", cout, True)
        cin = cout
    for layer in range(2 * (log - 2) + 1):
        r = 2 ** ((layer + 5) // 2)
        keys[f"noises.noise_{layer}"] = (1, 1, r, r)
    return keys


_IRSE50_STAGES = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))  # (in, depth, units), first unit stride 2


def _irse50_body(prefix: str) -> dict:
    keys: dict[str, tuple] = {}
    keys[f"{prefix}input_layer.0.weight"] = (64, 3, 3, 3)
    keys.update(_bn(f"{prefix}input_layer.1", 64))
    keys[f"{prefix}input_layer.2.weight"] = (64,)
    u = 0
    for cin, depth, units in _IRSE50_STAGES:
        for j in range(units):
            i = cin if j == 0 else depth
            p = f"{prefix}body.{u}"
            if i != depth:
                keys[f"{p}.shortcut_layer.0.weight"] = (depth, i, 1, 1)
                keys.update(_bn(f"{p}.shortcut_layer.1", depth))
            keys.update(_bn(f"{p}.res_layer.0", i))
            keys[f"{p}.res_layer.1.weight"] = (depth, i, 3, 3)
            keys[f"{p}.res_layer.2.weight"] = (depth,)
            keys[f"{p}.res_layer.3.weight"] = (depth, depth, 3, 3)
            keys.update(_bn(f"{p}.res_layer.4", depth))
            keys[f"{p}.res_layer.5.fc1.weight"] = (depth // 16, depth, 1, 1)
            keys[f"{p}.res_layer.5.fc2.weight"] = (depth, depth // 16, 1, 1)
            u += 1
    return keys


def e4e_encoder(stylegan_size: int = 1024) -> dict:
    """``Encoder4Editing(50, 'ir_se')`` keys (without the ``encoder.`` prefix of the checkpoint)."""
    keys = _irse50_body("")
    n = 2 * int(math.log2(stylegan_size)) - 2
    for i in range(n):
        spatial = 16 if i < 3 else (32 if i < 7 else 64)
        for j in range(int(math.log2(spatial))):
            keys[f"styles.{i}.convs.{2 * j}.weight"] = (512, 512, 3, 3)
            keys[f"styles.{i}.convs.{2 * j}.bias"] = (512,)
        keys[f"styles.{i}.linear.weight"] = (512, 512)
        keys[f"styles.{i}.linear.bias"] = (512,)
    keys["latlayer1.weight"] = (512, 256, 1, 1)
    keys["latlayer1.bias"] = (512,)
    keys["latlayer2.weight"] = (512, 128, 1, 1)
    keys["latlayer2.bias"] = (512,)
    return keys


def arcface_ir_se50() -> dict:
    """``model_ir_se50.pth`` keys: ``Backbone(112, 50, 'ir_se')`` with an affine BatchNorm1d head."""
    keys = _irse50_body("")
    keys.update(_bn("output_layer.0", 512))
    keys["output_layer.3.weight"] = (512, 512 * 7 * 7)
    keys["output_layer.3.bias"] = (512,)
    keys.update(_bn("output_layer.4", 512))
    return keys


def fusion_net() -> dict:
    """One StyleFusion node file (``weights/ffhq/<node>.pt``)."""
    keys = {}
    for name, extras in (("blender_segments", 1), ("blender_common", 0)):
        sizes = [512 * 2 + 10 * 19 + extras * 512, 2560, 2560, 2560, 512, 512]
        for i in range(5):
            keys[f"{name}.disentangle_net.{i}.weight"] = (sizes[i + 1], sizes[i])
            keys[f"{name}.disentangle_net.{i}.bias"] = (sizes[i + 1],)
    return keys


def count(keys: dict) -> int:
    return sum(math.prod(s) for k, s in keys.items() if not k.endswith("num_batches_tracked"))
