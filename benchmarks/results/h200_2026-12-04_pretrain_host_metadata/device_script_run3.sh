# Device call 3 of 2026-12-04 (twenty-sixth session) at 536c149: the batched channel-swap directions; the same
# 2-epoch run with the swap on and off on 10 000 scenes, so its cost is measured in one run
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 60 python3 -m spatial_alm.cli simulate --recipe simulation/tiny_binaural.yaml --no-progress --out /tmp/train10k --num-scenes 10000 --num-shards 16 --workers 16 --seed 0 > $OUT/sim.log 2>&1
echo "sim rc $? at ${SECONDS}s" | tee -a $OUT/sim.log
for swap in true false; do
  T0=$SECONDS
  timeout 75 python3 -m spatial_alm.cli pretrain-encoder --data /tmp/train10k --config experiments/encoder/tiny_binaural.yaml \
    --set channel_swap=$swap --set loss_weights.class_distance=1.0 --set epochs=2 --set num_workers=12 --out /tmp/enc_$swap > $OUT/encoder_swap_$swap.log 2>&1
  echo "swap $swap: encoder rc $? after $((SECONDS - T0))s, at ${SECONDS}s" | tee -a $OUT/encoder_swap_$swap.log
  tr '\r' '\n' < $OUT/encoder_swap_$swap.log | grep "step/s, epoch" | awk 'NR%40==0' | awk -F'|' '{print $3}' | cut -c1-60
  cp /tmp/enc_$swap/summary.json $OUT/summary_swap_$swap.json 2>/dev/null
done
