#!/usr/bin/env python3
"""Writes an ImageFolder of photo-like JPEGs for the JPEG input-pipeline benchmark (issue 17 point 3).

    /usr/bin/python3 bench/make_photo_folder.py /work/bench-data/photos [--count 2048] [--classes 4]

Each image is 400-500 x 300-375 px (ImageNet's typical size), JPEG quality 90: smooth colour gradients, a few soft
discs and rectangles, a patch of fine stripes and Gaussian noise (sigma 5), so that it costs what a photo costs to
decode (not flat colour). Deterministic: image i depends on i alone. Needs numpy and PIL (python3-pil).
"""
import argparse
import os

import numpy as np
from PIL import Image


def photo(i):
    rng = np.random.default_rng(1000 + i)
    width, height = int(rng.integers(400, 501)), int(rng.integers(300, 376))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 200, 3)
    tilt = rng.uniform(-120, 120, (3, 2))
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        img[..., c] = base[c] + tilt[c, 0] * y / height + tilt[c, 1] * x / width \
            + 25 * np.sin(x / rng.uniform(20, 90) + y / rng.uniform(30, 120) + c)
    for _ in range(int(rng.integers(3, 7))):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(15, 90)
        alpha = np.clip(r - np.sqrt((x - cx) ** 2 + (y - cy) ** 2), 0, 2)[..., None] / 2
        img = img * (1 - alpha) + rng.uniform(0, 255, 3).astype(np.float32) * alpha
    x0, y0 = int(rng.integers(0, width - 100)), int(rng.integers(0, height - 80))
    img[y0:y0 + 60, x0:x0 + 90] = rng.uniform(0, 255, 3).astype(np.float32)
    sx, sy = int(rng.integers(0, width - 120)), int(rng.integers(0, height - 100))
    img[sy:sy + 80, sx:sx + 110] += (35 * np.sign(np.sin(x[sy:sy + 80, sx:sx + 110] * 1.7 + y[sy:sy + 80, sx:sx + 110])))[..., None]
    img += rng.normal(0, 5, img.shape).astype(np.float32)
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--count", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=4)
    args = parser.parse_args()
    for c in range(args.classes):
        os.makedirs(os.path.join(args.folder, f"class{c}"), exist_ok=True)
    total = 0
    for i in range(args.count):
        path = os.path.join(args.folder, f"class{i % args.classes}", f"{i:05d}.jpg")
        photo(i).save(path, quality=90)
        total += os.path.getsize(path)
    print(f"{args.count} JPEGs in {args.folder}, {total / args.count / 1024:.0f} KiB on average")


if __name__ == "__main__":
    main()
