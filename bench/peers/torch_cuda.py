# PyTorch peer of collapse's training step, for one card (or the CPU) in one process: ResNet-32
# (CIFAR, option-A shortcuts, 32x32) and ResNet-50 (torchvision's, 224x224), forward in train mode,
# the fixed simplex-ETF head (BatchNorm1d -> L2 normalisation -> h M) with the dot-regression loss
# or a learnable Linear head with cross-entropy, backward, SGD momentum 0.9 + weight decay 2e-4 on
# every trainable parameter; a synthetic batch already on the device. Modes:
#   eager_fp32   eager, TF32 off (fp32 matmuls and convolutions, what WebGPU computes)
#   eager_tf32   eager, TF32 on (tensor cores, 10-bit mantissa products)
#   cl_bf16      channels_last + bf16 autocast (tensor cores)
#   compile      torch.compile(model + head + loss), TF32 off
#   cuda_graph   the whole step (forward, backward, optimizer) captured once and replayed, TF32 off
# One JSON line per case on stdout (progress on stderr); a case that cannot run on this device or
# torch version prints a line with "skipped" and the reason. `--what infer` times inference (eval
# mode, no_grad) instead. Runs on a CPU too (`--device cpu`; PyTorch 1.13 has no torch.compile).
#
#   python3 bench/peers/torch_cuda.py [--device cuda|cpu] [--models resnet32,resnet50]
#     [--batches32 128,512] [--batches50 64,256] [--heads etf,dense] [--modes eager_fp32,...]
#     [--what train|infer] [--min-seconds 2] [--max-steps 200] [--threads N] [--budget-seconds S]
#     [--quick]
# Cases run mode-major (every case of eager_fp32 first), so a time budget drops the last modes.
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MODES = ["eager_fp32", "eager_tf32", "cl_bf16", "compile", "cuda_graph"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ models


class ShortcutA(nn.Module):
    """Option-A shortcut: x[:, :, ::2, ::2] with planes // 4 zero channels on each side."""

    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = ShortcutA(planes) if stride != 1 or inp != planes else nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet32(nn.Module):
    """The CIFAR ResNet-32 of the official ImbalancedLearning code (features only, d = 64)."""

    def __init__(self, blocks=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, inp = [], 16
        for s, planes in enumerate([16, 32, 64]):
            for b in range(blocks):
                layers.append(BasicBlock(inp, planes, 2 if b == 0 and s > 0 else 1))
                inp = planes
        self.layers = nn.Sequential(*layers)
        self.dim = 64
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        y = self.layers(F.relu(self.bn1(self.conv1(x))))
        return F.adaptive_avg_pool2d(y, 1).flatten(1)


class Bottleneck(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or inp != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    """torchvision's ResNet-50 (v1.5: stride on the 3x3), features only, where torchvision is absent."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        layers, inp = [], 64
        for s, (planes, n) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
            for b in range(n):
                layers.append(Bottleneck(inp, planes, 2 if b == 0 and s > 0 else 1))
                inp = planes * 4
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1)


def resnet50_features():
    """torchvision's ResNet-50 without its fc (d = 2048); the same network defined here otherwise."""
    try:
        import torchvision
    except ImportError:
        m = ResNet50()
        m.impl = "local"
    else:
        m = torchvision.models.resnet50(weights=None)
        m.fc = nn.Identity()
        m.impl = f"torchvision {torchvision.__version__}"
    m.dim = 2048
    return m


def simplex_etf(d, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    p, _ = torch.linalg.qr(torch.rand(d, k, generator=g))
    return math.sqrt(k / (k - 1)) * p @ (torch.eye(k) - torch.ones(k, k) / k)


class Net(nn.Module):
    """Backbone + head + loss in one module (what torch.compile and the CUDA graph capture)."""

    def __init__(self, backbone, head, classes):
        super().__init__()
        self.backbone, self.head, self.classes = backbone, head, classes
        if head == "etf":
            self.bn = nn.BatchNorm1d(backbone.dim)
            self.register_buffer("etf", simplex_etf(backbone.dim, classes))
        else:
            self.fc = nn.Linear(backbone.dim, classes)

    def logits(self, x):
        f = self.backbone(x)
        if self.head == "etf":
            h = F.normalize(self.bn(f), dim=1, eps=1e-8)
            return h @ self.etf, h
        return self.fc(f), f

    def forward(self, x, y):
        logits, h = self.logits(x)
        if self.head == "dense":
            return F.cross_entropy(logits, y)
        return dot_regression(h.float(), y, self.etf, self.classes)


def dot_regression(h, y, etf, k):
    """DR loss (DESIGN.md section 3), without host syncs (CUDA-graph capturable)."""
    counts = (y[:, None] == torch.arange(k, device=y.device)[None]).float().sum(0)
    present = (counts > 0).float().sum()
    ew = torch.sqrt((y.numel() / present) / counts.clamp(min=1))
    t = etf.t()[y] * ew[y][:, None]
    s = h.norm(dim=1).clamp(min=1e-8).detach()
    a = t.norm(dim=1).detach()
    return (((h * t).sum(1) - a * s) ** 2 / (2 * s)).mean()


# ------------------------------------------------------------------ timing


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(run, dev, min_seconds, max_steps, warmup):
    """Seconds per call of `run` (wall and process CPU): warm-up calls, a 3-call estimate, then N
    calls and one sync."""
    for _ in range(warmup):
        run()
    sync(dev)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(3):
        run()
    sync(dev)
    est = (time.perf_counter() - t0) / 3
    n = max(1, min(max_steps, math.ceil(min_seconds / max(est, 1e-6))))
    if n <= 3:
        return est, 3, (time.process_time() - c0) / 3
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        run()
    sync(dev)
    return (time.perf_counter() - t0) / n, n, (time.process_time() - c0) / n


def set_tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def skip_reason(mode, dev):
    if dev.type != "cuda" and mode in ("eager_tf32", "cuda_graph"):
        return f"{mode} needs CUDA"
    if mode == "compile" and not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    return None


def run_case(a, dev, model_name, batch, head, mode):
    case = {"framework": "pytorch", "torch": torch.__version__, "device": device_name(dev),
            "model": model_name, "batch": batch, "head": head, "mode": mode, "what": a.what}
    reason = skip_reason(mode, dev)
    if reason:
        return {**case, "skipped": reason}
    torch.manual_seed(0)
    size = a.size32 if model_name == "resnet32" else a.size50
    classes = 10 if model_name == "resnet32" else 1000
    backbone = ResNet32() if model_name == "resnet32" else resnet50_features()
    net = Net(backbone, head, classes).to(dev)
    x = torch.randn(batch, 3, size, size, device=dev)
    y = torch.arange(batch, device=dev) % classes
    set_tf32(mode in ("eager_tf32", "cl_bf16"))
    bf16 = mode == "cl_bf16"
    if bf16:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    case["size"] = size
    case["impl"] = getattr(backbone, "impl", "defined here")
    t_setup = time.perf_counter()
    if a.what == "infer":
        net.eval()
        logits_of = torch.compile(net.logits) if mode == "compile" else net.logits

        def run():
            with torch.no_grad(), torch.autocast(dev.type, torch.bfloat16, enabled=bf16):
                logits_of(x)

        warm = 3
    else:
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
        loss_of = torch.compile(net) if mode == "compile" else net

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, torch.bfloat16, enabled=bf16):
                loss = loss_of(x, y)
            loss.backward()
            opt.step()
            return loss

        run, warm = step, 3
        if mode == "cuda_graph":
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    step()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            opt.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                static_loss = step()
            run, warm = graph.replay, 2
            case["lossAfterCapture"] = float(static_loss)
    run()  # first call: compiles (torch.compile), allocates, picks cuDNN algorithms
    sync(dev)
    case["setupSeconds"] = round(time.perf_counter() - t_setup, 2)
    sec, steps, cpu = timed(run, dev, a.min_seconds, a.max_steps, warm)
    case.update(msPerStep=sec * 1000, imagesPerSec=batch / sec, steps=steps, cpuMsPerStep=cpu * 1000)
    if dev.type == "cuda":
        case["maxMemoryGiB"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return case


def device_name(dev):
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({torch.get_num_threads()} threads)"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default="resnet32,resnet50")
    p.add_argument("--batches32", default="128,512")
    p.add_argument("--batches50", default="64,256")
    p.add_argument("--heads", default="etf,dense", help="comma list of etf, dense")
    p.add_argument("--heads50", default="etf", help="heads for ResNet-50")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--what", default="train", choices=["train", "infer"])
    p.add_argument("--size32", type=int, default=32)
    p.add_argument("--size50", type=int, default=224)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--budget-seconds", type=float, default=0,
                   help="skip the remaining cases after this many seconds (0: no limit)")
    p.add_argument("--quick", action="store_true",
                   help="tiny shapes and few steps (a rehearsal of the script, not a benchmark)")
    a = p.parse_args()
    if a.quick:
        a.batches32, a.batches50, a.size50 = "8", "2", 64
        a.min_seconds, a.max_steps = 0.0, 2
    dev = torch.device(a.device)
    if dev.type == "cpu":
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    cases = []  # mode-major: every case of the first mode runs before any of the next
    for mode in a.modes.split(","):
        if mode not in MODES:
            raise SystemExit(f"unknown mode {mode}; one of {MODES}")
        for model_name in a.models.split(","):
            batches = a.batches32 if model_name == "resnet32" else a.batches50
            heads = a.heads if model_name == "resnet32" else a.heads50
            for batch in [int(b) for b in batches.split(",")]:
                for head in heads.split(","):
                    cases.append((model_name, batch, head, mode))
    start = time.perf_counter()
    for model_name, batch, head, mode in cases:
        base = {"framework": "pytorch", "model": model_name, "batch": batch, "head": head,
                "mode": mode, "what": a.what}
        if a.budget_seconds and time.perf_counter() - start > a.budget_seconds:
            print(json.dumps({**base, "skipped": f"time budget ({a.budget_seconds} s) spent"}))
            continue
        log(f"torch {model_name} batch {batch} {head} {mode} {a.what}...")
        try:
            r = run_case(a, dev, model_name, batch, head, mode)
        except Exception as e:  # a failed case is reported, the others still run
            r = {**base, "error": f"{type(e).__name__}: {e}"[:300]}
        print(json.dumps(r), flush=True)
        if dev.type == "cuda":
            torch.cuda.empty_cache()

if __name__ == "__main__":
    main()
