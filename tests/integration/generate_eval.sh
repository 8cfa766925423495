#!/bin/bash
# lrkv generate and lrkv eval end to end on small trained checkpoints (LRKV, and MLRA with QK-norm,
# whose decoding partition at tp4 is by latent block and caches each block's key scales):
#  - greedy text identical in one process, under mpirun at tp2 (and tp4 for MLRA), and from the
#    exported safetensors file; stdout holds only the text; a seed fixes sampled text;
#  - a batch of prompts from --prompts_file (packed weights) gives each prompt's text alone;
#  - eval with the trainer's eval_batches gives the trainer's val_loss exactly; the whole split
#    gives loss, perplexity = exp(loss) and tokens; dp2 agrees;
#  - bad arguments fail with messages that name them.
# usage: generate_eval.sh BIN SRC WORK MPIRUN...
. "$(dirname "$0")/lib.sh"
setup generate_eval "$@"
prompt="The jury said"

train() {  # NAME CONFIG [OVERRIDES...]: 20 steps, checkpoint at the end
  "$bin/lrkv" train "${small_train[@]}" --config="$src/configs/$2" "${@:3}" --steps=20 --out_dir="$w/$1" \
    --checkpoint_dir="$w/$1/ck" --save_every=20 >"$w/$1.log" 2>&1 || { fail "train $1"; tail -5 "$w/$1.log"; }
}
greedy() {  # OUT NP ARGS...: greedy text on stdout, diagnostics kept apart
  local out="$1" np="$2"; shift 2
  if [ "$np" = 1 ]; then "$bin/lrkv" generate "$@" --prompt="$prompt" --max_new_tokens=12 --temperature=0 >"$out" 2>"$out.err"
  else "${mpirun[@]}" -np "$np" "$bin/lrkv" generate "$@" --prompt="$prompt" --max_new_tokens=12 --temperature=0 \
         >"$out" 2>"$out.err"; fi || { fail "generate $out"; tail -3 "$out.err"; }
}

train lrkv brown-tiny-lrkv.textproto
train mlra brown-tiny-mlra.textproto --model.qk_norm=true
for v in lrkv mlra; do
  greedy "$w/$v.tp1" 1 --checkpoint="$w/$v/ck"
  if [ "$(head -c ${#prompt} "$w/$v.tp1")" = "$prompt" ] && [ "$(wc -l <"$w/$v.tp1")" -eq 1 ] && \
     [ "$(wc -c <"$w/$v.tp1")" -gt $(( ${#prompt} + 2 )) ]; then
    ok "$v greedy: '$(cat "$w/$v.tp1")' (stdout: the text alone)"
  else fail "$v greedy stdout: '$(cat "$w/$v.tp1")'"; fi
  nps="2"; [ "$v" = mlra ] && nps="2 4"
  for np in $nps; do
    greedy "$w/$v.tp$np" "$np" --checkpoint="$w/$v/ck"
    cmp -s "$w/$v.tp1" "$w/$v.tp$np" && ok "$v greedy text at tp$np = one process" || fail "$v tp$np: '$(cat "$w/$v.tp$np")'"
  done
  grep -q "KV cache" "$w/$v.tp1.err" && ok "$v: diagnostics on stderr ($(grep 'KV cache' "$w/$v.tp1.err" | cut -d: -f2-))" \
    || fail "$v: no diagnostics on stderr"
  "$bin/lrkv" export --checkpoint="$w/$v/ck" --out="$w/$v.safetensors" >/dev/null || fail "export $v"
  greedy "$w/$v.st1" 1 --safetensors="$w/$v.safetensors" --data_dir="$data"
  greedy "$w/$v.st2" 2 --safetensors="$w/$v.safetensors" --data_dir="$data"
  cmp -s "$w/$v.tp1" "$w/$v.st1" && cmp -s "$w/$v.tp1" "$w/$v.st2" && ok "$v: the same text from the safetensors file at tp1, tp2" \
    || fail "$v safetensors: '$(cat "$w/$v.st1")' / '$(cat "$w/$v.st2")'"
done

# A batch from --prompts_file: 5 prompts of different lengths (so the weights are packed), blank lines
# skipped; each line's text is what --prompt gives for it alone, in one process and at tp2.
printf '%s\n' "$prompt" "It" "" "The Fulton County Grand Jury said Friday" "He said" "In the" >"$w/prompts.txt"
for np in 1 2; do
  if [ "$np" = 1 ]; then "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" --prompts_file="$w/prompts.txt" \
      --max_new_tokens=12 --temperature=0 >"$w/batch$np.jsonl" 2>"$w/batch$np.err"
  else "${mpirun[@]}" -np 2 "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" --prompts_file="$w/prompts.txt" \
      --max_new_tokens=12 --temperature=0 >"$w/batch$np.jsonl" 2>"$w/batch$np.err"; fi || { fail "batch generate np $np"; tail -3 "$w/batch$np.err"; }
done
i=0
while IFS= read -r p; do
  [ -n "$p" ] || continue
  i=$((i + 1))
  "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" --prompt="$p" --max_new_tokens=12 --temperature=0 >"$w/alone$i.txt" 2>/dev/null \
    || fail "generate prompt $i alone"
done <"$w/prompts.txt"
if /usr/bin/python3 - "$w" <<'PY'
import json, sys
w = sys.argv[1]
prompts = [l.rstrip("\n") for l in open(f"{w}/prompts.txt") if l.strip()]
for np in (1, 2):
    lines = [json.loads(l) for l in open(f"{w}/batch{np}.jsonl")]
    assert [l["prompt"] for l in lines] == prompts, (np, lines)
    for i, l in enumerate(lines):
        alone = open(f"{w}/alone{i + 1}.txt").read().rstrip("\n")
        assert l["text"] == alone and l["new_tokens"] == 12, (np, i, l, alone)
print(f"{len(prompts)} prompts, e.g. {lines[3]['text']!r}")
PY
then ok "batch from --prompts_file: each text is --prompt's alone, at tp1 and tp2"; else fail "batch generate"; fi
grep -q "step 12/12 | .* tokens/s | ETA 0s" "$w/batch1.err" && ok "batch: progress on stderr ($(grep 'step 12/12' "$w/batch1.err" | cut -d: -f2-))" \
  || fail "batch progress: $(cat "$w/batch1.err")"
grep -q "5 prompts, 12 tokens each.*weights packed" "$w/batch1.err" && ok "batch: weights packed ($(tail -1 "$w/batch1.err" | cut -d: -f2-))" \
  || fail "batch stderr: $(tail -1 "$w/batch1.err")"

sample() { "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" --prompt="$prompt" --max_new_tokens=16 --temperature=1 \
             --top_k=40 --top_p=0.95 --seed="$1" 2>/dev/null; }
a="$(sample 5)"; b="$(sample 5)"
[ -n "$a" ] && [ "$a" = "$b" ] && ok "sampling with --seed=5 twice: the same text" || fail "seeded sampling: '$a' vs '$b'"

# eval: the trainer's evaluation, then the whole split.
"$bin/lrkv" eval --checkpoint="$w/lrkv/ck" --eval_batches=1 --format=json >"$w/eval1.json" 2>/dev/null
"$bin/lrkv" eval --checkpoint="$w/lrkv/ck" --format=json >"$w/eval_all.json" 2>/dev/null
"${mpirun[@]}" -np 2 "$bin/lrkv" eval --checkpoint="$w/lrkv/ck" --format=json >"$w/eval_dp2.json" 2>/dev/null
if /usr/bin/python3 - "$w" <<'PY'
import json, math, sys
w = sys.argv[1]
trainer = [json.loads(l) for l in open(f"{w}/lrkv/metrics.jsonl") if "val_loss" in l][-1]["val_loss"]
one, whole, dp2 = (json.loads(open(f"{w}/{n}.json").read()) for n in ("eval1", "eval_all", "eval_dp2"))
assert one["loss"] == trainer, (one["loss"], trainer)
assert set(whole) >= {"loss", "perplexity", "tokens"} and whole["tokens"] > one["tokens"], whole
assert abs(whole["perplexity"] - math.exp(whole["loss"])) < 1e-9 * whole["perplexity"], whole
assert abs(dp2["loss"] - whole["loss"]) < 1e-6 * whole["loss"], (dp2, whole)
print(f"eval: {one['loss']} == the trainer's val_loss over {one['tokens']} tokens; whole split {whole['loss']:.6f} "
      f"(perplexity {whole['perplexity']:.2f}, {whole['tokens']} tokens), dp2 {dp2['loss']:.6f}")
PY
then ok "eval matches the trainer and covers the split"; else fail "eval"; fi

expect_error "no prompt" "non-empty --prompt" -- "$bin/lrkv" generate --checkpoint="$w/lrkv/ck"
expect_error "prompt and file" "not both" -- "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" --prompt=x \
  --prompts_file="$w/prompts.txt"
expect_error "no prompts file" "cannot be read" -- "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" \
  --prompts_file="$w/nowhere.txt"
printf '\n\n' >"$w/blank.txt"
expect_error "blank prompts file" "holds no prompt" -- "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" \
  --prompts_file="$w/blank.txt"
expect_error "both sources" "exactly one of --checkpoint" -- "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" \
  --safetensors="$w/lrkv.safetensors" --prompt=x
expect_error "bad temperature" "--temperature must be >= 0" -- "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" --prompt=x \
  --temperature=-1
expect_error "no tokenizer" "no tokenizer at" -- "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" --prompt=x \
  --data_dir="$w/nowhere"
expect_error "too long" "exceed the model's context" -- "$bin/lrkv" generate --checkpoint="$w/lrkv/ck" --prompt=x \
  --max_new_tokens=1000
expect_error "no checkpoint" "no checkpoint" -- "$bin/lrkv" eval --checkpoint="$w/nowhere"
expect_error "bad split" "--split=test is not a valid value" -- "$bin/lrkv" eval --checkpoint="$w/lrkv/ck" --split=test
finish generate_eval
