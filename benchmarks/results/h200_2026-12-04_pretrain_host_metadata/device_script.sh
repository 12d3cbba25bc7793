# Both device calls of 2026-12-04 (twenty-sixth session) ran this script; the first at b30882e (loaders on the host),
# the second at the next commit (the loss read every log_every steps). .whl held the soundfile/cffi/pycparser/pytest wheels.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt; nproc >> $OUT/gpu.txt
python3 -c "import torch,transformers,peft,accelerate;print(torch.__version__,transformers.__version__,peft.__version__,accelerate.__version__)" >> $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
echo "tests done at ${SECONDS}s"
timeout 170 python3 -m spatial_alm.cli simulate --recipe simulation/tiny_binaural.yaml --no-progress --out /tmp/train20k --num-scenes 20000 --num-shards 16 --workers 16 --seed 0 > $OUT/sim.log 2>&1
echo "sim rc $? at ${SECONDS}s" | tee -a $OUT/sim.log
timeout 90 python3 benchmarks/bench_encoder.py --device cuda --data /tmp/train20k --num-workers 12 2>&1 | grep -v Warning | tee $OUT/bench_encoder_cuda.log
echo "bench done at ${SECONDS}s"
T0=$SECONDS
timeout $((560 - SECONDS)) python3 -m spatial_alm.cli pretrain-encoder --data /tmp/train20k --config experiments/encoder/tiny_binaural.yaml \
  --set channel_swap=true --set loss_weights.class_distance=1.0 --set epochs=4 --set num_workers=12 --out /tmp/enc20k > $OUT/encoder.log 2>&1
echo "encoder rc $? after $((SECONDS - T0))s, at ${SECONDS}s" | tee -a $OUT/encoder.log
tr '\r' '\n' < $OUT/encoder.log | grep -v '^$' | grep -v "step/s\]$" | tail -8
tr '\r' '\n' < $OUT/encoder.log | grep -v '^$' | tail -1
cp /tmp/enc20k/summary.json $OUT/ 2>/dev/null
ls -la $OUT
