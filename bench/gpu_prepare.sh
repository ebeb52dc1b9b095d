#!/usr/bin/env bash
# Prepares `.gl/` (ignored by git) for a bare GPU machine with no network (see bench/README.md):
# the Vulkan loader and GL/EGL libraries as amd64 Debian packages and this machine's
# Deno binary, xz-compressed. Run once from the repository root on a machine with apt and Deno;
# then carry `.gl` to the GPU machine and run bench/gpu_run.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
# shellcheck disable=SC2086
apt-get $o update -qq
# shellcheck disable=SC2086
(cd .gl && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
if [ ! -s .gl/deno.xz ]; then
  xz -9 -T0 -c "$(readlink -f "$(command -v deno)")" > .gl/deno.xz
fi
ls -la .gl
du -sh .gl
