"""One command-line pattern for every ``main.py``.

Each practical builds its parser with :func:`make_parser`, adds one subcommand per
experiment with :func:`add_command`, and hands control to :func:`run`, which parses,
sets up logging, the device, the seed and the output folder, and turns a
:class:`common.errors.UserError` into one clear line instead of a traceback.

A command's settings are a dataclass (a subclass of :class:`Settings`) whose fields,
declared with :func:`option`, are at once its typed values and its command-line options
(``--field-name``). :func:`run` builds it once from the command line and hands it to the
command. One quick mode for all: ``--quick`` replaces the defaults of the fields the class
names in ``QUICK``; an option given on the command line always wins.

The shared flags (``--device``, ``--seed``, ``--data-dir``, ``--out-dir``, ``--quick``)
are accepted before or after the subcommand.
"""
import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

from common.device import DEVICE_CHOICES, PRECISION_CHOICES, check_precision, seed_everything, select_device
from common.errors import UserError

log = logging.getLogger(__name__)

DATA_DIR_ENV = "RDFIA_DATA_DIR"


def default_data_dir() -> Path:
    """``$RDFIA_DATA_DIR`` if set, else ``./data``."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show every default, keep the description's line breaks. A default of None is resolved
    later (the help text says how), so "(default: None)" would only mislead; nor does a
    flag's "(default: False)" say anything."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):  # a flag's default goes without saying
            return action.help
        return super()._get_help_string(action)


def _add_shared(parser: argparse.ArgumentParser, practical: str, suppress: bool) -> None:
    """Add the shared flags; in subcommands their defaults are suppressed so that a flag
    given before the subcommand is not overwritten by the subcommand's default."""

    def d(value):
        return argparse.SUPPRESS if suppress else value

    g = parser.add_argument_group("shared options")
    g.add_argument("--device", choices=DEVICE_CHOICES, default=d("auto"),
                   help="where to compute: auto = CUDA, then Apple MPS, then CPU")
    g.add_argument("--seed", type=int, default=d(0), help="random seed (Python, NumPy, torch)")
    g.add_argument("--data-dir", type=Path, default=d(default_data_dir()),
                   help=f"datasets folder (environment variable {DATA_DIR_ENV}, else ./data)")
    g.add_argument("--out-dir", type=Path, default=d(Path("results") / practical),
                   help="where figures, JSON results and checkpoints are written")
    g.add_argument("--quick", action="store_true", default=d(False),
                   help="smoke run: the command's whole pipeline on a tiny budget (its --help gives the quick "
                        "values; an option given keeps its value)")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, not {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text}")
    return value


def open_unit(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), not {text}")
    return value


_PRECISION_HELP = ("arithmetic of the training/optimisation loop: bf16 = bfloat16 autocast (weights, "
                   "optimizer and losses stay fp32), faster where the hardware computes it natively "
                   "(CUDA GPUs from Ampere on, CPUs with AVX512-BF16 or AMX)")


def option(default: Any = None, help: str = "", *, type=None, choices=None, metavar=None, nargs=None,
           positional: bool = False, group: str | None = None, flag: str | None = None):
    """A field of a :class:`Settings` class that is also a command-line option.

    ``default`` is the setting's value when the option is not given (a list default is
    copied for each instance); ``type``, ``choices``, ``metavar`` and ``nargs`` are
    argparse's. A ``bool`` default of False makes a flag that turns it on. ``positional``:
    an argument without ``--``; ``group``: the title of the help section it is listed in;
    ``flag``: the option's name when it is not the field's name in kebab case.
    """
    cli = dict(help=help, type=type, choices=choices, metavar=metavar, nargs=nargs, positional=positional,
               group=group, flag=flag)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"cli": cli})
    return dataclasses.field(default=default, metadata={"cli": cli})


@dataclasses.dataclass(kw_only=True)
class Settings:
    """What every command receives: the shared options, resolved (``device`` is a
    ``torch.device`` once :func:`run` has chosen it).

    A command's settings class adds its own fields with :func:`option`, and may name in
    ``QUICK`` the defaults that ``--quick`` replaces (field name to its quick value)."""

    QUICK: ClassVar[dict] = {}
    command: str = ""
    device: Any = "auto"
    seed: int = 0
    data_dir: Path = Path("data")
    out_dir: Path = Path("results")
    quick: bool = False

    def replace(self, **changes) -> "Settings":
        """A copy with some fields changed (the settings of one run of an experiment, say)."""
        return dataclasses.replace(self, **changes)

    def derive(self, cls, **changes) -> "Settings":
        """The settings of another command (class ``cls``) as its command line would give them
        with these options: the fields both classes have are copied, the others take ``cls``'s
        defaults, its ``QUICK`` values under ``--quick``; then ``changes``. How an ``all``
        command runs each of the others."""
        mine = {f.name for f in dataclasses.fields(self)}
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(cls) if f.name in mine}
        if self.quick:
            values.update({k: v for k, v in cls.QUICK.items() if k not in mine})
        return cls(**{**values, **changes})

    def options(self) -> dict:
        """Every field by name, for ``config.json``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _own_fields(cls) -> list:
    shared = {f.name for f in dataclasses.fields(Settings)}
    return [f for f in dataclasses.fields(cls) if f.name not in shared and "cli" in f.metadata]


def _field_default(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _add_settings(p: argparse.ArgumentParser, cls) -> None:
    """One option per field of ``cls``; argparse's own default is None, so that :func:`run`
    tells an option given from one left out (and ``--quick`` replaces only the latter)."""
    groups = {}
    for f in _own_fields(cls):
        spec, default = f.metadata["cli"], _field_default(f)
        target = p
        if spec["group"]:
            target = groups.get(spec["group"]) or groups.setdefault(spec["group"], p.add_argument_group(spec["group"]))
        shown = [] if default is None or default == [] or isinstance(default, bool) else [f"default: {_show(default)}"]
        if f.name in cls.QUICK:
            shown.append(f"--quick: {_show(cls.QUICK[f.name])}")
        text = spec["help"] + (f" ({'; '.join(shown)})" if shown else "")
        if spec["positional"]:
            p_kw = {k: spec[k] for k in ("type", "choices", "metavar", "nargs") if spec[k] is not None}
            target.add_argument(f.name, help=text, **p_kw)
            continue
        flag = spec["flag"] or "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            target.add_argument(flag, dest=f.name, action="store_true", default=None, help=text)
            continue
        kw = {k: spec[k] for k in ("type", "choices", "metavar", "nargs") if spec[k] is not None}
        target.add_argument(flag, dest=f.name, default=None, help=text, **kw)


def _show(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_show(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def build_settings(cls, args: argparse.Namespace):
    """The settings of a command from its parsed command line: an option given wins, then
    (with ``--quick``) the class's quick value, then the field's default. The shared
    options come from ``args``; a field that is no option takes its quick value or default."""
    shared = {f.name for f in dataclasses.fields(Settings)}
    values = {}
    for f in dataclasses.fields(cls):
        given = getattr(args, f.name, None) if f.name in shared or "cli" in f.metadata else None
        if given is not None:
            values[f.name] = given
        elif args.quick and f.name in cls.QUICK:
            values[f.name] = cls.QUICK[f.name]
    return cls(**values)


def precision_setting(effect: str = ""):
    """The ``precision`` field of the commands whose loops run under
    :func:`common.device.autocast`; ``effect``: what bf16 changes there, for the help."""
    return option("fp32", _PRECISION_HELP + (f"; {effect}" if effect else ""), choices=PRECISION_CHOICES)


def make_parser(practical: str, description: str, default_command: str | None = None):
    """Return ``(parser, subparsers)`` for a practical's ``main.py``.

    ``default_command`` is the subcommand run when none is given on the command line.
    """
    epilog = None
    if default_command:
        epilog = f"With no subcommand, '{default_command}' runs. 'COMMAND --help' lists its options."
    parser = argparse.ArgumentParser(
        prog=f"python {practical}/main.py", description=description, epilog=epilog,
        formatter_class=_Formatter)
    _add_shared(parser, practical, suppress=False)
    parser.set_defaults(_practical=practical, _default_command=default_command)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="subcommands")
    return parser, sub


def add_command(subparsers, name: str, func, help: str, description: str | None = None, options=(),
                settings=None):
    """Add subcommand ``name``; return its parser.

    With ``settings`` (a :class:`Settings` subclass), its fields are the command's options
    and :func:`run` calls ``func(settings)`` with them built from the command line.
    Without it, ``func(args)`` receives the parsed namespace, and ``options`` are functions
    ``add(parser)`` adding groups of options shared by several subcommands.
    """
    p = subparsers.add_parser(name, help=help, description=description or help,
                              formatter_class=_Formatter)
    _add_shared(p, "", suppress=True)
    p.set_defaults(func=func, _settings=settings)
    if settings is not None:
        _add_settings(p, settings)
    for add in options:
        add(p)
    return p


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse ``argv``, inserting the default subcommand when none is named."""
    argv = list(sys.argv[1:] if argv is None else argv)
    default = parser.get_default("_default_command")
    commands = _command_names(parser)
    if default and not any(a in commands for a in argv) and not {"-h", "--help"} & set(argv):
        argv = [default] + argv
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.error("a subcommand is required")
    return args


def _command_names(parser: argparse.ArgumentParser) -> set:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def setup_logging(verbose: bool = False) -> None:
    """Plain messages on stderr; handlers someone else installed (pytest, a notebook) stay."""
    logging.basicConfig(format="%(message)s")
    logging.getLogger().setLevel(logging.DEBUG if verbose else logging.INFO)


def _close_bars() -> None:
    """Close the progress bars an exception left open, so that its message starts a line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def run(parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse the command line, prepare the run and call the subcommand.

    Returns the exit status: 0 on success, 2 on a :class:`UserError` (one line on
    stderr), 3 when a function of a student file is not written yet (one line too, naming
    it), 130 on Ctrl-C.
    """
    setup_logging()
    try:
        args = parse(parser, argv)
        args.device = select_device(args.device)
        seed_everything(args.seed)
        args.out_dir = Path(args.out_dir)
        cls = getattr(args, "_settings", None)
        run_with = build_settings(cls, args) if cls is not None else args
        precision = ""
        if getattr(run_with, "precision", None) is not None:
            run_with.precision = check_precision(run_with.precision, run_with.device)
            precision = f", precision {run_with.precision}"
        run_with.out_dir.mkdir(parents=True, exist_ok=True)
        log.info("%s: device %s%s, seed %d, output in %s%s", args.command, args.device, precision, args.seed,
                 args.out_dir, " (quick mode)" if args.quick else "")
        args.func(run_with)
    except UserError as e:
        _close_bars()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NotImplementedError as e:  # a student function still holds its stub
        _close_bars()
        practical = parser.get_default("_practical")
        print(f"not implemented yet: {e or 'a function'}: write it between its YOUR CODE markers, then "
              f"check it with: python -m grading check {practical}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
