"""ImageNet class names: the option type that reads them, and their short forms in titles."""
import argparse

from common.pretrained import imagenet_categories


def class_index(text: str) -> int:
    """An ImageNet class from its index ("76") or its name ("tarantula", "wine bottle")."""
    names = imagenet_categories()
    if text.strip().isdigit():
        index = int(text)
        if not 0 <= index < len(names):
            raise argparse.ArgumentTypeError(f"ImageNet class indices go from 0 to {len(names) - 1}, not {index}")
        return index
    key = text.strip().lower()
    exact = [i for i, n in enumerate(names) if n.lower() == key]
    if exact:
        return exact[0]
    partial = [i for i, n in enumerate(names) if key in n.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise argparse.ArgumentTypeError(f"no ImageNet class is called {text!r}; give a name "
                                         f"such as 'tarantula' or an index from 0 to 999")
    listed = ", ".join(f"{i} {names[i]!r}" for i in partial[:8])
    raise argparse.ArgumentTypeError(f"{text!r} matches several ImageNet classes ({listed}"
                                     f"{', ...' if len(partial) > 8 else ''}): give the full name or the index")


def short(name: str, n: int = 18) -> str:
    """``name`` cut to ``n`` characters for a figure title."""
    return name if len(name) <= n else name[:n - 1] + "…"


def fmt(value, spec: str) -> str:
    """``value`` formatted with ``spec`` ("{:.2f}"), or "-" when there is none."""
    return "-" if value is None else spec.format(value)
