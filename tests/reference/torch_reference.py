#!/usr/bin/env python3
"""Independent float64 PyTorch reference for the lrkv transformer.

Written from the model equations (tests/reference/README.md), not from the
C++ sources, so that agreement between the two is meaningful evidence.

Importable API:
  param_shapes(cfg)                 -> {name: shape} for every parameter
  forward(cfg, params, tokens, targets=None) -> (logits, loss or None)
  random_params(cfg, seed, dtype)   -> {name: tensor} (for tests / synthetic cases)
  write_case(case_dir, cfg, seed)   -> writes a synthetic case in the C++ dump format
CLI:
  python3 torch_reference.py --selftest
"""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F




# --------------------------------------------------------------------------
# Attention variants: each one's parameters (name under "layers.i.attn." -> shape) and its
# per-head q, k, v from the normed input x (B, T, d), with R, the RoPE width of a head. Every variant
# lrkv registers (model/attention/variant_registry.h) must have an entry here
# (tests/unit/variant_registry_test.cc asks `--variants`).
# --------------------------------------------------------------------------
class Variant:
    """params(cfg) -> {name: shape}; qkv(cfg, P, a, x) -> q, k, v, R for the common core; or, for a
    variant whose heads sum several attentions, attend(cfg, P, a, x, sdpa) -> the heads' output
    (B, T, H*Dv) before wo."""
    def __init__(self, params, qkv=None, attend=None):
        self.params, self.qkv, self.attend = params, qkv, attend


def grouped_params(cfg):  # MHA, GQA, MQA: Hk KV heads
    d, H, dh, hk = cfg["d_model"], cfg["n_heads"], cfg["d_head"], kv_heads_of(cfg)
    return {"wq": (d, H * dh), "wk": (d, hk * dh), "wv": (d, hk * dh), "wo": (H * dh, d)}


def grouped_qkv(cfg, P, a, x):
    B, T, _ = x.shape
    H, dh, hk = cfg["n_heads"], cfg["d_head"], kv_heads_of(cfg)
    q = (x @ P[a + "wq"]).view(B, T, H, dh)
    k = (x @ P[a + "wk"]).view(B, T, hk, dh)
    v = (x @ P[a + "wv"]).view(B, T, hk, dh)
    return q, k, v, dh


def lrkv_params(cfg):
    d, H, dh, r = cfg["d_model"], cfg["n_heads"], cfg["d_head"], cfg["lrkv_rank"]
    return {"wq": (d, H * dh), "wk_shared": (d, dh), "wv_shared": (d, dh), "uk": (d, H * r), "bk": (H, dh, r),
            "uv": (d, H * r), "bv": (H, dh, r), "wo": (H * dh, d)}


def lrkv_qkv(cfg, P, a, x):
    B, T, _ = x.shape
    H, dh, r = cfg["n_heads"], cfg["d_head"], cfg["lrkv_rank"]
    q = (x @ P[a + "wq"]).view(B, T, H, dh)

    # K_h = x Wk_shared + (x U_h) B_h^T ; same for V.
    def lowrank(shared, U, Bm):
        base = (x @ P[a + shared])[:, :, None, :]              # (B,T,1,dh)
        coef = (x @ P[a + U]).view(B, T, H, r)                 # (B,T,H,r)
        return base + torch.einsum("bthr,hdr->bthd", coef, P[a + Bm])
    return q, lowrank("wk_shared", "uk", "bk"), lowrank("wv_shared", "uv", "bv"), dh


def latent_query_params(cfg, m):  # MLA, MLRA: one W_Q, or down, norm and up with q_lora_rank
    d, H, dqk, cq = cfg["d_model"], cfg["n_heads"], m["nope_dim"] + m["rope_dim"], m["q_lora_rank"]
    return {"wq": (d, H * dqk)} if cq == 0 else {"wq_down": (d, cq), "q_norm.weight": (cq,), "wq_up": (cq, H * dqk)}


def latent_query(cfg, P, a, x, m):
    """(B, T, H, dn + dr), per head [nope (dn) | rope (dr)]."""
    B, T, _ = x.shape
    if m["q_lora_rank"] == 0:
        qf = x @ P[a + "wq"]
    else:
        qf = rms(x @ P[a + "wq_down"], cfg["norm_eps"], P[a + "q_norm.weight"]) @ P[a + "wq_up"]
    return qf.view(B, T, cfg["n_heads"], m["nope_dim"] + m["rope_dim"])


def mla_params(cfg):
    d, H, m = cfg["d_model"], cfg["n_heads"], cfg["mla"]
    dn, dr, dv = m["nope_dim"], m["rope_dim"], m["v_dim"]
    c = m["kv_lora_rank"]
    s = latent_query_params(cfg, m)
    s.update({"wkv_down": (d, c), "kv_norm.weight": (c,), "wk_up": (c, H * dn), "wv_up": (c, H * dv),
              "wk_rope": (d, dr), "wo": (H * dv, d)})
    return s


def mla_qkv(cfg, P, a, x):
    B, T, _ = x.shape
    H, m, eps = cfg["n_heads"], cfg["mla"], cfg["norm_eps"]
    dn, dr, dv = m["nope_dim"], m["rope_dim"], m["v_dim"]
    q = latent_query(cfg, P, a, x, m)
    ckv = rms(x @ P[a + "wkv_down"], eps, P[a + "kv_norm.weight"])  # always RMSNorm
    k_nope = (ckv @ P[a + "wk_up"]).view(B, T, H, dn)
    v = (ckv @ P[a + "wv_up"]).view(B, T, H, dv)
    k_rope = (x @ P[a + "wk_rope"])[:, :, None, :].expand(B, T, H, dr)  # shared by heads
    return q, torch.cat([k_nope, k_rope], dim=-1), v, dr


def mlra_widths(cfg):
    """blocks, head groups G, branches per head A = blocks / G, block width d_b."""
    m = cfg["mlra"]
    G = cfg["n_heads"] // m["heads_per_block_group"]
    return m["blocks"], G, m["blocks"] // G, m["kv_lora_rank"] // m["blocks"]


def mlra_params(cfg):
    d, H, m = cfg["d_model"], cfg["n_heads"], cfg["mlra"]
    nb, _, A, db = mlra_widths(cfg)
    s = latent_query_params(cfg, m)
    for b in range(nb):
        s[f"wkv_down.{b}"] = (d, db)
        s[f"kv_norm.{b}.weight"] = (db,)
    s.update({"wk_up": (A, db, H * m["nope_dim"]), "wv_up": (A, db, H * m["v_dim"]),
              "wk_rope": (d, m["rope_dim"]), "wo": (H * m["v_dim"], d)})
    return s


def mlra_attend(cfg, P, a, x, sdpa=False):
    """MLRA (arXiv 2603.02188): latent block b = sqrt(d / d_b) RMSNorm_b(x W_down_b); head i's branch
    j reads block j G + (i's group); one causal attention per branch over [c W_UK ; RoPE key] and
    c W_UV, summed and scaled by 1 / sqrt(branches)."""
    B, T, d = x.shape
    H, m, eps = cfg["n_heads"], cfg["mlra"], cfg["norm_eps"]
    dn, dr, dv = m["nope_dim"], m["rope_dim"], m["v_dim"]
    nb, G, A, db = mlra_widths(cfg)
    q = latent_query(cfg, P, a, x, m)
    k_rope = (x @ P[a + "wk_rope"])[:, :, None, :].expand(B, T, H, dr)
    c = [math.sqrt(d / db) * rms(x @ P[a + f"wkv_down.{b}"], eps, P[a + f"kv_norm.{b}.weight"]) for b in range(nb)]
    out = 0
    for j in range(A):
        blocks = [c[j * G + i // m["heads_per_block_group"]] for i in range(H)]  # what head i reads
        k_nope = torch.stack([blocks[i] @ P[a + "wk_up"][j][:, i * dn:(i + 1) * dn] for i in range(H)], dim=2)
        v = torch.stack([blocks[i] @ P[a + "wv_up"][j][:, i * dv:(i + 1) * dv] for i in range(H)], dim=2)
        out = out + attention_core(cfg, q, torch.cat([k_nope, k_rope], dim=-1), v, dr, sdpa=sdpa)
    return out / math.sqrt(A)


ATTENTION = {
    "mha": Variant(grouped_params, grouped_qkv),
    "gqa": Variant(grouped_params, grouped_qkv),
    "mqa": Variant(grouped_params, grouped_qkv),
    "mla": Variant(mla_params, mla_qkv),
    "lrkv": Variant(lrkv_params, lrkv_qkv),
    "mlra": Variant(mlra_params, attend=mlra_attend),
}
VARIANTS = tuple(ATTENTION)


# --------------------------------------------------------------------------
# Parameter inventory
# --------------------------------------------------------------------------
def kv_heads_of(cfg):
    """Number of distinct K/V heads Hk actually used by the attention core."""
    a, H = cfg["attention"], cfg["n_heads"]
    return {"mha": H, "gqa": cfg["kv_heads"], "mqa": 1}.get(a, H)


def param_shapes(cfg):
    """Every parameter name -> shape, in a deterministic order."""
    V, d, H, dh = cfg["vocab_size"], cfg["d_model"], cfg["n_heads"], cfg["d_head"]
    att, dff = cfg["attention"], cfg["d_ff"]
    layernorm = cfg["norm"] == "layernorm"
    s = {"embed.weight": (V, d)}

    def norm(prefix):
        s[prefix + ".weight"] = (d,)
        if layernorm:
            s[prefix + ".bias"] = (d,)

    for i in range(cfg["n_layers"]):
        p = f"layers.{i}."
        norm(p + "attn_norm")
        a = p + "attn."
        if att not in ATTENTION:
            raise ValueError(f"unknown attention {att!r}")
        for name, shape in ATTENTION[att].params(cfg).items():
            s[a + name] = shape
        norm(p + "mlp_norm")
        m = p + "mlp."
        if cfg["activation"] == "swiglu":
            s[m + "w_gate"] = (d, dff)
            s[m + "w_up"] = (d, dff)
        elif cfg["activation"] in ("gelu", "relu2"):
            s[m + "w_in"] = (d, dff)
        else:
            raise ValueError(f"unknown activation {cfg['activation']!r}")
        s[m + "w_out"] = (dff, d)
    norm("final_norm")
    if not cfg["tie_embeddings"]:
        s["lm_head.weight"] = (V, d)
    return s


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------
def rms(x, eps, weight=None):
    """x / sqrt(mean(x^2) + eps) [* weight] over the last dim."""
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y if weight is None else y * weight


def block_norm(cfg, P, prefix, x):
    """attn_norm / mlp_norm / final_norm: RMSNorm or LayerNorm per config."""
    eps = cfg["norm_eps"]
    if cfg["norm"] == "rmsnorm":
        return rms(x, eps, P[prefix + ".weight"])
    if cfg["norm"] == "layernorm":
        mu = x.mean(-1, keepdim=True)
        var = (x - mu).pow(2).mean(-1, keepdim=True)  # biased variance
        return (x - mu) * torch.rsqrt(var + eps) * P[prefix + ".weight"] + P[prefix + ".bias"]
    raise ValueError(f"unknown norm {cfg['norm']!r}")


def rope(x, theta):
    """Rotate-half RoPE on x (B, T, H, R), positions t = 0..T-1."""
    T, R = x.shape[1], x.shape[-1]
    if R == 0:
        return x
    half = R // 2
    i = torch.arange(half, dtype=torch.float64)
    freq = torch.tensor(float(theta), dtype=torch.float64).pow(-2.0 * i / R)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]  # (T, R/2)
    cos = ang.cos().to(x.dtype)[None, :, None, :]
    sin = ang.sin().to(x.dtype)[None, :, None, :]
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def rope_tail(x, R, theta):
    """Apply RoPE to the last R dims of each head; leave the first D-R alone."""
    D = x.shape[-1]
    return torch.cat([x[..., : D - R], rope(x[..., D - R:], theta)], dim=-1)


def attention_core(cfg, q, k, v, R, sdpa=False):
    """q (B,T,H,Dqk), k (B,T,Hk,Dqk), v (B,T,Hk,Dv) -> (B,T,H*Dv)."""
    eps = cfg["norm_eps"]
    if cfg["qk_norm"]:
        q, k = rms(q, eps), rms(k, eps)
    q = rope_tail(q, R, cfg["rope_theta"])
    k = rope_tail(k, R, cfg["rope_theta"])
    B, T, H, D = q.shape
    Hk = k.shape[2]
    assert H % Hk == 0
    # query head h reads kv head h // (H/Hk): repeat each kv head H/Hk times in place
    k = k.repeat_interleave(H // Hk, dim=2)
    v = v.repeat_interleave(H // Hk, dim=2)
    if sdpa:  # cross-check path only (needs torch >= 2.0)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=True).transpose(1, 2)
    else:
        scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(D)
        future = torch.ones(T, T, dtype=torch.bool).triu(1)  # s > t is masked
        scores = scores.masked_fill(future, float("-inf"))
        o = torch.einsum("bhts,bshd->bthd", scores.softmax(-1), v)
    return o.reshape(B, T, H * v.shape[-1])


def attention(cfg, P, a, x, sdpa=False):
    """Variant-specific q/k/v projections, then the common core and wo."""
    B, T, _ = x.shape
    H, dh, att = cfg["n_heads"], cfg["d_head"], cfg["attention"]
    if att not in ATTENTION:
        raise ValueError(f"unknown attention {att!r}")
    variant = ATTENTION[att]
    if variant.attend is not None:
        return variant.attend(cfg, P, a, x, sdpa) @ P[a + "wo"]
    q, k, v, R = variant.qkv(cfg, P, a, x)
    return attention_core(cfg, q, k, v, R, sdpa=sdpa) @ P[a + "wo"]


def mlp(cfg, P, m, x):
    act = cfg["activation"]
    if act == "swiglu":
        h = F.silu(x @ P[m + "w_gate"]) * (x @ P[m + "w_up"])
    elif act == "gelu":
        h = F.gelu(x @ P[m + "w_in"], approximate="tanh")
    elif act == "relu2":
        h = F.relu(x @ P[m + "w_in"]).pow(2)
    else:
        raise ValueError(f"unknown activation {act!r}")
    return h @ P[m + "w_out"]


def forward(cfg, params, tokens, targets=None, sdpa=False):
    """Full model. params: {name: tensor} (leaf tensors -> autograd grads per name).

    Returns (logits (B,T,V), mean cross-entropy loss or None)."""
    P = params
    tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
    x = P["embed.weight"][tokens]
    for i in range(cfg["n_layers"]):
        p = f"layers.{i}."
        h = x + attention(cfg, P, p + "attn.", block_norm(cfg, P, p + "attn_norm", x), sdpa=sdpa)
        x = h + mlp(cfg, P, p + "mlp.", block_norm(cfg, P, p + "mlp_norm", h))
    xf = block_norm(cfg, P, "final_norm", x)
    w_head = P["embed.weight"] if cfg["tie_embeddings"] else P["lm_head.weight"]
    logits = xf @ w_head.T
    if targets is None:
        return logits, None
    targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    # cross-entropy written out: logsumexp(z) - z[target], averaged over all B*T
    lse = torch.logsumexp(logits, dim=-1)
    picked = logits.gather(-1, targets[..., None])[..., 0]
    return logits, (lse - picked).mean()


# --------------------------------------------------------------------------
# Helpers for tests and synthetic cases
# --------------------------------------------------------------------------
def random_params(cfg, seed=0, dtype=torch.float64):
    """Random params with sensible scales (norm weights near 1)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shp in param_shapes(cfg).items():
        t = torch.randn(shp, generator=g, dtype=torch.float64)
        if name.endswith("norm.weight"):
            t = 1.0 + 0.1 * t
        elif name.endswith(".bias"):
            t = 0.1 * t
        elif len(shp) == 3 and name.endswith("_up"):  # MLRA's wk_up / wv_up (A, d_b, H d)
            t = t / math.sqrt(max(shp[1], 1))
        elif len(shp) == 3:  # bk / bv (H, dh, r)
            t = t / math.sqrt(max(shp[2], 1))
        else:
            t = t / math.sqrt(max(shp[0], 1)) if name != "embed.weight" else t
        out[name] = t.to(dtype).requires_grad_(True)
    return out


def tiny_config(**over):
    cfg = dict(vocab_size=11, d_model=8, n_layers=2, n_heads=4, d_head=4, attention="mha",
               kv_heads=2, lrkv_rank=2,
               mla=dict(kv_lora_rank=6, q_lora_rank=0, rope_dim=2, nope_dim=4, v_dim=3),
               mlra=dict(blocks=2, kv_lora_rank=6, q_lora_rank=0, rope_dim=2, nope_dim=4, v_dim=3,
                         heads_per_block_group=4),
               d_ff=12, activation="gelu", norm="rmsnorm", norm_eps=1e-5, qk_norm=False,
               rope_theta=10000.0, tie_embeddings=False, seq_len=5, dtype="f64")
    cfg.update(over)
    return cfg


def random_batch(cfg, B=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    T, V = cfg["seq_len"], cfg["vocab_size"]
    return (torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g))


def write_case(case_dir, cfg, seed=0, B=2):
    """Write a case directory in the C++ dump format, outputs from this reference."""
    case = Path(case_dir)
    (case / "params").mkdir(parents=True, exist_ok=True)
    (case / "grads").mkdir(parents=True, exist_ok=True)
    (case / "config.json").write_text(json.dumps(cfg, indent=1))
    P = random_params(cfg, seed)
    tok, tgt = random_batch(cfg, B, seed + 1)
    logits, loss = forward(cfg, P, tok, tgt)
    loss.backward()
    np.save(case / "tokens.npy", tok.numpy().astype(np.int32))
    np.save(case / "targets.npy", tgt.numpy().astype(np.int32))
    np.save(case / "logits.npy", logits.detach().numpy())
    np.save(case / "loss.npy", np.array(loss.item()))
    for n, t in P.items():
        np.save(case / "params" / f"{n}.npy", t.detach().numpy())
        gr = t.grad if t.grad is not None else torch.zeros_like(t)
        np.save(case / "grads" / f"{n}.npy", gr.numpy())


# --------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------
def _detached(P):
    return {k: v.detach().clone() for k, v in P.items()}


def selftest():
    torch.manual_seed(0)
    failures = []

    def check(name, ok, detail=""):
        print(f"{'PASS' if ok else 'FAIL'}  {name} {detail}")
        if not ok:
            failures.append(name)

    def maxdiff(a, b):
        return (a - b).abs().max().item()

    # (a) gqa with kv_heads == n_heads is mha.
    for qkn in (False, True):
        cm = tiny_config(attention="mha", qk_norm=qkn)
        cg = tiny_config(attention="gqa", kv_heads=cm["n_heads"], qk_norm=qkn)
        P = _detached(random_params(cm, 3))
        tok, _ = random_batch(cm)
        dd = maxdiff(forward(cm, P, tok)[0], forward(cg, P, tok)[0])
        check(f"gqa(kv=H)==mha qk_norm={qkn}", dd < 1e-12, f"maxdiff={dd:.2e}")

    # (a') gqa/mqa are mha with each kv head's weights copied to the query heads that
    # read it (head h uses kv head h // (H/Hk)): checks the grouping convention.
    for att, hk in (("gqa", 2), ("mqa", 1)):
        cg = tiny_config(attention=att, kv_heads=hk, qk_norm=True)
        cm = tiny_config(attention="mha", qk_norm=True)
        Pg = _detached(random_params(cg, 3))
        H, dh = cg["n_heads"], cg["d_head"]
        Pm = dict(Pg)
        for i in range(cg["n_layers"]):
            for w in ("wk", "wv"):
                n = f"layers.{i}.attn.{w}"
                Pm[n] = torch.cat([Pg[n][:, (h // (H // hk)) * dh:(h // (H // hk) + 1) * dh]
                                   for h in range(H)], dim=1)
        tok, _ = random_batch(cg)
        dd = maxdiff(forward(cg, Pg, tok)[0], forward(cm, Pm, tok)[0])
        check(f"{att}(kv={hk})==mha(copied kv weights)", dd < 1e-12, f"maxdiff={dd:.2e}")

    # (b) lrkv rank 0 is mqa with wk = wk_shared, wv = wv_shared.
    cl = tiny_config(attention="lrkv", lrkv_rank=0)
    cq = tiny_config(attention="mqa")
    Pl = _detached(random_params(cl, 4))
    Pq = {}
    for n, t in Pl.items():
        if n.endswith(("attn.uk", "attn.bk", "attn.uv", "attn.bv")):
            continue
        Pq[n.replace("wk_shared", "wk").replace("wv_shared", "wv")] = t
    assert set(Pq) == set(param_shapes(cq))
    tok, _ = random_batch(cl)
    dd = maxdiff(forward(cl, Pl, tok)[0], forward(cq, Pq, tok)[0])
    check("lrkv(r=0)==mqa", dd < 1e-12, f"maxdiff={dd:.2e}")

    # (b') lrkv rank r is mha with per-head wk_h = wk_shared + U_h B_h^T (independent
    # check of the low-rank algebra and head slicing).
    cl = tiny_config(attention="lrkv", lrkv_rank=3)
    cm = tiny_config(attention="mha")
    Pl = _detached(random_params(cl, 5))
    H, dh, r = cl["n_heads"], cl["d_head"], 3
    Pm = {}
    for n, t in Pl.items():
        if not n.split(".")[-1] in ("wk_shared", "wv_shared", "uk", "bk", "uv", "bv"):
            Pm[n] = t
    for i in range(cl["n_layers"]):
        a = f"layers.{i}.attn."
        for kv in ("k", "v"):
            full = [Pl[a + f"w{kv}_shared"] + Pl[a + f"u{kv}"][:, h * r:(h + 1) * r] @ Pl[a + f"b{kv}"][h].T
                    for h in range(H)]
            Pm[a + f"w{kv}"] = torch.cat(full, dim=1)
    tok, _ = random_batch(cl)
    dd = maxdiff(forward(cl, Pl, tok)[0], forward(cm, Pm, tok)[0])
    check("lrkv(r=3)==mha(expanded wk/wv)", dd < 1e-12, f"maxdiff={dd:.2e}")

    # RoPE sanity: position 0 is identity; R=2 rotates by t radians; scores depend
    # only on relative position.
    x = torch.randn(1, 6, 1, 8, dtype=torch.float64)
    y = rope(x, 10000.0)
    check("rope pos0 identity", maxdiff(y[:, 0], x[:, 0]) == 0.0)
    x2 = torch.randn(1, 4, 1, 2, dtype=torch.float64)
    t = torch.arange(4, dtype=torch.float64)
    exp = torch.stack([x2[0, :, 0, 0] * t.cos() - x2[0, :, 0, 1] * t.sin(),
                       x2[0, :, 0, 0] * t.sin() + x2[0, :, 0, 1] * t.cos()], -1)
    check("rope R=2 hand value", maxdiff(rope(x2, 123.0)[0, :, 0], exp) < 1e-14)
    qv, kv = torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    qr = rope(qv.expand(1, 6, 1, 8), 100.0)[0, :, 0]
    kr = rope(kv.expand(1, 6, 1, 8), 100.0)[0, :, 0]
    S = qr @ kr.T
    check("rope relative-position", maxdiff(S[1:, 1:], S[:-1, :-1]) < 1e-12)

    # MLRA with one block (one branch per head) is MLA whose up-projections carry the block scale
    # sqrt(d / c).
    for qkn in (False, True):
        cr = tiny_config(attention="mlra", qk_norm=qkn, mlra=dict(tiny_config()["mlra"], blocks=1))
        ca = tiny_config(attention="mla", qk_norm=qkn, mla={k: v for k, v in cr["mlra"].items()
                                                            if k not in ("blocks", "heads_per_block_group")})
        Pr = _detached(random_params(cr, 4))
        alpha = math.sqrt(cr["d_model"] / cr["mlra"]["kv_lora_rank"])
        Pa = {}
        for n, t in Pr.items():
            n2 = n.replace("wkv_down.0", "wkv_down").replace("kv_norm.0.weight", "kv_norm.weight")
            Pa[n2] = alpha * t[0] if n.endswith(("wk_up", "wv_up")) else t
        tok, _ = random_batch(cr)
        dd = maxdiff(forward(cr, Pr, tok)[0], forward(ca, Pa, tok)[0])
        check(f"mlra(1 block)==mla qk_norm={qkn}", dd < 1e-12, f"maxdiff={dd:.2e}")

    # Causality: changing the last token must not change earlier logits.
    for att in VARIANTS:
        c = tiny_config(attention=att)
        P = _detached(random_params(c, 6))
        tok, _ = random_batch(c)
        tok2 = tok.clone()
        tok2[:, -1] = (tok2[:, -1] + 1) % c["vocab_size"]
        dd = maxdiff(forward(c, P, tok)[0][:, :-1], forward(c, P, tok2)[0][:, :-1])
        check(f"causal {att}", dd < 1e-12, f"maxdiff={dd:.2e}")

    # Optional cross-check of the explicit attention against torch's SDPA.
    if hasattr(F, "scaled_dot_product_attention"):
        for att in VARIANTS:
            c = tiny_config(attention=att, qk_norm=True)
            P = _detached(random_params(c, 7))
            tok, _ = random_batch(c)
            dd = maxdiff(forward(c, P, tok)[0], forward(c, P, tok, sdpa=True)[0])
            check(f"sdpa cross-check {att}", dd < 1e-10, f"maxdiff={dd:.2e}")
    else:
        print("SKIP  sdpa cross-check (torch has no scaled_dot_product_attention)")

    # (c) gradcheck on tiny float64 models: each variant, with the other options
    # rotated so every activation / norm / qk_norm / tie setting is covered.
    mla_q = dict(kv_lora_rank=5, q_lora_rank=3, rope_dim=2, nope_dim=2, v_dim=3)
    cases = [
        dict(attention="mha", activation="gelu", norm="rmsnorm"),
        dict(attention="mha", activation="swiglu", norm="layernorm", qk_norm=True, tie_embeddings=True),
        dict(attention="gqa", activation="relu2", norm="layernorm", qk_norm=True),
        dict(attention="mqa", activation="swiglu", norm="rmsnorm", tie_embeddings=True),
        dict(attention="lrkv", activation="gelu", norm="layernorm", lrkv_rank=2),
        dict(attention="lrkv", activation="relu2", norm="rmsnorm", lrkv_rank=2, qk_norm=True),
        dict(attention="lrkv", activation="swiglu", norm="rmsnorm", lrkv_rank=0),
        dict(attention="mla", activation="gelu", norm="rmsnorm"),
        dict(attention="mla", activation="swiglu", norm="layernorm", qk_norm=True, mla=mla_q,
             tie_embeddings=True),
        dict(attention="mlra", activation="relu2", norm="rmsnorm", qk_norm=True),
        dict(attention="mlra", activation="gelu", norm="rmsnorm",
             mlra=dict(blocks=4, kv_lora_rank=8, q_lora_rank=3, rope_dim=2, nope_dim=2, v_dim=3,
                       heads_per_block_group=2)),
    ]
    for over in cases:
        c = tiny_config(n_layers=1, seq_len=4, vocab_size=7, d_ff=6, **over)
        P = random_params(c, 8)
        names = list(P)
        # gradcheck does not like zero-size inputs (lrkv r=0): hold those constant.
        live = [n for n in names if P[n].numel() > 0]
        tok, tgt = random_batch(c, B=2, seed=9)

        def f(*ts):
            Q = dict(P)
            Q.update(zip(live, ts))
            return forward(c, Q, tok, tgt)

        label = ",".join(f"{k}={v}" for k, v in over.items() if k not in ("mla", "mlra")) + (
            " mla_q" if "mla" in over else "") + (" mlra-2" if "mlra" in over else "")
        try:
            ok = torch.autograd.gradcheck(f, tuple(P[n] for n in live), eps=1e-6, atol=1e-7, rtol=1e-5)
        except Exception as e:  # gradcheck raises on mismatch
            ok, label = False, label + f" :: {str(e).splitlines()[0]}"
        check(f"gradcheck {label}", ok)

    print(f"selftest: {'FAILED ' + str(len(failures)) if failures else 'all passed'}")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selftest", action="store_true", help="run internal consistency checks")
    ap.add_argument("--variants", action="store_true", help="print the attention variants this reference knows")
    args = ap.parse_args()
    if args.variants:
        print(" ".join(VARIANTS))
        return
    if args.selftest:
        sys.exit(selftest())
    ap.print_help()


if __name__ == "__main__":
    main()
