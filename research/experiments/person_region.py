"""The head-level blend with the body too: re-render head, hair, neck and clothes inside the crop (issue #21).

    python research/experiments/person_region.py eval --data ../shared/data/celebahq/manifest.csv --split val \\
        --limit 600 --seed 0 --ablation none --baselines none --region head --out runs/eval/v180p ...

Runs `pridss-rt` (any subcommand, same arguments) with the segmentation classes that make up the re-rendered
region widened from head + identity to head + identity + body (`pridss_rt.stages.segment.HEAD_CLASSES`), so the
paste covers the union of both persons (grown, feathered, faded at the crop edge) and the original's person is
inpainted away under the new one: the reference's head comes with its own neck and shoulders instead of being set
on the original's. Measures the lever; the runtime is not changed by it.
"""
import os, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))  # repository root
import pridss_rt.stages.segment as segment  # noqa: E402
from pridss_rt.cli import main  # noqa: E402

segment.HEAD_CLASSES = ('head', 'identity', 'body')

if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
