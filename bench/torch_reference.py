# Writes a torchvision ResNet-50 (random weights, randomised BatchNorm statistics) as safetensors,
# an NHWC input batch and torchvision's logits, for bench/torch_parity.ts.
# Usage: python3 bench/torch_reference.py SIZE BATCH OUT_DIR
import sys, torch, torchvision
from safetensors.torch import save_file
torch.manual_seed(0)
m = torchvision.models.resnet50(weights=None).eval()
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5)
        mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.1, 0.1)
size, batch, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
x = torch.randn(batch, 3, size, size)
with torch.no_grad():
    y = m(x)
save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f"{out}/r50.safetensors")
x.permute(0, 2, 3, 1).contiguous().numpy().astype("<f4").tofile(f"{out}/x.bin")
y.numpy().astype("<f4").tofile(f"{out}/y.bin")
print("torch", torch.__version__, "torchvision", torchvision.__version__, "logit range", float(y.abs().max()))
