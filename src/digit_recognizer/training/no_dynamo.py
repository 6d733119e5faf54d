"""Optimizers that never import torch._dynamo: its import costs each train stage over 1 s, and training here
never compiles.

torch.optim (2.13) reaches torch._dynamo in two ways, each only to mark code for torch.compile:
- every optimizer's `step` is wrapped by `_use_grad_for_differentiable`, which imports torch._dynamo on every
  call to put a graph break between gradient mode and the update;
- `add_param_group`, `zero_grad`, `state_dict` and `load_state_dict` are wrapped by `torch._disable_dynamo`,
  which imports it on the first call to mark them as never compiled.
torch offers no public switch for either, so this module, and only this one, reaches past those wrappers:
`plain_step` runs the undecorated update under `torch.no_grad()` (what the wrapper does outside torch.compile
for a non-differentiable optimizer), and `skip_never_compile_marks` fills the cache that `_disable_dynamo`
reads with the plain method, for the whole process: a process that also calls torch.compile must not use
these optimizers. tests/test_no_dynamo.py fails when a torch upgrade makes either stale.
"""

from __future__ import annotations

import functools
import inspect

import torch


@functools.cache
def plain_step(optimizer_class: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """`optimizer_class` with a `step` that updates under `torch.no_grad()` without importing torch._dynamo."""
    skip_never_compile_marks()
    update = inspect.unwrap(optimizer_class.step)

    def step(self, closure=None):
        if self.defaults.get("differentiable"):
            raise ValueError("plain_step is for non-differentiable optimizers")
        with torch.no_grad():
            return update(self, closure)

    return type(optimizer_class.__name__, (optimizer_class,), {"step": step, "__module__": __name__})


def skip_never_compile_marks() -> list[str]:
    """Let the Optimizer methods that torch marks "never compile" run without importing torch._dynamo.
    Returns the methods changed (none once done, or once torch stops marking them)."""
    from torch._compile import _disable_dynamo

    wrapper_code = _disable_dynamo(lambda: None).__code__
    changed = []
    for name, method in vars(torch.optim.Optimizer).items():
        original = getattr(method, "__wrapped__", None)
        if getattr(method, "__code__", None) is wrapper_code and not hasattr(original, "__dynamo_disable"):
            setattr(original, "__dynamo_disable", original)
            changed.append(name)
    return changed
