#!/usr/bin/env bash
# `lrkv flops` on the paper's configs: JSON keys, the LRKV cache ratio 1/H + r/d_h of the paper's
# Table 7, the causal attention core by hand, and the side-by-side table with ratios.
#   flops_cli.sh BUILD_BIN_DIR SOURCE_DIR
set -euo pipefail
bin="$1"; src="$2"
args=()
for scale in 128m 1.2b 2.5b 6.3b; do
  for v in mha lrkv; do args+=(--config="$src/configs/paper/$scale-$v.textproto"); done
done
"$bin/lrkv" flops "${args[@]}" --format=json | /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert len(rows) == 8
keys = ("params_total", "forward_flops_per_token", "train_flops_per_token",
        "attention_core_forward_flops_per_token", "kv_cache_values_per_token_per_layer")
for r in rows:
    assert all(k in r for k in keys), r
    assert r["train_flops_per_token"] == 3 * r["forward_flops_per_token"]
paper = {"128m": (6, 46, 0.526), "1.2b": (12, 51, 0.482), "2.5b": (18, 55, 0.485), "6.3b": (32, 54, 0.453)}
for mha, lrkv in zip(rows[0::2], rows[1::2]):
    scale = mha["config"].split("/")[-1].split("-")[0]
    heads, r, table7 = paper[scale]
    ratio = lrkv["kv_cache_values_per_token_per_layer"] / mha["kv_cache_values_per_token_per_layer"]
    assert abs(ratio - (1 / heads + r / 128)) < 1e-12 and round(ratio, 3) == table7, (scale, ratio)
    flops = lrkv["train_flops_per_token"] / mha["train_flops_per_token"]
    print(f"{scale}: LRKV/MHA KV cache {ratio:.3f} (paper Table 7: {table7}), train FLOPs/token {flops:.3f}x MHA")
m = rows[0]  # 128M MHA: 12 layers, 6 heads, d_h 128, T 2048, causal: L H (Dqk + Dv) (T + 1)
assert m["attention_core_forward_flops_per_token"] == 12 * 6 * 256 * 2049
'
"$bin/lrkv" flops --config="$src/configs/paper/128m-mha.textproto" --config="$src/configs/paper/128m-lrkv.textproto" |
  grep -E "^kv_cache_values_per_token_per_layer +1536 +808 \(0\.526x\)$"
if "$bin/lrkv" flops --config="$src/configs/paper/128m-mha.textproto" --format=xml 2>/dev/null; then exit 1; fi
echo "flops_cli: ok"
