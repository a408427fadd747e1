"""A cell exported as flax source: the network the `trained` evaluator trains, written out for
this one cell, with no masks.

The module names are the evaluator's (`stem`, `stack{s}_cell{m}`, `proj{v}`, `v{v}_conv3x3`,
`proj_out`, `head`), so the exported network's parameters are exactly the subset of the masked
network's that the cell uses: the same weights give the same outputs (tests check it). Text only:
the grammar exports without importing JAX.
"""

from __future__ import annotations

from evolve.program import Program

from evolve.search_spaces import nas_cells
from evolve.search_spaces.nas_hash import AVAILABLE_OPS, MAX_VERTICES

OUTPUT_SLOT = MAX_VERTICES - 1
_MODULE = {"conv3x3-bn-relu": ("conv3x3", 3), "conv1x1-bn-relu": ("conv1x1", 1)}

_HEADER = '''"""NAS-Bench-101 cell {module_hash} as a flax.linen network, exported by evolve's nas-cells space.

    {description}

The network of the space's `trained` evaluator: a 3x3 conv-BN-ReLU stem, `stacks` stacks of
`cells_per_stack` cells (2x2 max-pool and twice the channels before every stack but the first),
global average pooling, a dense layer. Every vertex has the cell's full channel count and the cell's
output sums what feeds it (NAS-Bench-101 splits channels and concatenates). Train it as any flax
module, e.g.

    net = Network()
    variables = net.init(jax.random.key(0), x[:1], train=False)
    logits, updates = net.apply(variables, x, train=True, mutable=["batch_stats"])

The evaluator trained it on scikit-learn's digits (x: [batch, 8, 8, 1]) with SGD, momentum 0.9,
cosine decay from lr {lr}, weight decay 1e-4, batch {batch}, {steps} steps.
"""

import flax.linen as nn
import jax.numpy as jnp


class ConvBnRelu(nn.Module):
    features: int
    kernel: int

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(self.features, (self.kernel, self.kernel), padding="SAME", use_bias=False,
                    kernel_init=nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal"))(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
        return nn.relu(x)


def max_pool3x3(x):
    return nn.max_pool(x, (3, 3), strides=(1, 1), padding="SAME")


class Cell(nn.Module):
    channels: int

    @nn.compact
    def __call__(self, x, train: bool):
        c = self.channels
'''

_FOOTER = '''

class Network(nn.Module):
    channels: int = {channels}
    stacks: int = {stacks}
    cells_per_stack: int = {cells_per_stack}
    classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool):
        channels = self.channels
        x = ConvBnRelu(channels, 3, name="stem")(x, train)
        for s in range(self.stacks):
            if s:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
                channels *= 2
            for m in range(self.cells_per_stack):
                x = Cell(channels, name=f"stack{{s}}_cell{{m}}")(x, train)
        return nn.Dense(self.classes, name="head")(jnp.mean(x, axis=(1, 2)))
'''


def flax_source(program: Program, description: str, network: dict, training: dict) -> str:
    """The flax source of `program`'s network (`network`: channels, stacks, cells_per_stack;
    `training`: steps, batch, lr, for the docstring)."""
    matrix, ops = nas_cells.spec(program)
    n = len(ops)
    slot = [*range(n - 1), OUTPUT_SLOT]  # the evaluator's slot of each vertex
    body = []
    for v in range(1, n - 1):
        terms = [f"ConvBnRelu(c, 1, name=\"proj{slot[v]}\")(x, train)"] if matrix[0][v] else []
        terms += [f"h{slot[u]}" for u in range(1, v) if matrix[u][v]]
        summed = " + ".join(terms)
        if ops[v] in _MODULE:
            suffix, kernel = _MODULE[ops[v]]
            body.append(f"        h{slot[v]} = ConvBnRelu(c, {kernel}, name=\"v{slot[v]}_{suffix}\")({summed}, train)")
        else:
            assert ops[v] == AVAILABLE_OPS[2]
            body.append(f"        h{slot[v]} = max_pool3x3({summed})")
    outputs = ["ConvBnRelu(c, 1, name=\"proj_out\")(x, train)"] if matrix[0][n - 1] else []
    outputs += [f"h{slot[u]}" for u in range(1, n - 1) if matrix[u][n - 1]]
    body.append(f"        return {' + '.join(outputs)}")
    header = _HEADER.format(module_hash=nas_cells.module_hash(program), description=description, **training)
    return header + "\n".join(body) + "\n" + _FOOTER.format(**network)
