#!/usr/bin/env bash
# The training benchmark's GPU rows, on a machine with an NVIDIA GPU, JAX and sentence-transformers but
# no TensorFlow (this workplace's device machine): our trainer runs under KERAS_BACKEND=jax.
#
# Prepared here:  .venv/bin/python bench/minilm_pack.py pack .gpu/minilm   (the float16-packed model)
#                 wheels of keras, keras-hub (and what they or ST's fit need) in .whl/
# Run there:      OUT=<folder> [PARTS="throughput jobs reload" | PARTS=precision] bash bench/gpu_run.sh [quick]
# Try it here:    SKIP_WHEELS=1 OUT=/tmp/out PY=<a Python with JAX> ST_PY=.venv-bench/bin/python ST_DEVICE=cpu \
#                   bash bench/gpu_run.sh quick
# Writes $OUT/env.txt, throughput_gpu.json, jobs_gpu.json, the tuned model's card and progress log,
# reload_check.json, and a log of each part. Each part has its own time limit, so a slow one cannot
# keep the others from reporting.
set -u
OUT=${OUT:-/tmp/gpu_out}
QUICK=${1:-}
PY=${PY:-python3}
ST_PY=${ST_PY:-$(command -v "$PY")}
ST_DEVICE=${ST_DEVICE:-cuda}
mkdir -p "$OUT"
if [ -d .whl ] && [ -z "${SKIP_WHEELS:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# JAX takes 75% of the GPU's memory up front unless told not to; the ST runs need their share.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$ST_PY" -c "import torch, sentence_transformers as st; print('torch', torch.__version__, 'st', st.__version__)"
  "$PY" -c "import jax, keras, keras_hub; print('jax', jax.__version__, jax.devices()); print('keras', keras.__version__, 'keras_hub', keras_hub.__version__)"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
"$PY" bench/minilm_pack.py unpack .gpu/minilm /tmp/minilm || exit 1

if [ "$QUICK" = quick ]; then  # a smoke run of every part, for trying the script out
  STEPS=6; ROUNDS=1; JOBS_STEPS="--max-steps 8"; LIMIT=600
else
  STEPS=100; ROUNDS=2; JOBS_STEPS=""; LIMIT=${LIMIT:-280}
fi

PARTS=${PARTS:-throughput jobs reload}
case " $PARTS " in *" precision "*)
  # The job-title recipe twice at once on the one GPU, bfloat16 mixed precision and float32, same seed:
  # what mixed precision does to quality. (Sharing the GPU and CPUs, their times are upper bounds.)
  for mp in on off; do
    timeout $LIMIT "$PY" bench/train_quality.py --tasks jobs --rehearsal --models /tmp/minilm $JOBS_STEPS \
      --mixed-precision $mp --out "$OUT/jobs_mixed_$mp.json" > "$OUT/jobs_mixed_$mp.log" 2>&1 &
  done
  wait
  for mp in on off; do
    tail -n 3 "$OUT/jobs_mixed_$mp.log"
    cp bench/runs/jobs-minilm-mixed-$mp/train_log.jsonl "$OUT/train_log_mixed_$mp.jsonl" 2>/dev/null
  done
esac
case " $PARTS " in *" throughput "*) ;; *) exit 0 ;; esac

# 1. Throughput, ST fit on the GPU vs ours under JAX, bfloat16 mixed precision and float32; two epochs
#    over the same batches, the second timed, so that JAX's compiles are out of the timed epoch.
timeout 190 "$PY" bench/train_quality.py --tasks throughput --models /tmp/minilm --backends jax \
  --precisions bfloat16,float32 --st-device "$ST_DEVICE" --st-python "$ST_PY" \
  --throughput-steps $STEPS --throughput-epochs 2 --throughput-rounds $ROUNDS \
  --out "$OUT/throughput_gpu.json" > "$OUT/throughput.log" 2>&1
echo "throughput rc=$?"; tail -n 12 "$OUT/throughput.log"

# 2. The job-title recipe (with STS-B rehearsal) through train_pairs, mixed precision on by default on a
#    GPU ("auto"): quality against the CPU float32 numbers, end-to-end time, the model card.
timeout $LIMIT "$PY" bench/train_quality.py --tasks jobs --rehearsal --models /tmp/minilm $JOBS_STEPS \
  --out "$OUT/jobs_gpu.json" > "$OUT/jobs.log" 2>&1
echo "jobs rc=$?"; tail -n 6 "$OUT/jobs.log"
cp bench/runs/jobs-minilm/model_card.json "$OUT/" 2>/dev/null \
  || cp bench/runs/jobs-minilm.partial/train_log.jsonl "$OUT/" 2>/dev/null
cp bench/runs/jobs-minilm/train_log.jsonl "$OUT/" 2>/dev/null

# 3. The saved model reloads as float32 and gives identical vectors twice on the GPU.
timeout 60 "$PY" - "$OUT/reload_check.json" <<'EOF'
import json, sys
import numpy as np
from semsim.encoders import load_encoder
texts = ["data scientist", "registered nurse", "head chef", "software engineer in test"]
one, two = (load_encoder("bench/runs/jobs-minilm", cache=False) for _ in range(2))
a, b = one.encode(texts), two.encode(texts)
base = load_encoder("/tmp/minilm", cache=False).encode(texts)
report = {"identical": bool(np.array_equal(a, b)), "weight_dtypes": sorted({str(w.dtype) for w in one.model.weights}),
          "norms": np.linalg.norm(a, axis=1).round(6).tolist(), "moved_from_base": float(np.abs(a - base).max())}
json.dump(report, open(sys.argv[1], "w"), indent=2)
print(report)
EOF
echo "reload rc=$?"
