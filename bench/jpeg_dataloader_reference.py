#!/usr/bin/env python3
"""The PyTorch side of the JPEG input-pipeline benchmark (issue 17 point 3): torchvision ImageFolder with the MoCo v3
two-crop BYOL augmentation, through DataLoader(num_workers = cores, batch_size = 256), in images/s.

    /usr/bin/python3 bench/jpeg_dataloader_reference.py /work/bench-data/photos [--batches 8] [--workers N]

Written from the recipe (docs: shared/reference/mocov3-recipe.md section 1.6), not copied from moco-v3:
both views RandomResizedCrop(224, scale=(0.08, 1)), ColorJitter(0.4, 0.4, 0.2, 0.1) with p=0.8, RandomGrayscale(0.2),
GaussianBlur (PIL, sigma in [0.1, 2]) with p=1.0 / 0.1, Solarize (PIL, threshold 128) with p=0 / 0.2, horizontal flip,
ToTensor, Normalize(ImageNet mean/std). Timing starts after the first batch (worker start-up and warm-up left out).
Prints one JSON line: images/s, per core, peak RSS of the main process and of the workers (sum of their peaks).

Measured 2026-12-01 on the 2-core shared VM (load 9-11), 2,048 JPEGs from bench/make_photo_folder.py, alternated with
`mocov3 bench --preset vit-small --data /work/bench-data/photos --input-only --batch 128 --batches 16`:
  this script (--batches 8):  41.6 / 28.4 / 39.6 / 38.3 img/s = 20.8 / 14.2 / 19.8 / 19.1 per core; RSS 0.27 + 1.9 GB
  ours, loader alone (decode + two crops on the host): 162.6 / 148.7 / 133.6 / 180.1 img/s = 81.3 / 74.3 / 66.8 / 90.1
  per core (3.4-5.2x); loader + colour augmentation on the CPU as the device: 23.4 / 22.6 / 30.1 / 34.5 img/s
  (0.56-0.90x: the float colour ops dominate on a CPU-only machine)
See README, Benchmarks, "JPEG input pipeline".
"""
import argparse
import json
import os
import random
import resource
import time

import torch
import torchvision.datasets as datasets
import torchvision.transforms as T
from PIL import ImageFilter, ImageOps


class Blur:
    """PIL Gaussian blur with a radius drawn uniformly in [low, high]."""

    def __init__(self, low=0.1, high=2.0):
        self.low, self.high = low, high

    def __call__(self, img):
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.low, self.high)))


class Solarize:
    def __call__(self, img):
        return ImageOps.solarize(img)


class TwoViews:
    """Applies one transform per view to the same image."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def __call__(self, img):
        return [self.first(img), self.second(img)]


def view(blur_p, solarize_p):
    normalize = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    return T.Compose([
        T.RandomResizedCrop(224, scale=(0.08, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([Blur(0.1, 2.0)], p=blur_p),
        T.RandomApply([Solarize()], p=solarize_p),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        normalize,
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--batches", type=int, default=8, help="timed batches, after one warm-up batch")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()

    dataset = datasets.ImageFolder(args.folder, TwoViews(view(1.0, 0.0), view(0.1, 0.2)))
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                         pin_memory=False, drop_last=True, persistent_workers=True)
    batches = 0
    images = 0
    start = None
    while batches < args.batches + 1:
        for (x1, x2), _ in loader:
            batches += 1
            if batches == 1:
                start = time.perf_counter()
                continue
            images += x1.shape[0]
            if batches == args.batches + 1:
                break
    seconds = time.perf_counter() - start
    rate = images / seconds
    workers_peak = worker_peak_rss_kib()
    print(json.dumps({
        "pipeline": "torchvision ImageFolder + DataLoader", "torch": torch.__version__, "workers": args.workers,
        "batch": args.batch, "images": images, "seconds": round(seconds, 2), "images_per_second": round(rate, 1),
        "images_per_second_per_core": round(rate / os.cpu_count(), 1),
        "peak_rss_main_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_workers_mib": round(workers_peak / 1024),
    }))


def worker_peak_rss_kib():
    """Sum of the peak resident sizes (VmHWM) of this process's children: the DataLoader workers, still alive."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if int(status.get("PPid", "0").strip()) == os.getpid():
            total += int(status.get("VmHWM", "0 kB").split()[0])
    return total


if __name__ == "__main__":
    main()
