#!/usr/bin/env python3
"""Writes Fashion-MNIST images as PNG files in class folders (ImageFolder layout), with the standard library only.

    python3 scripts/fmnist-images.py OUT_FOLDER [PER_CLASS] [train|t10k] [FASHION_MNIST_FOLDER]

OUT_FOLDER/<class name>/<index>.png for the first PER_CLASS images (default 20) of each class of the split (default t10k,
the test split) in FASHION_MNIST_FOLDER (default /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist).
Used by scripts/package-check.sh to give the samples real image files.
"""
import gzip
import os
import struct
import sys
import zlib

CLASSES = ["T-shirt-top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def png(width, height, gray):
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + gray[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def find(folder, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            return path
    sys.exit(f"error: {folder}: no {name}(.gz); install dataset-fashion-mnist or pass the folder")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    per_class = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    split = sys.argv[3] if len(sys.argv) > 3 else "t10k"
    folder = sys.argv[4] if len(sys.argv) > 4 else "/usr/share/datasets/fashion-mnist"
    (count, h, w), pixels = read_idx(find(folder, f"{split}-images-idx3-ubyte"))
    (labels_count,), labels = read_idx(find(folder, f"{split}-labels-idx1-ubyte"))
    written = [0] * 10
    for i in range(min(count, labels_count)):
        label = labels[i]
        if written[label] >= per_class:
            continue
        target = os.path.join(out, CLASSES[label])
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, f"{i:05d}.png"), "wb") as f:
            f.write(png(w, h, pixels[i * h * w:(i + 1) * h * w]))
        written[label] += 1
        if min(written) >= per_class:
            break
    print(f"wrote {sum(written)} images of {h}x{w} into {out} ({per_class} per class)")


if __name__ == "__main__":
    main()
