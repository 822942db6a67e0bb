#!/usr/bin/env bash
# Runs a w2s_jax experiment on a Cloud TPU pod slice, one process per host.
#
#   launch/tpu_pod.sh NAME ZONE ACCELERATOR RUNTIME CONFIG WORKDIR [extra flags...]
#   launch/tpu_pod.sh w2s us-central2-b v4-32 tpu-ubuntu2204-base configs/default.py \
#       /mnt/shared/runs --config.seed=1
#
# WORKDIR must be a folder every host sees (a Filestore/NFS or gcsfuse mount): phases are
# written by process 0 and read by all. The slice is requested as a queued resource, the
# repository is copied to every worker, and the same command runs on all of them
# (--worker=all); jax.distributed.initialize() finds its peers from the TPU metadata.
set -euo pipefail
if [ $# -lt 6 ]; then awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 2; fi
name=$1 zone=$2 accelerator=$3 runtime=$4 config=$5 workdir=$6; shift 6

gcloud compute tpus queued-resources create "$name" --node-id="$name" --zone="$zone" \
  --accelerator-type="$accelerator" --runtime-version="$runtime"
until gcloud compute tpus queued-resources describe "$name" --zone="$zone" \
    --format='value(state.state)' | grep -q ACTIVE; do sleep 30; done

repo=$(cd "$(dirname "$0")/.." && pwd)
tar -C "$repo" --exclude=.venv --exclude=runs -czf /tmp/w2s_jax.tgz .
gcloud compute tpus tpu-vm scp /tmp/w2s_jax.tgz "$name":~/ --zone="$zone" --worker=all
gcloud compute tpus tpu-vm ssh "$name" --zone="$zone" --worker=all --command "
  set -e; mkdir -p ~/w2s_jax && tar -C ~/w2s_jax -xzf ~/w2s_jax.tgz && cd ~/w2s_jax
  python3 -m venv .venv && . .venv/bin/activate && pip install -q -e . 'jax[tpu]'
  python -m w2s_jax.main --distributed --config=$config --config.workdir=$workdir $*"
