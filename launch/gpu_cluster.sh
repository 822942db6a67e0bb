#!/usr/bin/env bash
# Runs a w2s_jax experiment on GPUs: one host (all its GPUs in one process) or several
# hosts under SLURM (one process per host).
#
#   launch/gpu_cluster.sh [--dry-run] CONFIG WORKDIR [extra flags...]     # this host
#   sbatch --nodes=2 --ntasks-per-node=1 --gpus-per-node=8 \
#       launch/gpu_cluster.sh CONFIG WORKDIR [extra flags...]            # SLURM
#
# Under SLURM, jax.distributed.initialize() reads the coordinator and process ids from the
# SLURM environment; WORKDIR must be on a filesystem every node sees. Install first with
# pip install -e . 'jax[cuda13]' (or cuda12, matching the driver). --dry-run prints the
# command instead of running it. After a preemption or node failure, the same command
# resumes from the phases and checkpoints in WORKDIR.
set -euo pipefail
dry_run=0
if [ "${1:-}" = "--dry-run" ]; then dry_run=1; shift; fi
run() {  # replaces this shell with the command, or prints it (shell-quoted)
  if [ "$dry_run" = 1 ]; then printf '%q ' "$@" | sed 's/ $//'; echo; exit 0; fi
  exec "$@"
}
if [ $# -lt 2 ]; then awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 2; fi
config=$1 workdir=$2; shift 2
cd "$(dirname "$0")/.."
if [ -n "${SLURM_JOB_ID:-}" ] && [ "${SLURM_NTASKS:-1}" -gt 1 ]; then
  run srun python -m w2s_jax.main --distributed --config="$config" \
    --config.workdir="$workdir" "$@"
fi
run python -m w2s_jax.main --config="$config" --config.workdir="$workdir" "$@"
