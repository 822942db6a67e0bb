#!/usr/bin/env bash
# Runs a w2s_jax experiment on a Cloud TPU pod slice, one process per host.
#
#   launch/tpu_pod.sh [--dry-run] NAME ZONE ACCELERATOR RUNTIME CONFIG WORKDIR [extra flags...]
#   launch/tpu_pod.sh w2s us-central2-b v4-32 tpu-ubuntu2204-base configs/default.py \
#       /mnt/shared/runs --config.seed=1
#
# --dry-run prints every command instead of running it. WORKDIR must be a folder every host
# sees (a Filestore/NFS or gcsfuse mount): phases are written by process 0 and read by all.
# The slice is requested as a queued resource (reused if it is already ACTIVE), the
# repository is copied to every worker, and the same command runs on all of them
# (--worker=all); jax.distributed.initialize() finds its peers from the TPU metadata. The
# queued resource is deleted when the script ends, however it ends. If the slice is
# preempted (SUSPENDED) or FAILED, the script says so and exits 1: run the same command
# again, and the experiment resumes from the phases and checkpoints in WORKDIR.
set -euo pipefail
dry_run=0
if [ "${1:-}" = "--dry-run" ]; then dry_run=1; shift; fi
if [ $# -lt 6 ]; then awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 2; fi
name=$1 zone=$2 accelerator=$3 runtime=$4 config=$5 workdir=$6; shift 6
poll_s=${W2S_POLL_S:-30}

run() {  # runs a command, or prints it (shell-quoted) with --dry-run
  if [ "$dry_run" = 1 ]; then printf '%q ' "$@" | sed 's/ $//'; echo; else "$@"; fi
}

state() {
  gcloud compute tpus queued-resources describe "$name" --zone="$zone" \
    --format='value(state.state)' 2>/dev/null || echo MISSING
}

cleanup() {
  run gcloud compute tpus queued-resources delete "$name" --zone="$zone" --force --quiet \
    || echo "could not delete queued resource $name; delete it by hand" >&2
}

# The experiment's command on every worker; extra flags keep their quoting.
remote_flags=$(printf ' %q' --config="$config" --config.workdir="$workdir" "$@")
remote="set -e; mkdir -p ~/w2s_jax && tar -C ~/w2s_jax -xzf ~/w2s_jax.tgz && cd ~/w2s_jax
python3 -m venv .venv && . .venv/bin/activate && pip install -q -e . 'jax[tpu]'
python -m w2s_jax.main --distributed${remote_flags}"

if [ "$dry_run" = 1 ]; then
  echo "# state of an existing queued resource (reused if ACTIVE; a SUSPENDED or FAILED one is deleted)"
  run gcloud compute tpus queued-resources describe "$name" --zone="$zone" \
    --format='value(state.state)'
else
  case "$(state)" in
    ACTIVE) echo "reusing the ACTIVE queued resource $name" >&2 ;;
    MISSING) ;;
    *) cleanup ;;  # a preempted or failed slice from an earlier attempt
  esac
fi
trap cleanup EXIT
if [ "$dry_run" = 1 ] || [ "$(state)" = MISSING ]; then
  run gcloud compute tpus queued-resources create "$name" --node-id="$name" --zone="$zone" \
    --accelerator-type="$accelerator" --runtime-version="$runtime"
fi

if [ "$dry_run" = 1 ]; then
  echo "# repeated every ${poll_s}s until ACTIVE; SUSPENDED or FAILED end the launch"
  run gcloud compute tpus queued-resources describe "$name" --zone="$zone" \
    --format='value(state.state)'
else
  while true; do
    current=$(state)
    case "$current" in
      ACTIVE) break ;;
      SUSPENDED|SUSPENDING|FAILED)
        echo "error: queued resource $name is $current (preempted or not granted); run the" \
             "same command again to resume from $workdir" >&2
        exit 1 ;;
    esac
    sleep "$poll_s"
  done
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
run tar -C "$repo" --exclude=.venv --exclude=runs -czf /tmp/w2s_jax.tgz .
run gcloud compute tpus tpu-vm scp /tmp/w2s_jax.tgz "$name":~/ --zone="$zone" --worker=all
if ! run gcloud compute tpus tpu-vm ssh "$name" --zone="$zone" --worker=all --command "$remote"
then
  echo "error: the run stopped (queued resource $name: $(state)); run the same command again" \
       "to resume from $workdir" >&2
  exit 1
fi
