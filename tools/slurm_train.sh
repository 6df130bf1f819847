#!/usr/bin/env bash
# tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args] -- as mmdet's.
# GPUS (total tasks), GPUS_PER_NODE, CPUS_PER_TASK and SRUN_ARGS come from the environment.
# On CPU-only partitions set GPUS_PER_NODE=0: tasks then train with gloo (see tools/train.py).
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PY_ARGS=${@:5}
# the project's virtual environment (made by `make demo` / `make test`) unless PYTHON is set
HERE="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$HERE/.venv/bin/python" ]; then PYTHON="$HERE/.venv/bin/python"; else PYTHON=python; fi
fi
GRES=""
if [ "$GPUS_PER_NODE" != "0" ]; then
    GRES="--gres=gpu:${GPUS_PER_NODE}"
    TASKS_PER_NODE=${TASKS_PER_NODE:-$GPUS_PER_NODE}
else
    TASKS_PER_NODE=${TASKS_PER_NODE:-1}
fi

PYTHONPATH="$HERE":$PYTHONPATH \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    ${GRES} \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${TASKS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$HERE/tools/train.py" "${CONFIG}" --work-dir="${WORK_DIR}" --launcher="slurm" ${PY_ARGS}
