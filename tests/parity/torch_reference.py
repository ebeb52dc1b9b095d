#!/usr/bin/python3
"""PyTorch reference of the training-parity guard: trains, in plain PyTorch and float64, exactly
what collapse's recipes train (ResNet-32 with option-A shortcuts; the fixed ETF head BN1d -> L2 ->
M with the DR loss and per-batch Ew, or a learnable Linear head with cross-entropy; mixup; SGD
momentum 0.9 with weight decay on every trainable parameter, BN included; the learning-rate
schedule), following the official NeuralCollapseApplications/ImbalancedLearning code
(models/resnet_cifar.py, methods.py, train.py), from the initial weights, ETF matrix, batches and
mixup draws that tests/parity/export_inputs.ts exported from collapse. Writes the goldens that
tests/parity/parity_test.ts compares against:

  GOLDEN_DIR/<variant>.json         per-step losses and learning rates, the evaluation loss, the
                                    configuration and the digest of the inputs
  GOLDEN_DIR/<variant>.safetensors  final/<name>: every weight and running statistic after the
                                    steps (torch layout, float32); eval/logits: inference-mode
                                    logits of the evaluation images

Certification: the reference is rerun --certify N times (default 4) from initial weights perturbed
by relative Gaussian noise of 1e-7 (float32 rounding); the largest difference from the golden, with
the test's metrics, is the noise envelope of the configuration (written to the JSON). ReLU
networks amplify such noise wherever a pre-activation sits within rounding of 0, so at a large
learning rate the envelope is itself above the test's tolerance; the script refuses to write
goldens whose envelope exceeds a fifth of the tolerance (2e-4).

Usage: /usr/bin/python3 tests/parity/torch_reference.py INPUT_DIR GOLDEN_DIR [--certify N]
         [--dtype float32]   (float32: runs the reference in float32, to measure float32 drift
                             against float64 goldens written to another directory)
Needs torch and numpy (Debian: apt-get install python3-torch). See README.md.
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.use_deterministic_algorithms(True)
DT = torch.float64  # set by --dtype

TOL = 1e-3  # the test's tolerance (per-step loss, weights, eval logits and loss)

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}


# --- safetensors (8-byte header length, JSON header, raw little-endian data) -------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        dt = np.dtype(DTYPES[e["dtype"]]).newbyteorder("<")
        out[name] = (e["dtype"], np.frombuffer(raw[base + a:base + b], dtype=dt).reshape(e["shape"]))
    return out


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        data = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def inputs_digest(tensors):
    """SHA-256 over name, dtype, JSON shape lines and raw bytes, in name order (as parity_setup.ts)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        dtype, a = tensors[name]
        h.update(f"{name}\n{dtype}\n{json.dumps(list(a.shape), separators=(',', ':'))}\n".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# --- the model: models/resnet_cifar.py (ResNet_fe, BasicBlock option A, ETF_Classifier) --------

class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            # Option A, as the official code: subsample and zero-pad planes // 4 channels each side.
            self.shortcut = LambdaLayer(lambda x: F.pad(
                x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNetFe(nn.Module):
    """ResNet_fe of the official code (resnet32_fe: 5 blocks per stage); in_chans = 16 x width."""

    def __init__(self, in_chans, num_blocks=(5, 5, 5)):
        super().__init__()
        self.in_planes = in_chans
        self.conv1 = nn.Conv2d(3, in_chans, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_chans)
        self.layer1 = self._make_layer(in_chans, num_blocks[0], 1)
        self.layer2 = self._make_layer(in_chans * 2, num_blocks[1], 2)
        self.layer3 = self._make_layer(in_chans * 4, num_blocks[2], 2)

    def _make_layer(self, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        return out.view(out.size(0), -1)


class ETFClassifier(nn.Module):
    """ETF_Classifier: BN_H (BatchNorm1d), then x / clamp(||x||, 1e-8) (not on ImageNet-LT)."""

    def __init__(self, feat_in, normalize):
        super().__init__()
        self.BN_H = nn.BatchNorm1d(feat_in)
        self.normalize = normalize

    def forward(self, x):
        x = self.BN_H(x)
        if self.normalize:
            x = x / torch.clamp(torch.sqrt(torch.sum(x ** 2, dim=1, keepdims=True)), 1e-8)
        return x


# collapse's head names -> the official modules' names.
def torch_name(name):
    if name.startswith("fc.bn."):
        return "classifier.BN_H." + name[len("fc.bn."):]
    if name.startswith("fc."):
        return "classifier.fc." + name[len("fc."):]
    return "model." + name


# --- methods.py: produce_Ew, dot_loss (criterion 'reg_dot_loss'), mixup ----------------------

def produce_Ew(label, num_classes):
    uni_label, count = torch.unique(label, return_counts=True)
    batch_size = label.size(0)
    uni_label_num = uni_label.size(0)
    assert batch_size == torch.sum(count)
    gamma = batch_size / uni_label_num
    Ew = torch.ones(1, num_classes)
    for i in range(uni_label_num):
        Ew[0, uni_label[i]] = torch.sqrt(gamma / count[i])
    return Ew


def dot_loss(output, label, cur_M, H_length, reg_lam=0):
    target = cur_M[:, label].T  # B, d
    dot = torch.bmm(output.unsqueeze(1), target.unsqueeze(2)).view(-1)
    with torch.no_grad():
        M_length = torch.sqrt(torch.sum(target ** 2, dim=1, keepdims=False))
    loss = (1 / 2) * torch.mean(((dot - (M_length * H_length)) ** 2) / H_length)
    if reg_lam > 0:
        reg_Eh_l2 = torch.mean(torch.sqrt(torch.sum(output ** 2, dim=1, keepdims=True)))
        loss = loss + reg_Eh_l2 * reg_lam
    return loss


def mixup_data(x, y, lam, index):
    """methods.mixup_data with collapse's lambda and permutation instead of fresh draws."""
    mixed_x = lam * x + (1 - lam) * x[index, :]
    return mixed_x, y, y[index], lam


def mixup_criterion(criterion, pred, y_a, y_b, lam):
    return lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b)


# --- collapse's schedules (nn/schedules.ts), evaluated as fit does per step -------------------

def scheduled_lr(s, epoch, progress):
    if s["kind"] == "warmup_multistep":
        if epoch < s["warmupEpochs"]:
            t = epoch + 1 if s["warmupBy"] == "epoch" else epoch + progress
            return s["base"] * max(t, 1e-3) / s["warmupEpochs"]
        lr = s["base"]
        for m in s["milestones"]:
            if epoch >= m:
                lr *= s["gamma"]
        return lr
    if s["kind"] == "cosine":
        t = epoch + progress
        if t < s["warmupEpochs"]:
            return s["base"] * max(t, 1e-3) / s["warmupEpochs"]
        span = max(s["epochs"] - s["warmupEpochs"], 1e-9)
        f = min(1, (t - s["warmupEpochs"]) / span)
        return s["min"] + 0.5 * (s["base"] - s["min"]) * (1 + math.cos(math.pi * f))
    if s["kind"] == "constant":
        return s["base"]
    raise ValueError(f"unknown schedule {s['kind']}")


def f32(v):
    """The float32 value collapse's GPU computes with (lambda, learning rate)."""
    return float(np.float32(v))


# --- one variant ------------------------------------------------------------------------------

def train(cfg, tensors, noise_seed=None):
    """Trains the variant from the exported state; returns losses, lrs, final state, eval results."""
    torch.set_default_dtype(DT)
    t = lambda key: torch.from_numpy(np.array(tensors[key][1]))
    K = cfg["numClasses"]
    width = round(16 * cfg["widthMultiplier"])
    etf = cfg["classifier"] == "etf"

    model = ResNetFe(width)
    classifier = ETFClassifier(4 * width, cfg["normalizeFeatures"]) if etf else nn.Module()
    if not etf:
        classifier.fc = nn.Linear(4 * width, K)  # the learnable baseline, really trainable
    for m in list(model.modules()) + list(classifier.modules()):
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.momentum, m.eps = cfg["bnMomentum"], cfg["bnEpsilon"]
    modules = {"model": model, "classifier": classifier}
    state = {k: dict(m.state_dict()) for k, m in modules.items()}
    ours = {}  # torch "module.key" -> collapse name
    noise = torch.Generator().manual_seed(noise_seed) if noise_seed is not None else None
    for key in tensors:
        if not key.startswith("init/") or key == "init/fc.etf":
            continue
        name = key[len("init/"):]
        mod, _, rest = torch_name(name).partition(".")
        assert rest in state[mod], f"no {rest} in the torch {mod}"
        assert tuple(state[mod][rest].shape) == tuple(tensors[key][1].shape), key
        v = t(key).to(DT)
        if noise is not None and not rest.startswith("running_") and ".running_" not in rest:
            v = v * (1 + 1e-7 * torch.randn(v.shape, generator=noise, dtype=torch.float64).to(DT))
        state[mod][rest] = v
        ours[f"{mod}.{rest}"] = name
    for mod, sd in state.items():
        missing = [k for k in sd if f"{mod}.{k}" not in ours and not k.endswith("num_batches_tracked")]
        assert not missing, f"{mod}: not in the inputs: {missing}"
        modules[mod].load_state_dict(sd)
    ori_M = t("init/fc.etf").to(DT) if etf else None

    # train.py: one SGD over model.parameters() and classifier.parameters() (BN included).
    optimizer = torch.optim.SGD([{"params": model.parameters()}, {"params": classifier.parameters()}],
                                cfg["schedule"]["base"], momentum=cfg["momentum"],
                                weight_decay=cfg["weightDecay"])
    criterion = nn.CrossEntropyLoss()
    losses, lrs = [], []
    model.train()
    classifier.train()
    for i, bs in enumerate(cfg["batchSizes"]):
        epoch, n = divmod(i, cfg["stepsPerEpoch"])
        lr = scheduled_lr(cfg["schedule"], epoch, min(n / cfg["stepsPerEpoch"], 1 - 1e-9))
        lrs.append(lr)
        for g in optimizer.param_groups:
            g["lr"] = f32(lr)
        s = f"batch/{i:02d}/"
        images = t(s + "images").to(DT).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        target = t(s + "labels").long()
        index = t(s + "perm").long()
        assert images.shape[0] == bs
        if etf:
            cur_M = produce_Ew(target, K) * ori_M  # Ew from the un-mixed labels
        images, targets_a, targets_b, lam = mixup_data(images, target, f32(cfg["lambdas"][i]), index)
        feat = model(images)
        if etf:
            feat = classifier(feat)
            with torch.no_grad():
                feat_nograd = feat.detach()
                H_length = torch.clamp(torch.sqrt(torch.sum(feat_nograd ** 2, dim=1, keepdims=False)), 1e-8)
            loss_a = dot_loss(feat, targets_a, cur_M, H_length, reg_lam=cfg["normRegularizer"])
            loss_b = dot_loss(feat, targets_b, cur_M, H_length, reg_lam=cfg["normRegularizer"])
            loss = lam * loss_a + (1 - lam) * loss_b
        else:
            output = classifier.fc(feat)
            loss = mixup_criterion(criterion, output, targets_a, targets_b, lam)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    # The eval path: inference mode (running statistics), logits of the evaluation images and the
    # compiled loss over them in batches of 8 (DR with each batch's Ew, or CE), as collapse's
    # evaluate reports it (mean over examples).
    model.eval()
    classifier.eval()
    with torch.no_grad():
        x = t("eval/images").to(DT).permute(0, 3, 1, 2).contiguous()
        y = t("eval/labels").long()
        feat = model(x)
        if etf:
            h = classifier(feat)
            logits = h @ ori_M
            parts = []
            for k in range(0, y.shape[0], cfg["evalBatchSize"]):
                hk, yk = h[k:k + cfg["evalBatchSize"]], y[k:k + cfg["evalBatchSize"]]
                hl = torch.clamp(torch.sqrt(torch.sum(hk ** 2, dim=1)), 1e-8)
                loss = dot_loss(hk, yk, produce_Ew(yk, K) * ori_M, hl, reg_lam=cfg["normRegularizer"])
                parts.append(loss.item() * yk.shape[0])
            eval_loss = sum(parts) / y.shape[0]
        else:
            logits = classifier.fc(feat)
            eval_loss = criterion(logits, y).item()

    final = {}
    for mod, m in modules.items():
        for k, v in m.state_dict().items():
            if not k.endswith("num_batches_tracked"):
                final[ours[f"{mod}.{k}"]] = v.to(torch.float64).numpy()
    if etf:
        final["fc.etf"] = ori_M.to(torch.float64).numpy()
    torch.set_default_dtype(torch.float64)
    return {"losses": losses, "lrs": lrs, "final": final,
            "logits": logits.to(torch.float64).numpy(), "evalLoss": eval_loss}


# --- the test's metrics (tests/parity/parity_setup.ts) ---------------------------------------

def weight_error(name, ours, golden):
    """||ours - golden|| / scale; a BN layer's bias and running mean scale by its weight and sqrt(var)."""
    base = name.rsplit(".", 1)[0]
    scale = np.linalg.norm(golden[name])
    if name.endswith(".bias") and base + ".running_var" in golden:
        scale = np.linalg.norm(golden[base + ".weight"])
    if name.endswith(".running_mean") and base + ".running_var" in golden:
        scale = math.sqrt(float(np.sum(golden[base + ".running_var"])))
    d = np.linalg.norm(ours[name].astype(np.float64) - golden[name])
    return 0.0 if d == 0 else d / scale


def differences(run, golden):
    rel = lambda a, b: abs(a - b) / abs(b)
    return {
        "loss": max(rel(a, b) for a, b in zip(run["losses"], golden["losses"])),
        "weight": max(weight_error(k, run["final"], golden["final"]) for k in golden["final"]),
        "evalLogits": float(np.linalg.norm(run["logits"] - golden["logits"]) / np.linalg.norm(golden["logits"])),
        "evalLoss": rel(run["evalLoss"], golden["evalLoss"]),
    }


def run(inputs_dir, golden_dir, name, certify):
    with open(f"{inputs_dir}/{name}.inputs.json") as f:
        meta = json.load(f)
    cfg = meta["config"]
    tensors = read_safetensors(f"{inputs_dir}/{name}.inputs.safetensors")
    digest = inputs_digest(tensors)
    assert digest == meta["inputsSha256"], "the inputs do not match their digest"
    golden = train(cfg, tensors)
    envelope = {}
    for seed in range(1, certify + 1):
        for k, v in differences(train(cfg, tensors, noise_seed=seed), golden).items():
            envelope[k] = max(envelope.get(k, 0.0), v)
    summary = (f"{name}: loss {golden['losses'][0]:.5f} -> {golden['losses'][-1]:.5f}, lr "
               f"{golden['lrs'][0]:.4g} .. {golden['lrs'][-1]:.4g}, eval loss {golden['evalLoss']:.5f}"
               + (f"; noise envelope over {certify} runs: " +
                  ", ".join(f"{k} {v:.1e}" for k, v in envelope.items()) if certify else ""))
    print(summary)
    if any(v > TOL / 5 for v in envelope.values()):
        raise SystemExit(f"{name}: float32-level noise moves the trajectory by more than {TOL / 10:g}: "
                         "the configuration is too chaotic for a step-exact comparison (lower the "
                         "learning rate); no goldens written")
    if golden_dir is None:
        return
    out = {f"final/{k}": v for k, v in golden["final"].items()}
    out["eval/logits"] = golden["logits"]
    write_safetensors(f"{golden_dir}/{name}.safetensors", out)
    with open(f"{golden_dir}/{name}.json", "w") as f:
        json.dump({
            "variant": name,
            "reference": f"torch {torch.__version__}, {str(DT).replace('torch.', '')}, CPU",
            "inputsSha256": digest,
            "config": cfg,
            "losses": golden["losses"],
            "lrs": golden["lrs"],
            "evalLoss": golden["evalLoss"],
            "noiseEnvelope": {"runs": certify, "relativeNoise": 1e-7, **envelope},
        }, f, indent=2)
        f.write("\n")


def main():
    global DT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs_dir")
    ap.add_argument("golden_dir")
    ap.add_argument("--certify", type=int, default=4, help="perturbed reruns (default 4; 0: none)")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = ap.parse_args()
    DT = torch.float64 if args.dtype == "float64" else torch.float32
    names = sorted(p[:-len(".inputs.json")] for p in os.listdir(args.inputs_dir)
                   if p.endswith(".inputs.json"))
    if not names:
        raise SystemExit(f"no *.inputs.json in {args.inputs_dir}")
    os.makedirs(args.golden_dir, exist_ok=True)
    for name in names:
        run(args.inputs_dir, args.golden_dir, name, args.certify)


if __name__ == "__main__":
    main()
