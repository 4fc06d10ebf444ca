"""The public checks themselves: they call every student function and vary each of its
options; the layer matcher accepts the styles a student may write and names what differs."""
import functools
import importlib
import inspect
from collections import defaultdict
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from grading.layers import RELU, Mismatch, bn, conv, lrelu, match, trace_probe
from grading.registry import select
from grading.release import all_regions

REPO = Path(__file__).resolve().parents[1]

# Options that no check can vary on the grader's machine, and why.
UNVARIED = {("extract_features", "device"): "the checks run on a CPU: 'cpu' and torch.device('cpu') are one device"}


def _owner(module, qualname: str):
    """(object holding the function, its name): the module or the class."""
    *path, name = qualname.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def _seen(value) -> str:
    if isinstance(value, torch.device):  # torch.device("cpu") is the device "cpu"
        value = str(value)
    if isinstance(value, (bool, int, float, str, type(None))) or (
            isinstance(value, tuple) and all(isinstance(v, (int, float, str)) for v in value)):
        return repr(value)
    return type(value).__name__


def test_public_checks_call_every_student_function_and_vary_each_option(monkeypatch):
    """Each public check run here, in this process, with every student function of the
    reference wrapped to record the arguments it receives."""
    calls = defaultdict(list)
    for region in all_regions(REPO):
        module = importlib.import_module(region.path.removesuffix(".py").replace("/", "."))
        owner, name = _owner(module, region.function)
        raw = inspect.getattr_static(owner, name)
        original = raw.__func__ if isinstance(raw, staticmethod) else raw
        signature = inspect.signature(original)

        def record(*args, _original=original, _signature=signature, _name=region.function, **kwargs):
            bound = _signature.bind(*args, **kwargs)
            bound.apply_defaults()
            calls[_name].append({k: _seen(v) for k, v in bound.arguments.items()})
            return _original(*args, **kwargs)

        wrapper = functools.wraps(original)(record)
        monkeypatch.setattr(owner, name, staticmethod(wrapper) if isinstance(raw, staticmethod) else wrapper)
    for c in select("all", include_hidden=False):
        c.func()  # probes run in this process: the wrapped reference answers them
    problems = []
    for region in all_regions(REPO):
        if not calls[region.function]:
            problems.append(f"{region.function}: no public check calls it")
            continue
        module = importlib.import_module(region.path.removesuffix(".py").replace("/", "."))
        owner, name = _owner(module, region.function)
        raw = inspect.getattr_static(owner, name)
        parameters = inspect.signature(raw.__func__ if isinstance(raw, staticmethod) else raw).parameters
        for p in parameters.values():
            if p.default is inspect.Parameter.empty or (region.function, p.name) in UNVARIED:
                continue
            values = {call[p.name] for call in calls[region.function]}
            if len(values) < 2:
                problems.append(f"{region.function}: its option {p.name} only ever takes {values}")
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- the layer matcher

class Functional(nn.Module):
    """Conv, BatchNorm, then a LeakyReLU written as a function in forward."""

    def __init__(self, slope: float = 0.2):
        super().__init__()
        self.conv, self.bn, self.slope = nn.Conv2d(1, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4), slope

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(x)), self.slope)


class Modules(nn.Sequential):
    def __init__(self, slope: float = 0.2, bias: bool = False, padding: int = 1):
        super().__init__(nn.Conv2d(1, 4, 4, 2, padding, bias=bias), nn.BatchNorm2d(4), nn.LeakyReLU(slope, True))


class TwoBranches(nn.Module):
    def __init__(self, swap: bool = False):
        super().__init__()
        self.a, self.b, self.swap = nn.Linear(3, 2), nn.Linear(5, 2), swap
        self.joint = nn.Linear(4, 1)

    def forward(self, x, y):
        h = [F.relu(self.b(y)), F.relu(self.a(x))] if self.swap else [F.relu(self.a(x)), F.relu(self.b(y))]
        return self.joint(torch.cat(h, 1))


EXPECTED = [conv("Conv2d", 1, 4, 4, 2, 1, False), bn(4), lrelu(0.2)]


def _trace(cls, *args, inputs):
    return trace_probe(__name__, cls.__name__, args, {}, inputs, "train", 0)  # the classes of this module


@pytest.mark.parametrize("cls", [Functional, Modules])
def test_activations_may_be_modules_or_functions(cls):
    x = torch.randn(3, 1, 8, 8)
    match(_trace(cls, inputs=[x]), [("x", x, EXPECTED)], None, "net")


@pytest.mark.parametrize("cls, args, words", [
    (Modules, (0.02,), "negative_slope 0.02, expected 0.2"),
    (Functional, (0.02,), "LeakyReLU(negative_slope=0.2)"),
    (Modules, (0.2, True), "bias True, expected False"),
    (Modules, (0.2, False, 0), "padding 0, expected 1"),
])
def test_a_wrong_setting_is_named(cls, args, words):
    x = torch.randn(3, 1, 8, 8)
    with pytest.raises(Mismatch, match=words.replace("(", r"\(").replace(")", r"\)")):
        match(_trace(cls, *args, inputs=[x]), [("x", x, EXPECTED)], None, "net")


@pytest.mark.parametrize("swap", [False, True])
def test_branches_may_run_and_concatenate_in_either_order(swap):
    x, y = torch.randn(4, 3), torch.randn(4, 5)
    branches = [("x", x, [conv_free_linear(3, 2), RELU]), ("y", y, [conv_free_linear(5, 2), RELU])]
    match(_trace(TwoBranches, swap, inputs=[x, y]), branches, [conv_free_linear(4, 1)], "net")
    with pytest.raises(Mismatch, match="expected"):  # a branch that is not there
        match(_trace(TwoBranches, swap, inputs=[x, y]), branches, [conv_free_linear(4, 1), RELU,
                                                                   conv_free_linear(1, 1)], "net")


def conv_free_linear(fin: int, fout: int):
    from grading.layers import linear

    return linear(fin, fout, None)
