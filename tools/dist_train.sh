#!/usr/bin/env bash
# Distributed training through torchrun (PyTorch DDP via mmengine); CPU-only machines use gloo.
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as in mmdet's dist_train.sh.
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
cd "$(dirname "$0")/.." || exit 1
# the project venv when there is one (make setup), else whatever `python` is
if [[ -z "$PYTHON" ]]; then [[ -x .venv/bin/python ]] && PYTHON=.venv/bin/python || PYTHON=python; fi
PYTHONPATH="$(pwd):$PYTHONPATH" $PYTHON -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$PORT" \
    tools/train.py "$CONFIG" --launcher pytorch "${@:3}"
