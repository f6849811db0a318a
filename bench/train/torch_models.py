"""PyTorch CPU reference for Kestrel's training-speed benchmark (`npm run bench -- train`).

The same two networks that Kestrel trains (training/models/spec.ts), trained here on synthetic
random data of the same shapes (ids uniform), timing full training steps (forward + backward +
optimizer) after a warm-up. Prints one JSON line per model on stdout:

  {"model": "two-tower", "examples_per_s": ..., "batch": 512, "threads": 2, ...}

examples_per_s = the median over --windows timed windows of (batch * steps_in_window / seconds).
Extra keys (torch version, steps, per-window rates, cpu_util, masked-bag implementation, ...)
follow the four fixed ones.

Run with the benchmark's own venv (bench/train/setup-torch.sh):
  .infra/torch-venv/bin/python bench/train/torch_models.py --batch 512 --steps 200
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # numpy is not installed
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# Shapes (MovieLens-100k sized: 943 users, 1682 items; row 0 is padding / unknown).
USERS = 944
ITEMS = 1683
USER_FEATURES = 64
CONTENT_FEATURES = 629
CATEGORIES = 19
HISTORY_LEN = 50
USER_FEATURE_LEN = 4
CONTENT_LEN = 8
CATEGORY_LEN = 6
DENSE = 8
WIDE_ROWS = 1 << 18
WIDE_LEN = 6
TEMPERATURE = 0.05


class MaskedMeanBag(nn.Module):
    """mean over a padded [B, L] id list with a 0/1 mask: Σ mask·E[id] / max(Σ mask, 1).

    impl="weights": nn.EmbeddingBag(mode="sum", sparse=True) with per_sample_weights = mask / count.
    impl="gather":  nn.Embedding(sparse=True) gather to [B, L, D], multiply by the mask, sum, divide.
    """

    def __init__(self, rows: int, dim: int, impl: str):
        super().__init__()
        self.impl = impl
        if impl == "weights":
            self.table = nn.EmbeddingBag(rows, dim, mode="sum", sparse=True)
        elif impl == "gather":
            self.table = nn.Embedding(rows, dim, sparse=True)
        else:
            raise ValueError(f"unknown masked-bag impl {impl!r}")

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        count = mask.sum(dim=1, keepdim=True).clamp_min(1.0)
        if self.impl == "weights":
            return self.table(ids, per_sample_weights=mask / count)
        return (self.table(ids) * mask.unsqueeze(-1)).sum(dim=1) / count


def bag(rows: int, dim: int, mode: str = "mean") -> nn.EmbeddingBag:
    """A bag whose ids are all present (no padding): nn.EmbeddingBag over a [B, L] tensor."""
    return nn.EmbeddingBag(rows, dim, mode=mode, sparse=True)


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def init_embeddings(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
            nn.init.normal_(m.weight, std=0.05)


class TwoTower(nn.Module):
    def __init__(self, masked_impl: str):
        super().__init__()
        # user tower: [user id 32 | history 64 | user features 16] = 112 → 128 → ReLU → 64 → L2
        self.user_id = bag(USERS, 32)
        self.history = MaskedMeanBag(ITEMS, 64, masked_impl)
        self.user_feat = bag(USER_FEATURES, 16)
        self.user_mlp = mlp([112, 128, 64])
        # item tower: [item id 32 | content features 32] = 64 → 128 → ReLU → 64 → L2
        self.item_id = bag(ITEMS, 32)
        self.content = bag(CONTENT_FEATURES, 32)
        self.item_mlp = mlp([64, 128, 64])
        init_embeddings(self)

    def loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        u = torch.cat([self.user_id(b["user"]), self.history(b["hist"], b["hist_mask"]),
                       self.user_feat(b["ufeat"])], dim=1)
        u = F.normalize(self.user_mlp(u), dim=1)
        v = torch.cat([self.item_id(b["item"]), self.content(b["content"])], dim=1)
        v = F.normalize(self.item_mlp(v), dim=1)
        # in-batch softmax with the logQ correction (Yi et al. 2019); target = the diagonal
        logits = (u @ v.t()) / TEMPERATURE - b["logq"].unsqueeze(0)
        return F.cross_entropy(logits, b["target"])


class WideDeep(nn.Module):
    def __init__(self, masked_impl: str):
        super().__init__()
        self.user_id = bag(USERS, 16)
        self.item_id = bag(ITEMS, 16)
        self.categories = MaskedMeanBag(CATEGORIES, 8, masked_impl)
        self.user_feat = bag(USER_FEATURES, 8)
        self.deep = mlp([48 + DENSE, 64, 32, 2])
        self.wide = bag(WIDE_ROWS, 2, mode="sum")
        init_embeddings(self)

    def loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        x = torch.cat([self.user_id(b["user"]), self.item_id(b["item"]),
                       self.categories(b["cats"], b["cats_mask"]), self.user_feat(b["ufeat"]),
                       b["dense"]], dim=1)
        logits = self.deep(x) + self.wide(b["wide"])
        return F.binary_cross_entropy_with_logits(logits, b["labels"])


def padded(gen: torch.Generator, batch: int, rows: int, length: int, min_len: int):
    """Uniform ids in [1, rows) with a per-row length uniform in [min_len, length]; id 0 + mask 0 pad."""
    ids = torch.randint(1, rows, (batch, length), generator=gen)
    lens = torch.randint(min_len, length + 1, (batch, 1), generator=gen)
    mask = (torch.arange(length).unsqueeze(0) < lens).float()
    return ids * mask.long(), mask


def two_tower_batch(gen: torch.Generator, batch: int, logq_table: torch.Tensor):
    item = torch.randint(1, ITEMS, (batch, 1), generator=gen)
    hist, hist_mask = padded(gen, batch, ITEMS, HISTORY_LEN, 1)
    return {
        "user": torch.randint(1, USERS, (batch, 1), generator=gen),
        "hist": hist,
        "hist_mask": hist_mask,
        "ufeat": torch.randint(0, USER_FEATURES, (batch, USER_FEATURE_LEN), generator=gen),
        "item": item,
        "content": torch.randint(0, CONTENT_FEATURES, (batch, CONTENT_LEN), generator=gen),
        "logq": logq_table[item.squeeze(1)],
        "target": torch.arange(batch),
    }


def ranker_batch(gen: torch.Generator, batch: int):
    cats, cats_mask = padded(gen, batch, CATEGORIES, CATEGORY_LEN, 1)
    return {
        "user": torch.randint(1, USERS, (batch, 1), generator=gen),
        "item": torch.randint(1, ITEMS, (batch, 1), generator=gen),
        "cats": cats,
        "cats_mask": cats_mask,
        "ufeat": torch.randint(0, USER_FEATURES, (batch, USER_FEATURE_LEN), generator=gen),
        "dense": torch.randn(batch, DENSE, generator=gen),
        "wide": torch.randint(0, WIDE_ROWS, (batch, WIDE_LEN), generator=gen),
        "labels": torch.randint(0, 2, (batch, 2), generator=gen).float(),
    }


def optimizers(model: nn.Module) -> list[torch.optim.Optimizer]:
    """Adam (lr 1e-3) on the dense layers, Adagrad (lr 0.05) on the embedding tables.

    The tables use sparse gradients; torch.optim.Adagrad supports sparse gradients (SparseAdam
    would be the other choice, but the spec asks for Adagrad on the embeddings).
    """
    sparse, dense = [], []
    for m in model.modules():
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
            sparse.append(m.weight)
        elif isinstance(m, nn.Linear):
            dense.extend(m.parameters(recurse=False))
    assert len(sparse) + len(dense) == len(list(model.parameters()))
    return [torch.optim.Adam(dense, lr=1e-3), torch.optim.Adagrad(sparse, lr=0.05)]


def measure(name: str, model: nn.Module, batches: list, args) -> dict:
    opts = optimizers(model)
    model.train()

    def step(i: int) -> torch.Tensor:
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss = model.loss(batches[i % len(batches)])
        loss.backward()
        for o in opts:
            o.step()
        return loss.detach()

    first = float(step(0))
    for i in range(1, args.warmup):
        step(i)
    per_window = max(1, args.steps // args.windows)
    rates, i, last = [], args.warmup, first
    wall = cpu = 0.0
    for _ in range(args.windows):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(per_window):
            loss = step(i)
            i += 1
        last = float(loss)
        dt = time.perf_counter() - t0
        wall += dt
        cpu += time.process_time() - c0
        rates.append(args.batch * per_window / dt)
    if not math.isfinite(last):
        raise RuntimeError(f"{name}: loss is not finite ({last})")
    return {
        "model": name,
        "examples_per_s": round(statistics.median(rates), 1),
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "steps": per_window * args.windows,
        "warmup": args.warmup,
        "windows": [round(r, 1) for r in rates],
        # process CPU seconds / wall seconds over the timed windows: well under `threads` means the
        # machine was busy with other work (or the step is not parallel), so compare with care
        "cpu_util": round(cpu / wall, 2),
        "masked_bag": args.masked_bag,
        "sparse_optimizer": "Adagrad",
        "dense_optimizer": "Adam",
        "loss_first": round(first, 4),
        "loss_last": round(last, 4),
        "torch": torch.__version__,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=200, help="timed steps in all (split into --windows)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    p.add_argument("--windows", type=int, default=5, help="timed windows; the median is reported")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2: the dev machine)")
    p.add_argument("--model", choices=["all", "two-tower", "ranker"], default="all")
    p.add_argument("--masked-bag", choices=["weights", "gather"], default="weights",
                   help="padded mean bags (history, categories): EmbeddingBag + per_sample_weights "
                        "(default, the faster here) or an Embedding gather + masked mean")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.batch < 1 or args.steps < 1 or args.windows < 1 or args.warmup < 1:
        p.error("--batch, --steps, --windows and --warmup must be >= 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    pool = 16  # distinct pre-generated batches, cycled, so data generation is not timed

    if args.model in ("all", "two-tower"):
        popularity = torch.rand(ITEMS, generator=gen) + 0.01
        logq_table = (popularity / popularity.sum()).log()
        batches = [two_tower_batch(gen, args.batch, logq_table) for _ in range(pool)]
        print(json.dumps(measure("two-tower", TwoTower(args.masked_bag), batches, args)), flush=True)
    if args.model in ("all", "ranker"):
        batches = [ranker_batch(gen, args.batch) for _ in range(pool)]
        print(json.dumps(measure("ranker", WideDeep(args.masked_bag), batches, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
