#!/usr/bin/env python3
r"""PyTorch throughput baseline for the model lrkv trains (MHA or LRKV attention).

bench/gpu ships this file alone to the GPU machine (one H200, torch 2.x with CUDA), runs it once per
variant inside its time-limited device script, and compares the tokens/s, MFU and peak memory in
the JSON it writes (--out, and the same object on stdout) with lrkv's own training step on the same
shape. So that the two numbers describe the same work, the model here has lrkv's architecture
exactly (the equations of tests/reference/torch_reference.py, written in a bf16-friendly form):
decoder-only, pre-norm RMSNorm blocks, per-head QK-norm (RMSNorm without weight) then rotate-half
RoPE, a causal scaled_dot_product_attention core (FlashAttention on the GPU), the non-gated ReLU^2
MLP d -> d_ff -> d, a final RMSNorm and an untied LM head (--tie ties it). It imports nothing from
the repository; --check_against_reference loads the float64 reference by path and checks that the
logits agree on a tiny model.

One training step: bf16 autocast over fp32 master parameters, cross-entropy on a fixed seeded batch
of random tokens (the same batch every step, so the loss falls and shows the model trains), backward,
AdamW (fused on CUDA), zero_grad(set_to_none=True). --micro_batch 0 finds the largest micro-batch of
32, 16, 8, 4, 2, 1 that fits on CUDA. It also runs on the CPU at a tiny shape, which is how it is
tested without a GPU:

  python3 bench/gpu/torch_baseline.py --attention lrkv --d_model 64 --n_layers 2 --n_heads 4 \
      --lrkv_rank 4 --vocab 256 --seq_len 32 --micro_batch 2 --steps 3 --warmup 1 --device cpu
"""
import argparse
import gc
import importlib.util
import json
import math
import platform
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_EPS = 1e-5        # lrkv's default norm_eps (model/config.proto: 0 means 1e-5)
ROPE_THETA = 10000.0   # lrkv's default rope_theta
SEARCH_MICRO_BATCHES = (32, 16, 8, 4, 2, 1)
FLOPS_FORMULA = ("flops_per_token = 6 * (non-embedding matmul params + LM head params) "
                 "+ 6 * n_layers * seq_len * n_heads * d_head")


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------
def rms(x, eps, weight=None):
    """x / sqrt(mean(x^2) + eps) [* weight] over the last dim, in at least fp32, returned in x's dtype."""
    xf = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16 mean of squares loses too much
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (y if weight is None else y * weight).to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))  # (d,)

    def forward(self, x):
        return rms(x, NORM_EPS, self.weight)


def rope_tables(T, d_head, dtype, device):
    """cos, sin (1, T, 1, d_head/2) of angle t * theta^(-2i/d_head), built in float64 then cast."""
    i = torch.arange(d_head // 2, dtype=torch.float64, device=device)
    freq = ROPE_THETA ** (-2.0 * i / d_head)  # (d_head/2,)
    ang = torch.arange(T, dtype=torch.float64, device=device)[:, None] * freq  # (T, d_head/2)
    return ang.cos().to(dtype)[None, :, None, :], ang.sin().to(dtype)[None, :, None, :]


def rope(x, cos, sin):
    """Rotate-half RoPE over the whole head: x (B, T, H, d_h) -> same shape and dtype."""
    xf = x.to(torch.promote_types(x.dtype, cos.dtype))  # rotate in the tables' precision
    a, b = xf.chunk(2, dim=-1)  # (B, T, H, d_h/2) each
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1).to(x.dtype)


def causal_attention(q, k, v):
    """q, k, v (B, H, T, d_h) -> (B, H, T, d_h), scale 1/sqrt(d_h)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    # torch < 2.0 (the CPU test machine's 1.13) has no SDPA: the same softmax written out.
    T = q.shape[2]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # (B, H, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(-1) @ v


class Attention(nn.Module):
    """The part every variant shares: QK-norm, RoPE, the causal core and wo; a subclass gives qkv."""

    def __init__(self, d, H):
        super().__init__()
        self.H, self.dh = H, d // H
        self.wo = nn.Linear(H * self.dh, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q, k, v = self.qkv(x)  # (B, T, H, d_h) each
        q = rope(rms(q, NORM_EPS), cos, sin)
        k = rope(rms(k, NORM_EPS), cos, sin)
        o = causal_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # (B, H, T, d_h)
        return self.wo(o.transpose(1, 2).reshape(B, T, self.H * self.dh))  # (B, T, d)


class MHA(Attention):
    def __init__(self, d, H):
        super().__init__(d, H)
        self.qkv_proj = nn.Linear(d, 3 * H * self.dh, bias=False)  # one GEMM for [wq | wk | wv]

    def qkv(self, x):
        B, T, _ = x.shape
        return self.qkv_proj(x).view(B, T, 3, self.H, self.dh).unbind(2)  # (B, T, H, d_h) each


class LRKV(Attention):
    """K_h = x Wk_shared + (x Uk_h) Bk_h^T, V_h likewise; q as MHA."""

    def __init__(self, d, H, r):
        super().__init__(d, H)
        self.r = r
        # one GEMM for [wq (H d_h) | wk_shared (d_h) | wv_shared (d_h) | uk (H r) | uv (H r)]
        self.widths = [H * self.dh, self.dh, self.dh, H * r, H * r]
        self.qkv_proj = nn.Linear(d, sum(self.widths), bias=False)
        self.bk = nn.Parameter(torch.empty(H, self.dh, r))  # (H, d_h, r)
        self.bv = nn.Parameter(torch.empty(H, self.dh, r))  # (H, d_h, r)

    def qkv(self, x):
        B, T, _ = x.shape
        q, k_shared, v_shared, ck, cv = self.qkv_proj(x).split(self.widths, dim=-1)

        def rebuild(shared, coef, basis):  # (B, T, d_h), (B, T, H r), (H, d_h, r) -> (B, T, H, d_h)
            low_rank = torch.einsum("bthr,hdr->bthd", coef.view(B, T, self.H, self.r), basis)
            return shared[:, :, None, :] + low_rank

        return q.view(B, T, self.H, self.dh), rebuild(k_shared, ck, self.bk), rebuild(v_shared, cv, self.bv)


class MLP(nn.Module):
    def __init__(self, d, d_ff):
        super().__init__()
        self.w_in = nn.Linear(d, d_ff, bias=False)
        self.w_out = nn.Linear(d_ff, d, bias=False)

    def forward(self, x):  # (B, T, d) -> (B, T, d)
        return self.w_out(F.relu(self.w_in(x)).square())


class Block(nn.Module):
    def __init__(self, args):
        super().__init__()
        d = args.d_model
        self.attn_norm, self.mlp_norm = RMSNorm(d), RMSNorm(d)
        self.attn = MHA(d, args.n_heads) if args.attention == "mha" else LRKV(d, args.n_heads, args.lrkv_rank)
        self.mlp = MLP(d, args.d_ff)

    def forward(self, x, cos, sin):
        h = x + self.attn(self.attn_norm(x), cos, sin)
        return h + self.mlp(self.mlp_norm(h))


class Model(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.dh = args.d_model // args.n_heads
        self.embed = nn.Embedding(args.vocab, args.d_model)
        self.layers = nn.ModuleList(Block(args) for _ in range(args.n_layers))
        self.final_norm = RMSNorm(args.d_model)
        self.lm_head = None if args.tie else nn.Linear(args.d_model, args.vocab, bias=False)

    def logits(self, tokens):
        """tokens (B, T) -> logits (B, T, V)."""
        x = self.embed(tokens)  # (B, T, d), fp32: the residual stream stays in the master precision
        cos, sin = rope_tables(tokens.shape[1], self.dh, x.dtype, x.device)
        for layer in self.layers:
            x = layer(x, cos, sin)
        head = self.embed.weight if self.lm_head is None else self.lm_head.weight  # (V, d)
        return F.linear(self.final_norm(x), head)

    def forward(self, tokens, targets):
        """Mean cross-entropy over all B*T positions; inside forward so torch.compile fuses it."""
        logits = self.logits(tokens)  # (B, T, V), bf16 under autocast: the softmax needs at least fp32
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def init_weights(model, args):
    """Scaled-normal init: it only has to give a finite, falling loss; the speed does not depend on it."""
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            nn.init.ones_(p)
        elif name.endswith((".bk", ".bv")):
            # (x U) B^T sums r terms: 1/sqrt(r) gives it the scale of x Wk_shared.
            nn.init.normal_(p, std=1.0 / math.sqrt(args.lrkv_rank))
        else:
            nn.init.normal_(p, std=0.02)


# --------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------
def param_counts(model, args):
    """Total parameters and the split the FLOP formula needs."""
    total = sum(p.numel() for p in model.parameters())
    norms = sum(p.numel() for n, p in model.named_parameters() if n.endswith("norm.weight"))
    embed = model.embed.weight.numel()
    head_untied = 0 if model.lm_head is None else model.lm_head.weight.numel()
    return {"total": total, "embedding": embed, "lm_head": args.vocab * args.d_model, "norms": norms,
            "non_embedding_matmul": total - embed - head_untied - norms}


def flops_per_token(counts, args):
    dh = args.d_model // args.n_heads
    return (6 * (counts["non_embedding_matmul"] + counts["lm_head"])
            + 6 * args.n_layers * args.seq_len * args.n_heads * dh)


# --------------------------------------------------------------------------
# Training step and timing
# --------------------------------------------------------------------------
def make_step(model_fn, opt, device, dtype):
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=(dtype == "bf16"))

    def step(inputs, targets):  # (B, T) each -> the loss, detached, not synchronised
        with amp:
            loss = model_fn(inputs, targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()
    return step


def make_batch(args, mb, device):
    """A fixed batch: inputs and next-token targets (mb, T) from one seeded (mb, T+1) draw."""
    g = torch.Generator().manual_seed(args.seed)
    seq = torch.randint(0, args.vocab, (mb, args.seq_len + 1), generator=g).to(device)  # (mb, T+1)
    return seq[:, :-1].contiguous(), seq[:, 1:].contiguous()


def free_memory(opt):
    opt.zero_grad(set_to_none=True)
    gc.collect()
    torch.cuda.empty_cache()


def first_step(step, opt, args, device):
    """Runs the first step at the largest micro-batch that fits -> (mb, batch, loss, search log)."""
    if args.micro_batch > 0:
        sizes = [args.micro_batch]
    elif device.type == "cuda":  # the largest that fits, at most --max_micro_batch
        sizes = [mb for mb in SEARCH_MICRO_BATCHES if args.max_micro_batch <= 0 or mb <= args.max_micro_batch]
    else:
        sizes = [1]
    log = []
    for mb in sizes:
        batch = make_batch(args, mb, device)
        try:
            loss = step(*batch).item()
            log.append({"micro_batch": mb, "fits": True})
            return mb, batch, loss, log
        except torch.cuda.OutOfMemoryError:
            if len(sizes) == 1:
                raise
        # Freed only here, after the except block: its traceback held the failed step's activations.
        log.append({"micro_batch": mb, "fits": False})
        del batch
        free_memory(opt)
    raise RuntimeError("micro-batch 1 does not fit")


def compile_or_eager(model, opt, args, device):
    """The step function and its first step; a torch.compile failure falls back to eager."""
    error = None
    if args.compile and not hasattr(torch, "compile"):
        error = f"torch {torch.__version__} has no torch.compile"
    elif args.compile:
        try:
            step = make_step(torch.compile(model, dynamic=False), opt, device, args.dtype)
            return (step, True, None) + first_step(step, opt, args, device)
        except torch.cuda.OutOfMemoryError:
            raise  # micro-batch 1 does not fit: not a compile failure
        except Exception as e:  # torch.compile raises many types (BackendCompilerFailed, Unsupported, ...)
            error = f"{type(e).__name__}: {e}"[:2000]
        torch._dynamo.reset()  # drop the half-built graphs and the memory they hold
        free_memory(opt)
    step = make_step(model, opt, device, args.dtype)
    return (step, False, error) + first_step(step, opt, args, device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def benchmark(args):
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = Model(args).to(device)
    init_weights(model, args)
    fused = {"fused": True} if device.type == "cuda" else {}  # one kernel per step for all params
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1, **fused)

    t0 = time.perf_counter()
    step, compiled, error, mb, batch, loss_first, search = compile_or_eager(model, opt, args, device)
    for _ in range(args.warmup):
        step(*batch)
    sync(device)
    setup_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step(*batch)
    sync(device)
    seconds = time.perf_counter() - t0

    counts = param_counts(model, args)
    fpt = flops_per_token(counts, args)
    tokens_per_s = mb * args.seq_len * args.steps / seconds
    return {
        "torch_version": torch.__version__,
        "device": device.type,
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else platform.processor() or "cpu"),
        "dtype": args.dtype,
        "attention": args.attention,
        "attention_core": "sdpa" if hasattr(F, "scaled_dot_product_attention") else "explicit",
        "shape": {"d_model": args.d_model, "n_layers": args.n_layers, "n_heads": args.n_heads,
                  "d_head": args.d_model // args.n_heads,
                  "lrkv_rank": args.lrkv_rank if args.attention == "lrkv" else None,
                  "d_ff": args.d_ff, "vocab": args.vocab, "seq_len": args.seq_len, "tie_embeddings": args.tie},
        "compiled": compiled,
        "compile_error": error,
        "micro_batch": mb,
        "micro_batch_search": search,
        "warmup_steps": args.warmup,
        "steps": args.steps,
        "setup_seconds": setup_s,  # first step (compile, micro-batch search) plus warm-up
        "seconds": seconds,
        "seconds_per_step": seconds / args.steps,
        "tokens_per_step": mb * args.seq_len,
        "tokens_per_s": tokens_per_s,
        # peak over the timed steps (reset after warm-up), so a failed search try does not count
        "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "params": counts,
        "flops_formula": FLOPS_FORMULA,
        "flops_per_token": fpt,
        "peak_flops": args.peak_flops,
        "mfu": fpt * tokens_per_s / args.peak_flops,
        "loss_first": loss_first,
        "loss_last": loss.item(),
    }


# --------------------------------------------------------------------------
# Equality with the float64 reference
# --------------------------------------------------------------------------
def load_reference_params(model, P, cfg):
    """Copies the reference's {name: (in, out) tensor} params into the model's Linear (out, in) layout."""
    a_names = {"mha": ["wq", "wk", "wv"], "lrkv": ["wq", "wk_shared", "wv_shared", "uk", "uv"]}[cfg["attention"]]
    mine = {"embed.weight": P["embed.weight"], "final_norm.weight": P["final_norm.weight"]}
    if not cfg["tie_embeddings"]:
        mine["lm_head.weight"] = P["lm_head.weight"]
    for i in range(cfg["n_layers"]):
        p = f"layers.{i}."
        mine[p + "attn.qkv_proj.weight"] = torch.cat([P[p + "attn." + n] for n in a_names], dim=1).T
        mine[p + "attn.wo.weight"] = P[p + "attn.wo"].T
        mine[p + "mlp.w_in.weight"] = P[p + "mlp.w_in"].T
        mine[p + "mlp.w_out.weight"] = P[p + "mlp.w_out"].T
        same = ("attn_norm.weight", "mlp_norm.weight") + (("attn.bk", "attn.bv") if cfg["attention"] == "lrkv" else ())
        for n in same:  # already in the model's layout
            mine[p + n] = P[p + n]
    model.load_state_dict({n: t.detach().clone() for n, t in mine.items()}, strict=True)


def check_against_reference(path):
    """Logits and loss of this model vs tests/reference/torch_reference.py, float64, CPU; -> exit status."""
    spec = importlib.util.spec_from_file_location("torch_reference", path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    results, ok = [], True
    for attention in ("mha", "lrkv"):
        for tie in (False, True):
            args = argparse.Namespace(attention=attention, d_model=16, n_layers=2, n_heads=4, lrkv_rank=3,
                                      d_ff=24, vocab=13, seq_len=7, tie=tie)
            cfg = ref.tiny_config(attention=attention, d_model=16, n_layers=2, n_heads=4, d_head=4, lrkv_rank=3,
                                  d_ff=24, vocab_size=13, seq_len=7, activation="relu2", norm="rmsnorm",
                                  norm_eps=NORM_EPS, qk_norm=True, rope_theta=ROPE_THETA, tie_embeddings=tie)
            P = ref.random_params(cfg, seed=11, dtype=torch.float64)
            tokens, targets = ref.random_batch(cfg, B=3, seed=12)  # (B, T) each
            ref_logits, ref_loss = ref.forward(cfg, P, tokens, targets)
            model = Model(args).double()
            load_reference_params(model, P, cfg)
            with torch.no_grad():
                logits, loss = model.logits(tokens), model(tokens, targets)
            n_ref = sum(math.prod(s) for s in ref.param_shapes(cfg).values())
            r = {"attention": attention, "tie": tie,
                 "max_abs_logit_diff": (logits - ref_logits).abs().max().item(),
                 "loss_diff": abs(loss.item() - ref_loss.item()),
                 "params": sum(p.numel() for p in model.parameters()), "reference_params": n_ref}
            r["pass"] = r["max_abs_logit_diff"] < 1e-10 and r["loss_diff"] < 1e-10 and r["params"] == n_ref
            ok = ok and r["pass"]
            results.append(r)
    print(json.dumps({"check_against_reference": path, "results": results, "pass": ok}, indent=1))
    return 0 if ok else 1


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attention", choices=("mha", "lrkv"), default="mha")
    ap.add_argument("--d_model", type=int, default=2048)
    ap.add_argument("--n_layers", type=int, default=24)
    ap.add_argument("--n_heads", type=int, default=16)
    ap.add_argument("--lrkv_rank", type=int, default=64, help="rank r per head of LRKV's K and V updates")
    ap.add_argument("--d_ff", type=int, default=0, help="MLP width; 0 means 4 * d_model")
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--seq_len", type=int, default=2048)
    ap.add_argument("--tie", action="store_true", help="tie the LM head to the embedding")
    ap.add_argument("--micro_batch", type=int, default=0,
                    help="sequences per step; 0: the largest of 32,16,8,4,2,1 that fits on CUDA, 1 on CPU")
    ap.add_argument("--max_micro_batch", type=int, default=0,
                    help="with --micro_batch 0: search from this size down (0: from 32)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model; falls back to eager on error")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16",
                    help="bf16: autocast over fp32 master params; fp32: no autocast")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peak_flops", type=float, default=989e12, help="MFU denominator (H200 dense bf16)")
    ap.add_argument("--out", help="write the JSON result here as well as to stdout")
    ap.add_argument("--check_against_reference", metavar="TORCH_REFERENCE_PY",
                    help="only compare this model's float64 logits with tests/reference/torch_reference.py")
    args = ap.parse_args()
    args.d_ff = args.d_ff or 4 * args.d_model
    if args.d_model % args.n_heads or (args.d_model // args.n_heads) % 2:
        ap.error("d_model must be n_heads times an even d_head (RoPE rotates pairs)")
    if args.steps < 1:
        ap.error("--steps must be at least 1")
    return args


def main():
    args = parse_args()
    if args.check_against_reference:
        sys.exit(check_against_reference(args.check_against_reference))
    result = benchmark(args)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
