"""Saving a run's numbers and its resolved configuration as JSON beside its figures."""
import dataclasses
import json
import logging
import platform
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


def _to_jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.device):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return _to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and obj != obj:  # NaN is not valid JSON
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if callable(obj):
        return getattr(obj, "__name__", repr(obj))
    return repr(obj)


def markdown_table(header: list[str], rows: list[list], left: int = 1) -> str:
    """A Markdown table: the first ``left`` columns aligned left, the others (numbers) right."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def save_json(obj, path) -> Path:
    """Write ``obj`` (dicts, lists, numbers, tensors, arrays, paths) as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_to_jsonable(obj), indent=2) + "\n")
    return path


def load_json(path):
    return json.loads(Path(path).read_text())


def run_config(args, **extra) -> dict:
    """The resolved configuration of a run (its settings, a namespace or a dict): every
    option, plus versions and the machine."""
    if dataclasses.is_dataclass(args):
        options = {f.name: getattr(args, f.name) for f in dataclasses.fields(args)}
    else:
        options = vars(args) if isinstance(args, Namespace) else dict(args)
    options = {k: v for k, v in options.items() if not k.startswith("_") and k != "func"}
    return {
        "options": _to_jsonable(options),
        **_to_jsonable(extra),
        "command_line": sys.argv,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__},
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
    }


def save_config(args, out_dir, **extra) -> Path:
    """Write ``config.json`` (see :func:`run_config`) into ``out_dir``."""
    return save_json(run_config(args, **extra), Path(out_dir) / "config.json")
