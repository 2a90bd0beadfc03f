"""Eager PyTorch inference of a MoCo v3 ViT backbone (class token after the final norm), the baseline that
`bench/onnx.sh` compares ONNX Runtime with. Same architecture as the toolkit's ViT: conv patch embedding, class
token, position embedding, pre-norm blocks (LayerNorm eps 1e-6, fused qkv, exact GELU MLP), final LayerNorm.

  python3 bench/vit_inference_reference.py --preset vit-small --batch 32 --threads 2
"""
import argparse, json, os, statistics, time
import torch, torch.nn as nn, torch.nn.functional as F

# name: (image size, channels, patch, dim, depth, heads)
PRESETS = {
    "vit-tiny-fmnist": (28, 1, 4, 192, 6, 3),
    "vit-tiny-fmnist-quick": (28, 1, 7, 128, 6, 4),
    "vit-small": (224, 3, 16, 384, 12, 12),
    "vit-base": (224, 3, 16, 768, 12, 12),
}


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v) if hasattr(F, "scaled_dot_product_attention") \
            else ((q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5).softmax(-1) @ v
        x = x + self.proj(a.transpose(1, 2).reshape(n, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, size, channels, patch, dim, depth, heads):
        super().__init__()
        self.patch = nn.Conv2d(channels, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (size // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1) + self.pos
        return self.norm(self.blocks(t))[:, 0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="vit-small", choices=PRESETS)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    a = ap.parse_args()
    torch.set_num_threads(a.threads or os.cpu_count())
    size, channels, *rest = PRESETS[a.preset]
    model = ViT(size, channels, *rest).eval()
    x = torch.rand(a.batch, channels, size, size)
    times = []
    with torch.inference_mode():
        for i in range(1 + a.batches):
            t0 = time.perf_counter()
            model(x)
            if i >= 1:
                times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({"preset": a.preset, "batch": a.batch, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "batch_s_median": round(med, 4), "img_per_s": round(a.batch / med, 1)}))


if __name__ == "__main__":
    main()
