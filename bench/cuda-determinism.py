"""Are two identical MoCo-v3-like training steps bit-identical on CUDA? (PyTorch; the kernels are libtorch's.)

Runs the same forward/backward twice from the same seed and weights and reports the largest gradient difference per
part: a ViT block (LayerNorm, qkv Linear, scaled_dot_product_attention, MLP), a ResNet-style conv/BN stem with a global
adaptive average pool, and the contrastive loss. Run it twice, without and with deterministic mode:
    python3 bench/cuda-determinism.py
    CUBLAS_WORKSPACE_CONFIG=:4096:8 python3 bench/cuda-determinism.py --deterministic
"""
import argparse
import torch
import torch.nn as nn
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--deterministic", action="store_true")
parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
args = parser.parse_args()
if args.deterministic:
    torch.use_deterministic_algorithms(True)
dtype = getattr(torch, args.dtype)


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


def step(seed):
    torch.manual_seed(seed)
    vit = nn.Sequential(Block(384, 6), Block(384, 6)).cuda()
    cnn = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                        nn.Conv2d(64, 128, 3, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten()).cuda()
    tokens = torch.randn(256, 197, 384, device="cuda")
    images = torch.randn(256, 3, 64, 64, device="cuda")
    with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        a = vit(tokens)[:, 0]
        b = cnn(images)
        q, k = F.normalize(torch.cat([a[:, :128], b], 1).float(), dim=1).chunk(2)
        loss = F.cross_entropy(q @ k.t() / 0.2, torch.arange(q.shape[0], device="cuda")) * 0.4
    loss.backward()
    grads = {"vit": torch.cat([p.grad.flatten().float() for p in vit.parameters()]),
             "cnn": torch.cat([p.grad.flatten().float() for p in cnn.parameters()])}
    return loss.item(), grads


loss1, g1 = step(0)
loss2, g2 = step(0)
print(f"{torch.cuda.get_device_name()} torch {torch.__version__} dtype {args.dtype} deterministic={args.deterministic}")
print(f"  loss {loss1!r} vs {loss2!r}: {'identical' if loss1 == loss2 else 'differ'}")
for part in g1:
    diff = (g1[part] - g2[part]).abs().max().item()
    print(f"  {part} gradients: {'bit-identical' if diff == 0 else f'max difference {diff:.3g}'}")
