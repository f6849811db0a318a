#!/usr/bin/env bash
# PyTorch (CPU) for the training-speed benchmark's reference numbers (`npm run bench -- train`).
#
#   bash bench/train/setup-torch.sh          install once (a no-op when already installed)
#   bash bench/train/setup-torch.sh --force  reinstall from scratch
#
# Creates the project-local virtualenv .infra/torch-venv (git-ignored via .infra/) and installs
# PyTorch from PyPI into it. PyTorch is never a dependency of Kestrel itself: only the benchmark
# runs .infra/torch-venv/bin/python bench/train/torch_models.py.
#
# PyPI serves no CPU-only torch for Linux x86_64: its wheel (torch 2.15.0+cu132, 540 MB) declares
# the CUDA toolkit, cuda-bindings, cuDNN, NCCL, cuSPARSELt, NVSHMEM and triton as dependencies.
# `pip install torch --no-deps` alone does NOT import: libtorch.so, libtorch_python.so and
# libtorch_global_deps.so are linked (DT_NEEDED) against libtorch_cuda.so, which is linked against
# cudart, cublas(Lt), cudnn, cufft, cufile, cusparse(Lt), nccl, nvrtc, nvshmem and cupti, so those
# shared libraries must exist even for CPU-only use. So: torch with --no-deps, plus exactly the
# NVIDIA library wheels the loader needs (each --no-deps, pinned), plus the pure-Python packages
# torch imports at start-up. Left out: triton, cuda-bindings, cuda-toolkit (metapackage),
# cusolver, curand, nvtx (loaded lazily or never on CPU). The venv is about 4.0 GB (torch 1.2 GB,
# NVIDIA libraries 2.8 GB, of which cuDNN 0.85 GB); a fresh install took 107 s on the dev machine. numpy is not installed (not needed).
# The check at the end imports torch and runs a CPU matmul and one backward pass.
#
# Environment knobs (optional):
#   TORCH_PYTHON   python used to create the venv (default python3; torch 2.15 needs >= 3.10)
set -euo pipefail

TORCH_VERSION=2.15.0
# What `import torch` needs (torch's own Requires-Dist less CUDA/triton), pinned.
DEPS=(
  "filelock==4.3.1"
  "typing-extensions==4.16.0"
  "sympy==1.14.0"
  "mpmath==1.3.0"
  "networkx==3.6.1"
  "jinja2==3.1.6"
  "markupsafe==3.0.4"
  "fsspec==2026.9.0"
  "setuptools==84.2.1"
)
# Shared libraries libtorch_cuda.so / libtorch_python.so are linked against; installed --no-deps.
NVIDIA_LIBS=(
  "nvidia-cuda-runtime==13.2.86"
  "nvidia-cuda-nvrtc==13.2.86"
  "nvidia-cuda-cupti==13.2.86"
  "nvidia-cublas==13.4.1.3"
  "nvidia-cufft==12.2.0.57"
  "nvidia-cufile==1.17.1.22"
  "nvidia-cusparse==12.7.10.12"
  "nvidia-nvjitlink==13.5.37"
  "nvidia-cudnn-cu13==9.26.0.51"
  "nvidia-cusparselt-cu13==0.8.1"
  "nvidia-nccl-cu13==2.30.7"
  "nvidia-nvshmem-cu13==3.7.2"
)

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT_DIR="$(cd -- "$SCRIPT_DIR/../.." && pwd -P)"
VENV_DIR="$ROOT_DIR/.infra/torch-venv"
VENV_PY="$VENV_DIR/bin/python"
MARKER="$VENV_DIR/.kestrel-torch-$TORCH_VERSION"
PYTHON="${TORCH_PYTHON:-python3}"

log() { printf 'setup-torch: %s\n' "$*" >&2; }
die() { printf 'setup-torch: error: %s\n' "$*" >&2; exit 1; }

check() {
  # Import, a CPU matmul and a backward pass, with the benchmark's 2 threads; prints one line.
  "$VENV_PY" - "$TORCH_VERSION" <<'PY'
import sys
import warnings
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch
torch.set_num_threads(2)
a = torch.randn(256, 256, requires_grad=True)
(a @ a).sum().backward()
assert a.grad is not None and a.grad.shape == (256, 256)
assert torch.__version__.split("+")[0] == sys.argv[1], torch.__version__
print(f"setup-torch: torch {torch.__version__} ok: cpu matmul+backward, threads={torch.get_num_threads()}, "
      f"cuda available={torch.cuda.is_available()}", file=sys.stderr)
PY
}

if [[ "${1:-}" == "--force" ]]; then
  log "--force: removing $VENV_DIR"
  rm -rf "$VENV_DIR"
fi

if [[ -f "$MARKER" && -x "$VENV_PY" ]] && check >/dev/null 2>&1; then
  log "torch $TORCH_VERSION already installed in .infra/torch-venv (marker $(basename "$MARKER")); nothing to do"
  exit 0
fi

start=$SECONDS
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; set TORCH_PYTHON to a Python >= 3.10"
if [[ ! -x "$VENV_PY" ]]; then
  log "creating virtualenv .infra/torch-venv with $("$PYTHON" --version 2>&1)"
  mkdir -p "$ROOT_DIR/.infra"
  rm -rf "$VENV_DIR"
  "$PYTHON" -m venv "$VENV_DIR" || die "'$PYTHON -m venv' failed (Debian's python: apt-get install python3-venv)"
fi
rm -f "$VENV_DIR"/.kestrel-torch-*

log "installing torch's import-time dependencies: ${DEPS[*]}"
"$VENV_PY" -m pip install --disable-pip-version-check --no-input -q "${DEPS[@]}" \
  || die "pip install of torch's dependencies failed"

log "installing torch==$TORCH_VERSION from PyPI with --no-deps (keeps pip from pulling triton, cuda-bindings and the whole CUDA toolkit)"
"$VENV_PY" -m pip install --disable-pip-version-check --no-input -q --no-deps "torch==$TORCH_VERSION" \
  || die "pip install torch==$TORCH_VERSION failed"

log "installing the NVIDIA shared libraries torch is linked against, --no-deps: ${NVIDIA_LIBS[*]}"
"$VENV_PY" -m pip install --disable-pip-version-check --no-input -q --no-deps "${NVIDIA_LIBS[@]}" \
  || die "pip install of the NVIDIA runtime libraries failed"

log "checking: import torch, CPU matmul + backward (torch.set_num_threads(2); the benchmark uses 2 threads by default)"
check || die "torch $TORCH_VERSION does not work on CPU in .infra/torch-venv"

touch "$MARKER"
log "done in $((SECONDS - start))s; .infra/torch-venv is $(du -sh "$VENV_DIR" | cut -f1)"
