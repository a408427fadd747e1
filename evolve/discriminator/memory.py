"""What keeps the network's compilations from setting a run's peak memory.

XLA's CPU compiler builds fused kernels through MLIR by default (its "fusion emitters"); compiling
the discriminator's training scan that way took about 270 MB more at its peak than before it began,
and left much of it in malloc's heaps, unused but not given back. With the older LLVM emitters
(`COMPILER_OPTIONS`, given to the discriminator's own jitted functions, so nothing else in the
process changes) the same compilation peaked about 180 MB lower (385 vs 571 MB for the first, 435
vs 614 MB for a second shape). It ran about as fast (measured alternately in one process: 16 steps
103 vs 95 ms at 8 bins, 193 vs 208 ms at 16; inference 1.7 vs 1.5 ms for 64 graph slots, 18 vs 16
ms for 512) and computed the same up to float rounding (the same probabilities; parameters after 16
steps within 2e-3). Either way a compiled training call keeps about 30 MB and an inference shape
about 6 MB, which is why the trainer compiles few of them (see training.py).

What a compilation frees stays with glibc's malloc, in the middle of its heaps, where it is not
given back on its own: `release_freed_memory` (malloc_trim) gives it back (a 721 MB process fell to
523 MB after five training compilations); the trainer calls it after each call that compiled, a
few dozen times a run. Where the C library is not glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

#: XLA options of the discriminator's compilations (see the module docstring)
COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Give the memory malloc holds free back to the system (a few ms)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
