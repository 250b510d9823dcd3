"""nnet.distributed in a world of one (no launcher, no MPI needed): the sampler, the DataLoader's
sampler, the engine's post-accumulate-grad hooks, the differentiable all-reduce, SyncBatchNorm,
DistributedDataParallel's pass-through, and the error messages."""

from __future__ import annotations

import sys
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnet
import nnet.distributed as dist
from nnet import nn
from nnet.autograd import leaf_hooks
from nnet.data import DataLoader, TensorDataset
from nnet.distributed.batchnorm_kernel import (
    GlobalStats,
    SyncBatchNormKernel,
    sync_batch_norm_train,
)
from nnet.distributed.functional import AllReduceSum, all_reduce
from nnet.kernels import ConvReluPoolBatchNorm, use_fused
from nnet.testing import gradcheck, gradgradcheck
from nnet.testing.strategies import shapes
from tests.distributed.conftest import run
from tests.gradtest import arrays, check_grad, leaf, seeds
from tests.nn.layer_case import layer_gradcheck


# -- DistributedSampler -----------------------------------------------------------------------------
@pytest.mark.parametrize("n, world", [(10, 3), (7, 2), (4, 4), (2, 3)])
def test_sampler_shards_are_disjoint_equal_and_cover_the_data(n, world):
    shards = [list(dist.DistributedSampler(range(n), world, r, seed=5)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-n // world)
    everything = [i for s in shards for i in s]
    assert set(everything) == set(range(n))
    assert len(everything) - n == len(everything) - len(set(everything))  # only padding repeats


def test_sampler_set_epoch_reshuffles_the_same_way_on_every_rank():
    def order(rank, epoch):
        s = dist.DistributedSampler(range(20), 2, rank, seed=1)
        s.set_epoch(epoch)
        return list(s)

    assert order(0, 0) == order(0, 0) and order(0, 0) != order(0, 1)
    for epoch in (0, 1):  # the two ranks deal one permutation between them
        assert sorted(order(0, epoch) + order(1, epoch)) == list(range(20))


def test_sampler_without_padding_and_with_drop_last():
    def shards(**kw):
        return [list(dist.DistributedSampler(range(7), 2, r, shuffle=False, **kw)) for r in (0, 1)]

    assert shards(pad=False) == [[0, 2, 4, 6], [1, 3, 5]]
    assert shards(drop_last=True) == [[0, 2, 4], [1, 3, 5]]
    assert shards() == [[0, 2, 4, 6], [1, 3, 5, 0]]


def test_sampler_rejects_a_rank_outside_the_world():
    with pytest.raises(ValueError, match=r"rank must be in \[0, num_replicas\), got rank 2 of"):
        dist.DistributedSampler(range(4), 2, 2)


def test_data_loader_follows_its_sampler():
    ds = TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    loader = DataLoader(ds, batch_size=2, sampler=dist.DistributedSampler(ds, 2, 1, shuffle=False))
    assert len(loader) == 2
    assert [y.tolist() for _, y in loader] == [[1, 3], [0]]
    with pytest.raises(ValueError, match="sampler gives the order, so it excludes shuffle=True"):
        DataLoader(ds, shuffle=True, sampler=[0, 1])


# -- post-accumulate-grad hooks ---------------------------------------------------------------------
def test_hooks_run_as_each_leaf_is_final_with_its_final_gradient():
    w1 = nnet.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    w2 = nnet.tensor(np.array([0.5, -1.0]), requires_grad=True)
    seen = []

    def record(name, other):
        return lambda t: seen.append((name, t.grad.numpy().copy(), other.grad))

    handles = [w1.register_post_accumulate_grad_hook(record("w1", w2)),
               w2.register_post_accumulate_grad_hook(record("w2", w1))]  # fmt: skip
    x = nnet.tensor(np.array([[1.0, -2.0]]))

    def loss():
        return (((x @ w1).relu() * w1.sum()) @ w2).sum()  # w1 reaches the loss by two paths

    loss().backward()
    # the last layer's weight is final first, while w1 still waits for its gradients
    assert [s[0] for s in seen] == ["w2", "w1"] and seen[0][2] is None
    np.testing.assert_array_equal(seen[0][1], w2.grad.numpy())
    np.testing.assert_array_equal(seen[1][1], w1.grad.numpy())
    np.testing.assert_allclose(w1.grad.numpy(), nnet.grad(loss(), w1)[0].numpy())
    for handle in handles:  # each hook holds the other tensor: the registry would keep both
        handle.remove()


def test_a_leaf_and_its_hooks_go_when_the_leaf_goes():
    w = nnet.tensor([1.0], requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: None)
    key = id(w)
    assert key in leaf_hooks._hooks
    del w
    assert key not in leaf_hooks._hooks


def test_hooks_see_accumulated_gradients_and_can_be_removed():
    w = nnet.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (w * w).sum().backward()
    (w * 3).sum().backward()
    assert seen == [[2.0, 4.0], [5.0, 7.0]]
    nnet.grad((w * w).sum(), w)  # returns gradients, accumulates nothing: no hook
    assert len(seen) == 2
    w.grad = None
    (w * w).sum().backward(create_graph=True)  # recorded backward: the hook runs at its end
    assert seen[-1] == [2.0, 4.0]
    handle.remove()
    (w * w).sum().backward()
    assert len(seen) == 3


def test_hooks_only_on_leaves_that_require_gradients():
    w = nnet.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"post_accumulate_grad_hook.*result of an operation"):
        (w * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="does not require gradients"):
        nnet.tensor([1.0]).register_post_accumulate_grad_hook(print)
    with pytest.raises(TypeError, match="is not callable"):
        w.register_post_accumulate_grad_hook(3)


def test_backward_end_callbacks_see_every_leaf_once_per_backward():
    w, b = nnet.tensor([1.0, 2.0], requires_grad=True), nnet.tensor([3.0], requires_grad=True)
    hooked = nnet.tensor([1.0], requires_grad=True)  # one leaf finished early, by its count
    hooked.register_post_accumulate_grad_hook(lambda t: None)
    calls = []
    handle = leaf_hooks.register_backward_end(
        lambda ids: calls.append(({id(w), id(b), id(hooked)} & set(ids), w.grad.tolist()))
    )
    ((w * b).sum() * hooked).sum().backward()
    assert calls == [({id(w), id(b), id(hooked)}, [3.0, 3.0])]  # after accumulating
    nnet.grad((w * w).sum(), [w])  # returns gradients, accumulates nothing: no call
    (w * 2).sum().backward()
    assert len(calls) == 2 and calls[1][0] == {id(w)}
    handle.remove()
    (w * 2).sum().backward()
    assert len(calls) == 2
    with pytest.raises(TypeError, match="is not callable"):
        leaf_hooks.register_backward_end(3)


# -- the differentiable all-reduce and SyncBatchNorm ------------------------------------------------
@given(a=arrays(shapes(max_dims=3, min_side=0, max_side=3)), seed=seeds)
def test_all_reduce_gradient(a, seed):
    """In a world of one the sum over ranks is the identity; test_mpi.py checks two ranks."""
    check_grad(all_reduce, leaf(a), primitive=AllReduceSum, seed=seed, second_order=True)


def test_sync_batchnorm_gradcheck():
    rng = np.random.default_rng(0)
    bn = dist.SyncBatchNorm(3)
    bn.weight.data[:] = rng.uniform(0.5, 2, 3)
    bn.bias.data[:] = rng.normal(size=3)
    assert layer_gradcheck(bn, rng.normal(size=(4, 2, 3, 3)))
    assert layer_gradcheck(dist.SyncBatchNorm(2), rng.normal(size=(5, 2)))


def _sync_bn_run(fused, x, affine, g):
    bn = dist.SyncBatchNorm(x.shape[-1], affine=affine).double()
    if affine:
        bn.weight.data[:] = np.linspace(0.5, 2.0, x.shape[-1])
        bn.bias.data[:] = np.linspace(-1.0, 1.0, x.shape[-1])
    xt = nnet.Tensor(x.copy(), requires_grad=True)
    with use_fused(fused):
        y = bn(xt)
    assert (type(y.grad_fn) is SyncBatchNormKernel) == fused
    leaves = [xt, *bn.parameters()]
    grads = nnet.grad(y, leaves, nnet.Tensor(g))
    return [y.numpy(), *(t.numpy() for t in grads), bn.running_mean.numpy(), bn.running_var.numpy()]


@given(shape=st.sampled_from([(2, 3), (5, 1), (3, 4, 5, 2), (1, 2, 2, 3)]), affine=st.booleans(),
       scale=st.floats(1e-2, 1e2), seed=seeds)  # fmt: skip
def test_sync_batchnorm_kernel_matches_the_composition(shape, affine, scale, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale + rng.standard_normal(shape[-1]) * 3
    g = rng.standard_normal(shape)
    for got, want in zip(_sync_bn_run(True, x, affine, g), _sync_bn_run(False, x, affine, g),
                         strict=True):  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-9 * max(1.0, 1 / scale))


@pytest.mark.parametrize("affine", [True, False])
def test_sync_batchnorm_kernel_gradcheck_and_second_order(affine):
    rng = np.random.default_rng(3)
    x = nnet.Tensor(rng.standard_normal((3, 2, 2, 3)), requires_grad=True)
    w = nnet.Tensor(rng.uniform(0.5, 2.0, 3), requires_grad=True)
    b = nnet.Tensor(rng.standard_normal(3), requires_grad=True)

    def f(x, w, b):
        y = sync_batch_norm_train(x, w if affine else None, b if affine else None, 1e-5,
                                  GlobalStats())  # fmt: skip
        assert type(y.grad_fn) is SyncBatchNormKernel
        return y * y.sum()  # couples the rows, so the cross terms of the gradient are checked

    assert gradcheck(f, x, w, b)
    assert gradgradcheck(f, x, w, b)


def test_sync_batchnorm_in_a_world_of_one_is_batchnorm():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4, 4, 3)).astype(np.float32)
    outs = []
    for layer in (nn.BatchNorm2d(3), dist.convert_sync_batchnorm(nn.BatchNorm2d(3))):
        xt = nnet.Tensor(x.copy(), requires_grad=True)
        y = layer(xt)
        (y * nnet.Tensor(x)).sum().backward()
        outs.append((y.numpy(), xt.grad.numpy(), layer.weight.grad.numpy(),
                     layer.running_var.numpy()))  # fmt: skip
    for a, b in zip(*outs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def conv_block_run(fused: bool, x: np.ndarray, cout: int, g: np.ndarray) -> list[np.ndarray]:
    """A conv-relu-pool-SyncBatchNorm block on ``x`` (no gradient: the fused kernel's condition),
    float64: its output, the gradients of sum(y g) and, through them (create_graph), of the sum of
    their squares, and the running statistics. Every rank calls it alike (workers/ddp_equivalence)."""
    nnet.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(x.shape[-1], cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.BatchNorm2d(cout))  # fmt: skip
    block = dist.convert_sync_batchnorm(block).double()
    block[3].weight.data[:] = np.linspace(0.5, 2.0, cout)
    block[3].bias.data[:] = np.linspace(-1.0, 1.0, cout)
    params = list(block.parameters())
    with use_fused(fused):
        y = block(nnet.Tensor(x))
        assert (type(y.grad_fn) is ConvReluPoolBatchNorm) == fused, y.grad_fn
        grads = nnet.grad((y * nnet.Tensor(g)).sum(), params, create_graph=True)
        second = nnet.grad(sum((d * d).sum() for d in grads), params, allow_unused=True)
    second = [np.zeros(1) if d is None else d.numpy() for d in second]  # beta's: sum g, constant
    return [y.numpy(), *(d.numpy() for d in grads), *second, block[3].running_mean.numpy(),
            block[3].running_var.numpy()]  # fmt: skip


@pytest.mark.parametrize("cout", [4, 8])  # patchpool's channel-major p; the offset planes
def test_sync_batchnorm_after_conv_relu_pool_fuses_with_it(cout):
    """conv-relu-pool-bn's kernel, its statistics summed over the ranks (here a world of one;
    workers/ddp_equivalence.py runs it on two ranks' different rows), against the composition."""
    rng = np.random.default_rng(cout)
    x = rng.normal(1.0, 2.0, size=(3, 6, 6, 2))
    g = rng.normal(size=(3, 3, 3, cout))
    for got, want in zip(conv_block_run(True, x, cout, g), conv_block_run(False, x, cout, g),
                         strict=True):  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_a_sync_batchnorm_output_left_unread_still_moves_the_running_statistics():
    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = dist.SyncBatchNorm(3)

        def forward(self, x: nnet.Tensor) -> nnet.Tensor:
            self.bn(x)  # dropped: computed anyway, for its running statistics
            return x

    probe = Probe()
    x = np.random.default_rng(2).normal(3.0, 1.0, size=(4, 2, 2, 3)).astype(np.float32)
    probe(nnet.Tensor(x))
    np.testing.assert_allclose(probe.bn.running_mean.numpy(), 0.1 * x.mean(axis=(0, 1, 2)),
                               rtol=1e-5)  # fmt: skip


def test_convert_sync_batchnorm_keeps_the_parameters_and_buffers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sequential(nn.BatchNorm1d(4)))
    weight, mean = model[1].weight, model[1].running_mean
    keys = list(model.state_dict())
    converted = dist.convert_sync_batchnorm(model)
    assert type(converted[1]) is dist.SyncBatchNorm and type(converted[2][0]) is dist.SyncBatchNorm
    assert converted[1].weight is weight and converted[1].running_mean is mean
    assert list(converted.state_dict()) == keys


def test_sync_batchnorm_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"SyncBatchNorm\(3\) expects input \(N, \.\.\., 3\)"):
        dist.SyncBatchNorm(3)(nnet.ones(2, 4))
    with pytest.raises(ValueError, match="more than one value per channel over all ranks, got 1"):
        dist.SyncBatchNorm(3)(nnet.ones(1, 3))


@pytest.mark.parametrize("keep", [None, "tensor", "array", "slice"])
def test_a_bucket_reuses_a_handed_out_buffer_only_once_nothing_holds_it(keep):
    from nnet.distributed.ddp import _Bucket

    params = [nnet.zeros(3, 4, requires_grad=True), nnet.zeros(5, requires_grad=True)]
    bucket = _Bucket(params)
    first = weakref.ref(bucket.buffer)
    bucket.buffer[:] = 1.0
    bucket.hand_out()  # each .grad a view of the first buffer
    grad = params[1].grad
    kept = {None: None, "tensor": grad, "array": grad.data, "slice": grad.data[1:]}[keep]
    del grad
    for value in (2.0, 3.0, 4.0):
        bucket.hand_out()  # the .grad now views of the next buffer: the first's are dropped
        if value == 2.0:
            assert (bucket.buffer is first()) == (keep is None)
        bucket.buffer[:] = value
    if kept is not None:
        assert np.all((kept.data if keep == "tensor" else kept) == 1.0)


# -- the world of one -------------------------------------------------------------------------------
def test_a_world_of_one():
    assert (dist.init(), dist.rank(), dist.world_size(), dist.is_main()) == (1, 0, 1, True)
    x = np.arange(4.0)
    assert dist.all_reduce(x, op="max") is x and x.tolist() == [0, 1, 2, 3]
    assert dist.broadcast(nnet.ones(2)).tolist() == [1.0, 1.0]
    assert dist.all_gather_object({"a": 1}) == [{"a": 1}]
    dist.barrier()


def test_collective_errors_name_the_problem():
    with pytest.raises(ValueError, match="op must be one of sum, mean, max, min, got 'prod'"):
        dist.all_reduce(np.ones(2), op="prod")
    with pytest.raises(ValueError, match="not C-contiguous"):
        dist.all_reduce(np.ones((3, 3))[:, 0])
    with pytest.raises(TypeError, match="expected a Tensor or a NumPy array, got list"):
        dist.broadcast([1, 2])
    with pytest.raises(ValueError, match=r"src must be a rank in \[0, 1\), got 1"):
        dist.broadcast(np.ones(2), src=1)


def test_ddp_in_a_world_of_one_is_the_module():
    nnet.manual_seed(0)
    model = nn.Linear(3, 2)
    wrapped = dist.DistributedDataParallel(model)
    x = nnet.randn(4, 3)
    np.testing.assert_array_equal(wrapped(x).numpy(), model(x).numpy())
    assert list(wrapped.parameters()) == list(model.parameters())
    assert list(wrapped.state_dict()) == ["module.weight", "module.bias"]


def test_ddp_errors_name_the_problem():
    with pytest.raises(TypeError, match=r"expected an nnet\.nn\.Module, got builtin_function"):
        dist.DistributedDataParallel(print)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bucket_cap_mb must be positive, got 0"):
        dist.DistributedDataParallel(nn.Linear(1, 1), bucket_cap_mb=0)


def test_launched_without_mpi4py_says_how_to_install():
    code = "import sys; sys.modules['mpi4py'] = None\nimport nnet.distributed as d\nd.init()\n"
    done = run([sys.executable, "-c", code], env={"PMI_SIZE": "2", "PMI_RANK": "0"}, timeout=60)
    assert done.returncode != 0
    assert 'pip install "nnet[distributed]"' in done.stderr
