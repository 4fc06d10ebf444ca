"""Training and evaluation: one run of :data:`~tp3c_domain_adaptation.settings.RUNS` with
the student's step functions, the clipped SGD, the test evaluations and the collapse
detector.

The DANN recipe reads top to bottom in :func:`fit`: the schedules of the step (learning
rate, the GRL's lambda, the pseudo-label weight), a source batch and an unlabelled target
batch, the student's step, then the clipped SGD update.
"""
import logging
from pathlib import Path

import torch
from tqdm.auto import tqdm

from common.device import seed_everything
from common.errors import UserError
from common.loop import History, StepTimer, batches_per_epoch, due
from common.results import save_config, save_json
from tp3c_domain_adaptation.dann import (DANN, dann_lr, dann_step, grl_lambda, pseudo_label_weight,
                                         source_only_step)
from tp3c_domain_adaptation.data import Domains
from tp3c_domain_adaptation.figures import plot_run
from tp3c_domain_adaptation.settings import RUNS, TrainSettings

log = logging.getLogger("tp3c_domain_adaptation")

# what each step reports, one value per step in metrics.json's "history"
HISTORY = ("class_loss", "domain_loss", "domain_acc", "source_acc", "pseudo_loss", "pseudo_fraction", "grad_norm")


class ClippedSGD(torch.optim.SGD):
    """SGD that, when ``max_norm`` is set, first clips the global gradient norm to that value.
    :meth:`step` returns the norm before clipping (a 0-d tensor)."""

    def __init__(self, params, max_norm: float | None = None, **kw):
        super().__init__(params, **kw)
        self.max_norm = max_norm

    def step(self, closure=None) -> torch.Tensor:
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if self.max_norm:
            torch.nn.utils.clip_grads_with_norm_(params, self.max_norm, norm)
        super().step(closure)
        return norm


class DeferredStep:
    """The optimizer the student's step function is handed: ``zero_grad`` clears the
    gradients, ``step`` only leaves the update to :func:`train_step`, which makes it once the
    function has returned, so that the gradient norm comes back as a value. The student's
    functions return losses computed before their ``step()``: deferring it changes none."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None) -> None:
        pass


def train_step(mode: str, model: DANN, opt: ClippedSGD, x_s: torch.Tensor, y_s: torch.Tensor,
               x_t: torch.Tensor | None, lambd: float, alpha: float, threshold: float) -> dict:
    """One step of a run in ``mode`` (see RUNS): the student's step function computes the
    losses and the gradients, then the clipped SGD update is made; returns the function's
    values and ``grad_norm``, the gradient norm before clipping."""
    deferred = DeferredStep(opt)
    if mode == "source":
        stats = source_only_step(model, deferred, x_s, y_s)
    else:  # pseudo: pseudo-labels and no domain loss
        stats = dann_step(model, deferred, x_s, y_s, x_t, lambd, pseudo_alpha=alpha, threshold=threshold,
                          domain_weight=0.0 if mode == "pseudo" else 1.0)
    return {**stats, "grad_norm": opt.step()}


def fit(s: TrainSettings, name: str, domains: Domains) -> dict:
    """Train run ``name`` of RUNS with the settings ``s`` and write its outputs under
    ``runs/NAME``: metrics.json, model.pt, curves.png, config.json. Returns the metrics."""
    spec, out = RUNS[name], s.out_dir / "runs" / name
    seed_everything(s.seed)  # every run starts from the same weights and batch order
    model = DANN(domain_hidden=s.domain_hidden).to(s.device, memory_format=domains.memory_format)
    opt = ClippedSGD(model.parameters(), max_norm=s.clip, lr=s.lr, momentum=s.momentum)
    steps = batches_per_epoch(len(domains.source), s.batch_size, "source images")  # one pass over the source
    total = s.epochs * steps
    eval_every = max(1, steps // s.evals_per_epoch)
    save_config(s, out, run=name, spec=spec, iterations=total, data=domains.describe())

    history, schedule = History(HISTORY, device=s.device), {"lambda": [], "lr": [], "alpha": []}
    evals, timer, it = [], StepTimer(), 0
    bar = tqdm(total=total, desc=name, unit="it")
    for _ in range(s.epochs):
        order_s = torch.randperm(len(domains.source))
        order_t = torch.randperm(len(domains.target))
        for b in range(steps):
            with timer:
                p = it / total  # training progress, 0 to 1
                lr = dann_lr(p, s.lr)
                for group in opt.param_groups:
                    group["lr"] = lr
                lambd = spec.get("factor", 0.0) * s.lambda_max * grl_lambda(p, s.gamma)
                alpha = pseudo_label_weight(p) if spec["mode"] == "pseudo" or spec.get("pseudo") else 0.0
                idx_s = order_s[b * s.batch_size:(b + 1) * s.batch_size]
                idx_t = order_t[(b * s.batch_size + torch.arange(s.batch_size)) % len(order_t)]
                x_s, y_s = domains.batch(domains.source.images[idx_s]), domains.source.labels[idx_s].to(s.device)
                # the target batch comes without its labels (the baseline does not use it)
                x_t = None if spec["mode"] == "source" else domains.batch(domains.target.images[idx_t], "target")
                stats = train_step(spec["mode"], model, opt, x_s, y_s, x_t, lambd, alpha, s.threshold)
            history.add(stats)
            for k, v in (("lambda", lambd), ("lr", lr), ("alpha", alpha)):
                schedule[k].append(v)
            it += 1
            bar.update()
            if due(it, eval_every, total):
                evals.append({"iteration": it, "epoch": it / steps, **eval_both(model, domains, s.eval_images)})
                show_evaluation(name, evals, bar, lambd)
    bar.close()
    final = eval_both(model, domains)  # the whole test sets
    metrics = run_metrics(s, name, domains, final, evals, timer, total)
    metrics.update(history=history.stacked(), schedule=schedule)
    save_run(metrics, model, s.domain_hidden, domains, out, steps)
    return metrics


def show_evaluation(name: str, evals: list, bar, lambd: float) -> None:
    """The latest evaluation on the progress bar, and a warning at the first collapse."""
    result = evals[-1]
    if collapsed(result) and not any(collapsed(e) for e in evals[:-1]):
        log.warning("%s collapsed at iteration %d (epoch %.1f): one class predicted for "
                    "over 90%% of the images", name, result["iteration"], result["epoch"])
    bar.set_postfix(mnist=f"{result['source']['accuracy']:.3f}", mnist_m=f"{result['target']['accuracy']:.3f}",
                    domain=f"{result['domain_accuracy']:.2f}", lam=f"{lambd:.2f}")


def run_metrics(s: TrainSettings, name: str, domains: Domains, final: dict, evals: list, timer: StepTimer,
                total: int) -> dict:
    """What metrics.json holds of a run, but its per-step history and schedules."""
    spec = RUNS[name]
    return {"run": name, "about": spec["about"], "epochs": s.epochs, "iterations": total,
            "seed": s.seed, "target_source": domains.target.source,
            "mnist_accuracy": final["source"]["accuracy"],
            "mnist_m_accuracy": final["target"]["accuracy"],
            # the baseline never trains its domain classifier: its accuracy means nothing
            "domain_accuracy": None if spec["mode"] == "source" else final["domain_accuracy"],
            "collapsed": collapsed(final),
            "collapsed_at_iteration": next((e["iteration"] for e in evals if collapsed(e)), None),
            "final": final, "seconds": round(timer.seconds, 1), "ms_per_iteration": round(timer.ms_per_step, 1),
            "evals": evals}


def save_run(metrics: dict, model: DANN, domain_hidden: int, domains: Domains, out: Path, steps: int) -> None:
    """metrics.json, model.pt and curves.png of a run (``steps``: iterations per epoch)."""
    save_json(metrics, out / "metrics.json")
    torch.save({"state_dict": model.state_dict(), "domain_hidden": domain_hidden,
                "normalise": domains.normalise, "mean": domains.stats[0], "std": domains.stats[1]}, out / "model.pt")
    plot_run(metrics, out / "curves.png", steps)
    log.info("%s: MNIST %.4f, MNIST-M %.4f, domain classifier %.3f on the test sets; %d iterations "
             "in %.0f s (%.1f ms/it)%s; wrote %s", metrics["run"], metrics["mnist_accuracy"],
             metrics["mnist_m_accuracy"], metrics["final"]["domain_accuracy"], metrics["iterations"],
             metrics["seconds"], metrics["ms_per_iteration"], " -- COLLAPSED" if metrics["collapsed"] else "", out)


def load_model(path: Path, device: torch.device, name: str) -> DANN:
    """The model a run saved in ``path``, on ``device``, in evaluation mode."""
    if not path.is_file():
        raise UserError(f"no trained '{name}' model at {path}: train it first with "
                        f"'python tp3c_domain_adaptation/main.py "
                        f"{'baseline' if name == 'source-only' else name}' (same --out-dir)")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = DANN(domain_hidden=saved["domain_hidden"])
    model.load_state_dict(saved["state_dict"])
    return model.to(device).eval()


# ----------------------------------------------------------------------------- evaluation

@torch.inference_mode()
def evaluate(model: DANN, domains: Domains, images: torch.Tensor, labels: torch.Tensor, domain: str,
             batch: int = 256) -> dict:
    """Label accuracy, the domain classifier's outputs, the share of the most predicted class
    and the share of features that are zero for every image (dead units), in batches of 256
    (faster than larger ones on a CPU)."""
    model.eval()
    correct, target_votes, counts, alive = 0, 0, torch.zeros(10), None
    for i in range(0, len(images), batch):
        f = model.features(domains.batch(images[i:i + batch], domain))  # (B, 2352)
        pred = model.classifier(f).argmax(1).cpu()
        correct += int((pred == labels[i:i + batch]).sum())
        target_votes += int((model.domain(f) > 0).sum())
        counts += torch.bincount(pred, minlength=10).float()
        nonzero = (f != 0).any(0).cpu()
        alive = nonzero if alive is None else alive | nonzero
    model.train()
    n = len(images)
    return {"accuracy": correct / n, "said_target": target_votes / n,
            "top_class_share": float(counts.max()) / n, "dead_features": 1 - float(alive.float().mean())}


def collapsed(result: dict) -> bool:
    """A collapsed model predicts (almost) one class for every image of a domain."""
    return max(result["source"]["top_class_share"], result["target"]["top_class_share"]) > 0.9


def eval_both(model: DANN, domains: Domains, n: int | None = None) -> dict:
    """Accuracies on the first ``n`` (None = all) test images of each domain; the domain
    classifier's accuracy on their union (source should read 0, target 1)."""
    s = evaluate(model, domains, domains.source_test.images[:n], domains.source_test.labels[:n], "source")
    t = evaluate(model, domains, domains.target_test.images[:n], domains.target_test.labels[:n], "target")
    ns, nt = min(n or 10**9, len(domains.source_test)), min(n or 10**9, len(domains.target_test))
    domain_acc = ((1 - s["said_target"]) * ns + t["said_target"] * nt) / (ns + nt)
    return {"source": s, "target": t, "domain_accuracy": domain_acc}
