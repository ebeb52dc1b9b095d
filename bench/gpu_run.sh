#!/usr/bin/env bash
# Runs on a bare GPU machine (see bench/README.md), from the repository root, with `.gl/` carried
# (made by bench/gpu_prepare.sh): unpacks the Vulkan loader and Deno, then runs
# bench/gpu_compare.ts (collapse and PyTorch on the same card) with the given arguments, writing
# its JSON and log under $OUT (default ./.out). Example, within an 8-minute budget:
#   bash bench/gpu_run.sh --budget 480
set -uo pipefail
OUT="${OUT:-.out}"
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.gl/deno.xz'),open('/tmp/deno','wb'))"
chmod +x /tmp/deno
export XDG_RUNTIME_DIR=/tmp PYTHONUNBUFFERED=1
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -e "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
/tmp/deno run -A --no-lock bench/gpu_compare.ts --out "$OUT/gpu_compare.json" "$@" 2>&1 |
  tee "$OUT/gpu_compare.log"
