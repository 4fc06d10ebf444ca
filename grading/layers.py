"""Architecture checks: a network's layers, their settings and what flows between them.

A probe (:func:`trace_probe`, run where the student's code is) builds the student's
network, runs it once with forward hooks on every leaf module, and returns each call's
type, settings (kernel, stride, padding, bias, slope, ...), input and output, in call
order. In the grader, :func:`match` walks that trace along the expected layers, given as
data (:class:`Op`): each layer with parameters must be there with the expected settings;
each activation, pooling or flattening may be a module (its settings are read) or a
function called in ``forward`` (its effect is checked on the values between the layers);
branches may run in any order and be concatenated either way; nothing unexpected may
happen, before the output either. So a wrong slope, a bias where the handout has none, a
missing activation or padding are each reported at the layer where they occur.
"""
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

PARAMETRIC = ("Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d")
ATOL, RTOL = 1e-5, 1e-4


@dataclass(frozen=True)
class Op:
    """One expected layer. ``kind``: a module type of :data:`PARAMETRIC`, or ``ReLU``,
    ``LeakyReLU``, ``Tanh``, ``Sigmoid``, ``MaxPool2d``, ``Flatten``. ``settings``: what its
    module's attributes must be (``bias``: True, False, or None for either)."""
    kind: str
    settings: dict = field(default_factory=dict)
    optional: bool = False  # may be left out (a layer the handout does not prescribe)

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.settings.items() if v is not None)
        return f"{self.kind}({shown})" + (" (optional)" if self.optional else "")

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """What this parameter-free layer computes, for the values between modules."""
        s = self.settings
        if self.kind == "ReLU":
            return F.relu(x)
        if self.kind == "LeakyReLU":
            return F.leaky_relu(x, s["negative_slope"])
        if self.kind == "Tanh":
            return torch.tanh(x)
        if self.kind == "Sigmoid":
            return torch.sigmoid(x)
        if self.kind == "MaxPool2d":
            return F.max_pool2d(x, s["kernel_size"])
        if self.kind == "Flatten":
            return x.flatten(1)
        raise ValueError(f"{self.kind} has parameters: it is not applied between modules")


def conv(kind: str, cin: int, cout: int, k: int, s: int, p: int, bias) -> Op:
    return Op(kind, {"in_channels": cin, "out_channels": cout, "kernel_size": k, "stride": s,
                     "padding": p, "bias": bias})


def linear(fin: int, fout: int, bias=True) -> Op:
    return Op("Linear", {"in_features": fin, "out_features": fout, "bias": bias})


def bn(c: int) -> Op:
    return Op("BatchNorm2d", {"num_features": c})


def lrelu(slope: float) -> Op:
    return Op("LeakyReLU", {"negative_slope": slope})


RELU, TANH, SIGMOID, FLATTEN = Op("ReLU"), Op("Tanh"), Op("Sigmoid"), Op("Flatten")


# ----------------------------------------------------------------------------- in the student's process

def trace_probe(module_name, class_name, args, kwargs, inputs, mode, seed):
    """Build ``module_name.class_name(*args, **kwargs)`` (seeded), put it in ``mode``
    ("train" or "eval") and run it on ``inputs``; return its leaf modules' calls, its output
    and its number of parameters. A probe: it runs where the student's code is."""
    import importlib

    torch.manual_seed(seed)
    net = getattr(importlib.import_module(module_name), class_name)(*args, **kwargs)
    net.train(mode == "train")
    calls, hooks, names = [], [], {}

    def settings(m):
        found = {}
        for key in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
                    "dilation", "groups", "in_features", "out_features", "num_features", "negative_slope",
                    "eps", "momentum", "p"):
            value = getattr(m, key, None)
            if isinstance(value, tuple):
                value = list(value) if len(set(value)) > 1 else value[0]
            if isinstance(value, (int, float, list)) and not isinstance(value, bool):
                found[key] = value
        if hasattr(m, "weight") and isinstance(getattr(m, "bias", None), (torch.Tensor, type(None))) \
                and type(m).__name__ in ("Conv2d", "ConvTranspose2d", "Linear"):
            found["bias"] = m.bias is not None
        return found

    def before(m, args):
        calls.append({"name": names[m], "type": type(m).__name__, "settings": settings(m),
                      "parameters": sum(p.numel() for p in m.parameters(recurse=False)),
                      "input": args[0].detach().clone() if args and torch.is_tensor(args[0]) else None})

    def after(m, args, out):
        for call in reversed(calls):
            if call["name"] == names[m] and "output" not in call:
                call["output"] = out.detach().clone() if torch.is_tensor(out) else None
                break

    for name, m in net.named_modules():
        if not list(m.children()):
            names[m] = name
            hooks += [m.register_forward_pre_hook(before), m.register_forward_hook(after)]
    try:
        out = net(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return {"calls": calls, "output": out.detach() if torch.is_tensor(out) else None,
            "parameters": sum(p.numel() for p in net.parameters())}


# ----------------------------------------------------------------------------- in the grader

class Mismatch(AssertionError):
    """The traced network differs from the expected layers."""


def _same(a, b) -> bool:
    return a is not None and b is not None and a.shape == b.shape and torch.allclose(a, b, atol=ATOL, rtol=RTOL)


def _shown(call: dict) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in call["settings"].items() if k not in ("eps", "momentum"))
    return f"{call['type']}({shown})" + (f" [{call['name']}]" if call["name"] else "")


class Cursor:
    """Where one branch (a sequence of :class:`Op`) stands while the trace is read."""

    def __init__(self, name: str, ops: list, value: torch.Tensor):
        self.name, self.ops, self.i, self.value, self.last = name, list(ops), 0, value, "its input"

    def done(self) -> bool:
        return all(op.optional or op.kind not in PARAMETRIC for op in self.ops[self.i:])

    def pending(self):
        """The values the next module may receive: after 0, 1, ... parameter-free ops applied
        as functions, up to the next parametric op. ``[(value, ops consumed)]``."""
        out, value = [(self.value, 0)], self.value
        for j in range(self.i, len(self.ops)):
            op = self.ops[j]
            if op.kind in PARAMETRIC:
                break
            try:
                value = op.apply(value)
            except (RuntimeError, ValueError):
                break
            out.append((value, j - self.i + 1))
        return out

    def settings_error(self, op: Op, call: dict) -> str | None:
        for key, want in op.settings.items():
            got = call["settings"].get(key)
            if want is not None and got != want:
                return (f"{self.name}: after {self.last}, expected {op.describe()}, found {_shown(call)} "
                        f"({key} {got}, expected {want})")
        return None

    def try_take(self, call: dict) -> tuple[bool, str | None]:
        """Take ``call`` if it is this branch's next layer: (taken, why not, when close)."""
        for value, skipped in self.pending():
            j = self.i + skipped
            while j < len(self.ops) and self.ops[j].optional and self.ops[j].kind != call["type"]:
                j += 1  # an optional layer left out
            if j >= len(self.ops) or self.ops[j].kind != call["type"]:
                continue
            op = self.ops[j]
            if not _same(call["input"], value):
                continue
            why = self.settings_error(op, call)
            if why:
                return False, why
            if op.kind not in PARAMETRIC and not _same(call["output"], op.apply(call["input"])):
                return False, f"{self.name}: {_shown(call)} does not compute {op.describe()}"
            self.value, self.i, self.last = call["output"], j + 1, _shown(call)
            return True, None
        return False, None

    def finish(self) -> list:
        """The values the branch may end with: its remaining parameter-free ops applied."""
        ends, value = [self.value], self.value
        for op in self.ops[self.i:]:
            if op.kind in PARAMETRIC:
                break
            value = op.apply(value)
            ends = [value] + (ends if op.optional else [])
        return ends


def match(result: dict, branches: list, joint: list | None, what: str) -> None:
    """Check a :func:`trace_probe` result against the expected layers.

    ``branches``: ``[(name, input tensor, ops), ...]``, one for a plain network; ``joint``:
    the ops after the two branches' outputs are concatenated along the channels (None: a
    plain network). Raises :class:`Mismatch` with the first difference found.
    """
    cursors = [Cursor(f"{what}, {name}" if len(branches) > 1 else what, ops, x) for name, x, ops in branches]
    joint_cursor = None
    for call in result["calls"]:
        if call["input"] is None or call.get("output") is None:
            raise Mismatch(f"{what}: layer {_shown(call)} did not get or give a tensor")
        candidates = [joint_cursor] if joint_cursor else [c for c in cursors if c.i < len(c.ops)]
        taken, reasons = False, []
        for c in candidates:
            taken, why = c.try_take(call)
            if taken:
                break
            reasons += [why] if why else []
        if not taken and joint_cursor is None and joint is not None and all(c.done() for c in cursors):
            joint_cursor = _start_joint(cursors, joint, call, what)
            taken, why = joint_cursor.try_take(call)
            reasons += [why] if why else []
        if not taken:
            if reasons:
                raise Mismatch(reasons[0])
            states = "; ".join(f"after {c.last}, expected {_next(c)}" for c in (candidates or cursors))
            raise Mismatch(f"{what}: unexpected layer {_shown(call)}, or it does not receive the previous "
                           f"layer's output ({states}): check the order of the layers, the activations "
                           f"between them, their settings and the padding")
    unfinished = [c for c in cursors if not c.done()]
    if unfinished:
        raise Mismatch("; ".join(f"{c.name}: after {c.last}, expected {_next(c)}, but the network ends there"
                                 for c in unfinished))
    if joint is None:
        last = cursors[0]
    else:
        last = joint_cursor or Cursor(f"{what}, after the concatenation", joint, _concatenations(cursors)[0])
        if not last.done():
            raise Mismatch(f"{last.name}: after {last.last}, expected {_next(last)}, but the network ends there")
    out = result["output"]
    if out is None or not any(e.numel() == out.numel() and torch.allclose(e.reshape(out.shape), out, atol=ATOL,
                                                                          rtol=RTOL) for e in last.finish()):
        tail = [op.describe() for op in last.ops[last.i:]]
        raise Mismatch(f"{what}: the output is not what its last layer gives"
                       + (f" followed by {', '.join(tail)}" if tail else "")
                       + f" (after {last.last}): an operation of forward changes it, or one is missing")


def _next(c: Cursor) -> str:
    rest = [op.describe() for op in c.ops[c.i:]]
    return ", then ".join(rest[:2]) if rest else "the end"


def _concatenations(cursors: list) -> list:
    ends = [c.finish()[0] for c in cursors]
    if len(ends) != 2:
        return [torch.cat(ends, 1)]
    return [torch.cat(ends, 1), torch.cat(ends[::-1], 1)]


def _start_joint(cursors: list, joint: list, call: dict, what: str) -> Cursor:
    """The joint part starts from the branches' outputs concatenated, in either order."""
    for value in _concatenations(cursors):
        c = Cursor(f"{what}, after the concatenation", joint, value)
        if any(_same(call["input"], v) for v, _ in c.pending()):
            return c
    shapes = " and ".join(str(tuple(c.finish()[0].shape)) for c in cursors)
    raise Mismatch(f"{what}: {_shown(call)} does not receive the concatenation of the two branches' "
                   f"outputs ({shapes}) along the channels")


def parameters_of(ops: list) -> int:
    """The number of parameters of the expected layers (a bias left free counts as none)."""
    total = 0
    for op in ops:
        s = op.settings
        if op.kind in ("Conv2d", "ConvTranspose2d"):
            total += (s["in_channels"] * s["out_channels"] * s["kernel_size"] ** 2
                      + (s["out_channels"] if s["bias"] else 0))
        elif op.kind == "Linear":
            total += s["in_features"] * s["out_features"] + (s["out_features"] if s["bias"] else 0)
        elif op.kind == "BatchNorm2d":
            total += 2 * s["num_features"]
    return total


def expected_parameters(ops: list, result: dict) -> int:
    """The parameters the expected layers hold, with the biases the traced network chose
    where the handout leaves them free (call after :func:`match`)."""
    fixed = [Op(o.kind, {**o.settings, "bias": o.settings["bias"] is True}) if "bias" in o.settings else o
             for o in ops]
    free = sum(c["settings"].get("out_channels", c["settings"].get("out_features", 0))
               for c, o in _free_bias_calls(ops, result))
    return parameters_of(fixed) + free


def _free_bias_calls(ops: list, result: dict):
    """The traced calls with a bias whose expected layer leaves the bias free: matched by type
    and settings (other than the bias)."""
    free = [o for o in ops if o.settings.get("bias", False) is None]
    for call in result["calls"]:
        if not call["settings"].get("bias"):
            continue
        for o in free:
            if o.kind == call["type"] and all(call["settings"].get(k) == v for k, v in o.settings.items()
                                              if k != "bias"):
                free.remove(o)
                yield call, o
                break


def check_parameters(result: dict, what: str) -> None:
    """Every parameter of the network belongs to a layer its forward uses."""
    used = sum(call["parameters"] for call in result["calls"])
    if used != result["parameters"]:
        raise Mismatch(f"{what}: {result['parameters']:,} parameters, but the layers its forward calls hold "
                       f"{used:,}: it defines layers it never uses")
