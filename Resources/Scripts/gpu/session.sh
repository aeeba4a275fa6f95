#!/bin/bash
# The GPU session of 2026-11-27 (NVIDIA H200), as run from the repository root on the lent machine:
#   bash Resources/Scripts/gpu/session.sh                        -> bench of the BSNet / nCoVSegNet rows
#   SKIP_BENCH=1 LIMIT=440 bash Resources/Scripts/gpu/session.sh -> four dRAM chains in parallel
# OUT: folder for the results; COVID_TRAIN: a copy of ../shared/data/covid_semiseg/train (the machine
# sees only the repository). Its Python has torch but no SimpleITK: the two *_without_simpleitk.py
# wrappers stand a stub in for it (nothing on these paths calls SimpleITK; the bench reads the sample
# NRRD with numpy). Records of that session: checkpoints/gpu-h200/.
# Every stage model comes back in fp16 (STAGE/model_fp16.pt; the dRAM and CAM stage models too, so that
# the pseudo-label IoU can be scored on the CPU: save each as STAGE/model.pt in fp32 first, then
# `python -m lunglesion.weak.experiment ... --rescore`). CHAINS="name:parts:field:budget;..." replaces the
# four chains of that session (field: classical or learned, the --lung-field of the weak-label regions).
# Next, e.g. (p3 again with its stage models, the same with the learned lung field, 4 bands with it):
#   SKIP_BENCH=1 LIMIT=480 CHAINS='p3_b32:3:classical:{"base": 32, "epochs_dram": 200, "epochs_cam": 150, "epochs_final": 120};p3_b32_field:3:learned:{"base": 32, "epochs_dram": 200, "epochs_cam": 150, "epochs_final": 120};p4_b32_field:4:learned:{"base": 32, "epochs_dram": 200, "epochs_cam": 150, "epochs_final": 120}' bash Resources/Scripts/gpu/session.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi -L > $OUT/gpu.txt; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" >> $OUT/gpu.txt
DEV=${DEV:-cuda}
T0=$(date +%s)
[ -n "$SKIP_BENCH" ] || for spec in "bsnet $DEV 8 --no-volume" "bsnet $DEV 32 --no-volume" "ncovsegnet $DEV 8 --no-volume" "ncovsegnet $DEV 32 --no-volume" "bsnet-light $DEV 8" "unet $DEV 8" "ncovsegnet-light $DEV 8 --no-volume"; do
  timeout 75 python3 Resources/Scripts/gpu/bench_without_simpleitk.py $spec >> $OUT/bench.jsonl 2>> $OUT/bench_err.txt || echo "FAILED $spec" >> $OUT/bench.jsonl
done
echo "bench took $(( $(date +%s) - T0 )) s" >> $OUT/gpu.txt
run_chain() {  # name lung_parts lung_field budget
  OMP_NUM_THREADS=3 timeout $LIMIT python3 Resources/Scripts/gpu/run_without_simpleitk.py lunglesion.weak.experiment --data ${COVID_TRAIN:-.device/data/covid_semiseg/train} \
    --out runs_gpu/$1 --lung-parts $2 --lung-field $3 --budget "$4" --device $DEV > runs_gpu/$1.out 2>&1
  echo "$1 rc=$? after $(( $(date +%s) - T0 )) s" >> $OUT/gpu.txt
  python3 - "$1" <<'PY'
import os, sys, tarfile, torch
from pathlib import Path
run = Path("runs_gpu") / sys.argv[1]
for stage in ("dram", "cam", "final_dram", "final_cam"):
    model = run / stage / "model.pt"
    if model.exists():
        state = torch.load(model, map_location="cpu", weights_only=True)
        torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, run / stage / "model_fp16.pt")
with tarfile.open(Path(os.environ["OUT"]) / f"{sys.argv[1]}.tar.gz", "w:gz") as tar:
    for p in sorted(run.rglob("*")):
        if p.is_file() and p.name not in ("model.pt", "checkpoint.pt") and p.suffix != ".npz":
            tar.add(p, arcname=str(p.relative_to("runs_gpu")))
PY
}
mkdir -p runs_gpu
LIMIT=${LIMIT:-300}
B32='{"base": 32, "epochs_dram": 200, "epochs_cam": 150, "epochs_final": 120}'
CHAINS=${CHAINS:-"p1_b32:1:classical:$B32;p2_b32:2:classical:$B32;p3_b32:3:classical:$B32;p2_b8:2:classical:{\"base\": 8, \"epochs_dram\": 150, \"epochs_cam\": 100, \"epochs_final\": 60}"}
IFS=';' read -ra specs <<< "$CHAINS"
for spec in "${specs[@]}"; do
  IFS=':' read -r name parts field budget <<< "$spec"
  run_chain "$name" "$parts" "$field" "$budget" &
done
wait
nvidia-smi --query-gpu=memory.used --format=csv >> $OUT/gpu.txt
echo "all done after $(( $(date +%s) - T0 )) s" >> $OUT/gpu.txt
