"""Under mpiexec -n 2, rank 1 fails in the way named by argv[1] while rank 0 waits for it in a
collective: "raise" (an exception), "kill" (SIGKILL), "mismatch" (a model of another shape)."""

import os
import signal
import sys

import nnet
import nnet.distributed as dist

dist.init()
mode = sys.argv[1]
if mode == "mismatch":
    hidden = 16 if dist.rank() == 0 else 32
    dist.DistributedDataParallel(nnet.nn.Sequential(nnet.nn.Linear(4, hidden)))
elif dist.rank() == 1:
    if mode == "raise":
        raise ValueError("boom: rank 1 could not read its shard")
    os.kill(os.getpid(), signal.SIGKILL)
dist.barrier()
print("rank 0 passed the barrier: rank 1 did not end the job", flush=True)
