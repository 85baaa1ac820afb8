"""Recover a train_ae.py checkpoint (encoder + synthesis weights) from an exported pack's ONNX files.

runs/ is not kept between machines; the shipped pack is. Its encoder.onnx and synthesis.onnx were
exported from research/models/models.py by research/pack/export_pack.py, and the exporter kept every parameter as an
initializer under its state-dict name, so the weights can be read back and fine-tuned
(`train_ae.py --init <out>`). Parity with the ONNX files is checked before the checkpoint is written.

Usage: python research/pack/ckpt_from_pack.py --pack pridss_rt/packs/demo --out runs/ae_from_pack/ckpt.pt
"""
import argparse, os, sys
import numpy as np, onnx, onnxruntime as ort, torch
from onnx import numpy_helper
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root, for research.* when run as a file
from research.models.models import Encoder, Synthesis


def load_onnx_weights(net, path):
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    sd = net.state_dict()
    missing = [k for k in sd if k not in inits]
    if missing:
        sys.exit(f'{path}: no initializer for {missing[:5]} ({len(missing)} parameters): not exported from research/models/models.py?')
    for k, v in sd.items():
        if tuple(inits[k].shape) != tuple(v.shape):
            sys.exit(f'{path}: {k}: shape {list(inits[k].shape)} != model {list(v.shape)}')
    net.load_state_dict({k: torch.from_numpy(np.array(inits[k])) for k in sd})
    net.eval()
    s = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    shape = [d if isinstance(d, int) else 3 for d in s.get_inputs()[0].shape]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = net(x).numpy()
    err = float(np.abs(s.run(None, {s.get_inputs()[0].name: x.numpy()})[0] - ref).max())
    print(f'{os.path.basename(path)}: {len(sd)} tensors, max |torch - ORT| = {err:.2e}')
    if err > 1e-3:
        sys.exit(f'{path}: parity check failed ({err:.2e})')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--pack', default='pridss_rt/packs/demo')
    ap.add_argument('--out', default='runs/ae_from_pack/ckpt.pt')
    a = ap.parse_args()
    E, S = Encoder(), Synthesis()
    load_onnx_weights(E, os.path.join(a.pack, 'encoder.onnx'))
    load_onnx_weights(S, os.path.join(a.pack, 'synthesis.onnx'))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.save({'E': E.state_dict(), 'S': S.state_dict(), 'step': 0, 'from_pack': os.path.abspath(a.pack)}, a.out)
    print('wrote', a.out)


if __name__ == '__main__':
    main()
