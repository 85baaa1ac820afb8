"""Archives: many images and videos, on one process or on a Ray cluster.

- :mod:`~pridss_rt.archive.items`: one image or one video through an :class:`~pridss_rt.Anonymizer`, written under a
  temporary name and renamed when complete (the single-process CLI and the Ray workers run the same functions, so
  they write the same files);
- :mod:`~pridss_rt.archive.ledger`: the record of finished items in the output folder (input hash, pack, settings),
  so a re-run skips what is done;
- :mod:`~pridss_rt.archive.ray_runner`: :func:`anonymize_on_ray`, actors that each hold one Anonymizer (images in
  batches, one video per task, one actor per GPU with a GPU backend), retries when an actor dies, progress and
  a summary. Needs the optional ``ray`` extra (``pip install "pridss-rt[ray]"``); importing this package does not
  import Ray.
"""

from pridss_rt.archive.items import ItemResult, process_image, process_video
from pridss_rt.archive.ledger import Ledger

__all__ = ["ItemResult", "Ledger", "process_image", "process_video", "anonymize_on_ray"]


def __getattr__(name):
    if name == "anonymize_on_ray":
        from pridss_rt.archive.ray_runner import anonymize_on_ray

        return anonymize_on_ray
    raise AttributeError(name)
