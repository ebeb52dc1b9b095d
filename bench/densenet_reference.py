# Goldens from the official ImbalancedLearning DenseNet3 (models/densenet.py, not part of this
# repository: pass its path) for tests/nn_densenet_test.ts:
# - OUT_DIR/densenet_bc150_state.json: the paper's DenseNet-BC-150's parameter count and its
#   state dict's entries in order as "name d0,d1,..." (torch layout; "name" for the scalar
#   num_batches_tracked);
# - OUT_DIR/densenet_tiny_parity.json: an NHWC input batch and two tiny models with random weights
#   and BatchNorm statistics, a DenseNet-BC (depth 16, growth 4) and a basic DenseNet (depth 10,
#   growth 4, no bottleneck, reduction 1: DenseNet3's defaults), with the official model's features
#   in eval mode and in training mode (batch statistics); float32 arrays as base64 of
#   little-endian bytes.
# Usage: /usr/bin/python3 bench/densenet_reference.py PATH/TO/models/densenet.py tests/fixtures
#        deno fmt tests/fixtures/densenet_*.json
import base64, importlib.util, json, sys
import torch


def f32(t):
    """A tensor's values as base64 of little-endian float32."""
    return base64.b64encode(t.detach().contiguous().float().numpy().astype("<f4").tobytes()).decode()

spec = importlib.util.spec_from_file_location("official_densenet", sys.argv[1])
official = importlib.util.module_from_spec(spec)
spec.loader.exec_module(official)
out = sys.argv[2]

torch.manual_seed(0)
net = official.DenseNet3(10, 150, 12, reduction=0.5, bottleneck=True)
state = [f"{k} {','.join(map(str, v.shape))}".rstrip() for k, v in net.state_dict().items()]
golden = {
    "model": "DenseNet3(10, 150, 12, reduction=0.5, bottleneck=True)",
    "torch": torch.__version__,
    "parameters": sum(p.numel() for p in net.parameters()),
    "stateEntries": len(state),
    "featureDim": net.in_planes,
    "classifierParameters10": sum(p.numel() for p in official.Classifier(net.in_planes, 10).parameters()),
    "state": state,
}
with open(f"{out}/densenet_bc150_state.json", "w") as f:
    json.dump(golden, f, separators=(",", ":"))
    f.write("\n")

def parity_case(model, label, x):
    """Random BN statistics, the official features in eval and training mode."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    weights = {k: {"shape": list(v.shape), "data": f32(v)}
               for k, v in model.state_dict().items() if "num_batches_tracked" not in k}
    model.eval()
    with torch.no_grad():
        y_eval = model(x)
    model.train()
    with torch.no_grad():
        y_train = model(x)
    return {"model": label, "state": weights, "featuresEval": f32(y_eval),
            "featuresTrain": f32(y_train)}


x = torch.randn(2, 3, 8, 8)
parity = {
    "torch": torch.__version__,
    "inputShape": [2, 8, 8, 3],
    "input": f32(x.permute(0, 2, 3, 1)),
    "cases": [
        parity_case(official.DenseNet3(10, 16, 4, reduction=0.5, bottleneck=True),
                    "DenseNet3(10, 16, 4, reduction=0.5, bottleneck=True)", x),
        parity_case(official.DenseNet3(10, 10, 4), "DenseNet3(10, 10, 4)", x),
    ],
}
with open(f"{out}/densenet_tiny_parity.json", "w") as f:
    json.dump(parity, f, separators=(",", ":"))
    f.write("\n")
print("parameters", golden["parameters"], "state entries", len(state), "d", golden["featureDim"])
