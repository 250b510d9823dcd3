"""Under mpiexec -n 2: data-parallel training against one process, on rank 0.

* the seed CNN (dropout off, SyncBatchNorm) trained on 2 ranks with half of each global batch
  ends with the weights and running statistics of the same network (plain BatchNorm2d) trained
  by rank 0 alone on the whole batches;
* SyncBatchNorm's fused kernels (its own, and conv-relu-pool-bn's with its sums over the ranks)
  give the composition's output, first and second derivatives
  (create_graph) and running statistics, with different rows (and row counts) on the two ranks;
* the same with one bucket (averaged at the backward's end, no per-parameter hooks), and a
  ``.grad`` kept from one step is not overwritten by the next averaging;
* one bucket with every rank on this machine goes through NodeSum (shared memory), with the bits
  of MPI's all-reduce; NodeSum's sums are exact over several rounds;
* there each rank updates its half of the flat arrays (Adam, AMSGrad, weight decay; SGD with
  Nesterov momentum): the parameters and every rank's whole optimizer state are the bits of each
  rank updating everything; a second optimizer over the same model updates everything itself;
* no_sync: gradients accumulated locally over two micro-batches, then averaged, equal the
  average over ranks of the summed gradients;
* DistributedSampler: the two ranks' shards are disjoint, cover the data set, and set_epoch
  reshuffles identically on both;
* without NNET_NUM_THREADS each rank runs on its share of the node's cores;
* a dropped DistributedDataParallel and its model are freed (the hooks hold them weakly).
Prints "ok" on rank 0 when every check passed.
"""

import gc
import weakref

import numpy as np
from mpi4py import MPI

import nnet
import nnet.distributed as dist
from nnet import nn
from nnet.datasets import load_digits
from nnet.distributed.node_sum import NodeSum
from nnet.kernels import use_fused
from nnet.threads import available_cores
from nnet.train.models import seed_cnn

dist.init()
rank, world = dist.rank(), dist.world_size()
assert world == 2, world
# launched without NNET_NUM_THREADS: each rank takes its share of the node's cores
assert nnet.get_num_threads() == max(1, available_cores() // 2), nnet.get_num_threads()
images, labels = load_digits()
B, STEPS = 64, 4


def make() -> nn.Module:
    nnet.manual_seed(0)
    model = seed_cnn((8, 8, 1))
    model[-2].p = 0.0  # dropout off: its masks would differ between the two runs
    return model


def train(model: nn.Module, shard: bool, optimizer: nnet.optim.Optimizer | None = None) -> None:
    # SGD: Adam's first steps move a weight by lr * sign(gradient), so a gradient that is zero up
    # to rounding (the conv biases' here) would move by lr either way
    if optimizer is None:
        optimizer = nnet.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(STEPS):
        x, y = images[step * B : (step + 1) * B], labels[step * B : (step + 1) * B]
        if shard:
            x, y = x[rank::world], y[rank::world]
        optimizer.zero_grad()
        loss_fn(model(nnet.Tensor(x)), nnet.Tensor(y)).backward()
        optimizer.step()


# several buckets, so some start while the backward runs (per-parameter hooks); and one bucket,
# averaged by one callback at the backward's end
for cap in (0.001, 1.0):
    ddp = dist.DistributedDataParallel(dist.convert_sync_batchnorm(make()), bucket_cap_mb=cap)
    assert (len(ddp._buckets) > 1) == (cap < 0.1), len(ddp._buckets)
    train(ddp, shard=True)
    if rank == 0:
        reference = make()
        train(reference, shard=False)
        got, want = ddp.module.state_dict(), reference.state_dict()
        for name in want:
            a, b = got[name].astype(np.float64), want[name].astype(np.float64)
            scale = max(1.0, float(np.abs(b).max()))
            assert np.abs(a - b).max() <= 2e-5 * scale, (cap, name, np.abs(a - b).max(), scale)
    # a .grad kept from one step is not overwritten by the next averaging (a fresh buffer)
    kept = [p.grad for p in ddp.parameters()]
    copies = [g.data.copy() for g in kept]
    train(ddp, shard=True)
    assert all(np.array_equal(g.data, c) for g, c in zip(kept, copies, strict=True))
    assert all(p.grad is not g for p, g in zip(ddp.parameters(), kept, strict=True))
    del ddp


# one bucket on one machine: summed through shared memory (NodeSum), the same bits as MPI's sum
ddp = dist.DistributedDataParallel(dist.convert_sync_batchnorm(make()))
assert ddp._node_sum is not None
train(ddp, shard=True)
by_mpi = dist.DistributedDataParallel(dist.convert_sync_batchnorm(make()))
by_mpi._node_sum = None  # the MPI all-reduce path
train(by_mpi, shard=True)
for name, value in ddp.module.state_dict().items():
    assert np.array_equal(value, by_mpi.module.state_dict()[name]), name
del ddp, by_mpi


# the update split over the ranks (ZeRO-1): the bits of every rank updating everything
def split_update(split: bool, make_optimizer, second: bool = False) -> list[np.ndarray]:
    ddp = dist.DistributedDataParallel(dist.convert_sync_batchnorm(make()))
    if not split:
        ddp._shard = None
    optimizer = make_optimizer(ddp.parameters())
    other = make_optimizer(ddp.parameters()) if second else None
    train(ddp, shard=True, optimizer=optimizer)
    if other is not None:
        train(ddp, shard=True, optimizer=other)
    stepped = other if other is not None else optimizer
    (f,) = stepped._flats.values()
    size = sum(p.data.size for p in ddp.parameters())
    if split and not second:
        assert f.shard is not None and f.part == ((0, 528) if rank == 0 else (528, size)), f.part
    else:
        assert f.shard is None and f.part == (0, size), f.part
    state = stepped.state_dict()["state"]
    return [*ddp.module.state_dict().values(),
            *(v for i in sorted(state) for v in state[i].values())]  # fmt: skip


for make_optimizer in (
    lambda ps: nnet.optim.Adam(ps, lr=1e-3, amsgrad=True, weight_decay=0.1),
    lambda ps: nnet.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
):
    for second in (False, True):
        got, whole = (
            split_update(True, make_optimizer, second),
            split_update(False, make_optimizer, second),
        )
        assert len(got) == len(whole)
        for a, b in zip(got, whole, strict=True):
            np.testing.assert_array_equal(a, b)

# NodeSum over rounds: exact sums in rank order, each round's terms kept apart from the next's
node = NodeSum(dist.communicator().Split_type(MPI.COMM_TYPE_SHARED), 5, np.dtype(np.float64))
for k in range(4):
    node.slot()[:] = np.arange(5) * (rank + 1) + k
    total = node.total(out=np.empty(5))
    np.testing.assert_array_equal(total, np.arange(5) * 3 + 2 * k)


# SyncBatchNorm: the fused kernel against its composition, over the two ranks' rows
def sync_bn(fused: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(10 + rank)
    x = nnet.Tensor(rng.normal(2.0, 3.0, size=(3 + rank, 2, 2, 3)), requires_grad=True)
    bn = dist.SyncBatchNorm(3).double()
    bn.weight.data[:] = [0.5, 1.0, 2.0]
    with use_fused(fused):
        y = bn(x)
        (gx,) = nnet.grad((y * y * y).sum(), [x], create_graph=True)
        (ggx,) = nnet.grad((gx * gx).sum(), [x])
    return [y.numpy(), gx.numpy(), ggx.numpy(), bn.running_mean.numpy(), bn.running_var.numpy()]


for got, want in zip(sync_bn(True), sync_bn(False), strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


# conv-relu-pool-SyncBatchNorm as one kernel (ConvReluPoolBatchNorm, its statistics and their
# gradients summed over the ranks) against the composition, on each rank's own rows: both of the
# kernel's paths (4 output channels: patchpool's channel-major p; 8: the offset planes)
def conv_block(fused: bool, cout: int, rows: int, frozen: bool = False) -> list[np.ndarray]:
    rng = np.random.default_rng(20 + rank)
    x = nnet.Tensor(rng.normal(1.0 + rank, 2.0, size=(rows, 6, 6, 2)))  # no gradient
    g = nnet.Tensor(rng.normal(size=(rows, 3, 3, cout)))
    nnet.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(2, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.BatchNorm2d(cout))  # fmt: skip
    block = dist.convert_sync_batchnorm(block).double()
    block[3].weight.data[:] = np.linspace(0.5, 2.0, cout)
    if frozen:
        block[0].requires_grad_(False)
    params = [p for p in block.parameters() if p.requires_grad]
    with use_fused(fused):
        y = block(x)
        takes = fused and rows > 0  # no rows: this rank runs SyncBatchNorm's own kernel
        assert (type(y.grad_fn).__name__ == "ConvReluPoolBatchNorm") == takes, y.grad_fn
        grads = nnet.grad((y * g).sum(), params, create_graph=not frozen)
        second = [] if frozen else nnet.grad(sum((d * d).sum() for d in grads), params[:3])
    return [y.numpy(), *(d.numpy() for d in (*grads, *second)), block[3].running_mean.numpy(),
            block[3].running_var.numpy()]  # fmt: skip


for cout in (4, 8):
    for got, want in zip(conv_block(True, cout, 2 + rank), conv_block(False, cout, 2 + rank),
                         strict=True):  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
# one rank with the kernel, one without (no rows: a last batch smaller than the world), the
# convolution trained or frozen: the ranks still meet alike (a mismatch would hang)
for frozen in (False, True):
    rows = 3 if rank == 0 else 0
    for got, want in zip(conv_block(True, 4, rows, frozen), conv_block(False, 4, rows, frozen),
                         strict=True):  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)

# no_sync
nnet.manual_seed(1)
net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
ddp = dist.DistributedDataParallel(net)
loss_fn = nn.CrossEntropyLoss()
micro = [(images[i * 32 : (i + 1) * 32], labels[i * 32 : (i + 1) * 32]) for i in range(4)]
(x1, y1), (x2, y2) = micro[2 * rank], micro[2 * rank + 1]
with ddp.no_sync():
    loss_fn(ddp(nnet.Tensor(x1)), nnet.Tensor(y1)).backward()
local = [p.grad.data.copy() for p in net.parameters()]
loss_fn(ddp(nnet.Tensor(x2)), nnet.Tensor(y2)).backward()
if rank == 0:
    assert not all(
        np.array_equal(a, p.grad.data) for a, p in zip(local, net.parameters(), strict=True)
    )
    nnet.manual_seed(1)
    ref = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    for x, y in micro:
        loss_fn(ref(nnet.Tensor(x)), nnet.Tensor(y)).backward()
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.data, q.grad.data / world, rtol=1e-5, atol=1e-6)

# the gradient hooks hold the wrapper weakly: dropping wrapper and model frees them
model = nn.Linear(2, 2)
alive = weakref.ref(model)
dist.DistributedDataParallel(model)
del model
gc.collect()
assert alive() is None

# DistributedSampler
sampler = dist.DistributedSampler(range(11), seed=3)
epochs = []
for epoch in range(2):
    sampler.set_epoch(epoch)
    epochs.append(dist.all_gather_object(list(sampler)))
if rank == 0:
    for shards in epochs:
        assert len(shards[0]) == len(shards[1]) == 6  # 11 indices padded to 12
        assert set(shards[0]) | set(shards[1]) == set(range(11))
        assert len(set(shards[0]) & set(shards[1])) <= 1  # only the padded index repeats
    assert epochs[0] != epochs[1]
    print("ok", flush=True)
