"""Loader throughput (images/s), one JSON line per dataset/config.

    python benchmarks/bench_loader.py [PREPARED_DIR ...]   (mnist-mini always; dirs made by prep)

Times whole epochs (up to --max-batches) after one warm-up batch; train=True includes the
augmentation. The bar for MNIST and CIFAR batches of 128 from RAM is 20,000 images/s on 2 cores.
"""

import json
import sys
import time

from lcengine.backend import get_backend
from lcengine.data import Loader, open_shards

MAX_BATCHES = 200


def bench(source, split, batch_size, train, workers=0):
    shards = open_shards(source, split)
    loader = Loader(shards, batch_size, seed=0, train=train, backend=get_backend("cpu"),
                    workers=workers)
    batches = loader.epoch(0)
    next(batches)
    images, start = 0, time.perf_counter()
    for b, (x, _) in enumerate(batches):
        images += len(x)
        if b + 1 >= MAX_BATCHES:
            break
    batches.close()
    seconds = time.perf_counter() - start
    return {"source": str(source), "dataset": shards.dataset, "split": split,
            "storage": shards.storage, "image_shape": list(shards.image_shape),
            "batch_size": batch_size, "train": train, "workers": workers, "images": images,
            "seconds": round(seconds, 3), "images_per_s": round(images / seconds)}


def main(sources):
    for source in ["mnist-mini", *sources]:
        split = "train"
        for train in (True, False):
            print(json.dumps(bench(source, split, 128, train)), flush=True)
        if open_shards(source, split).storage == "jpeg":
            print(json.dumps(bench(source, split, 128, True, workers=2)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
