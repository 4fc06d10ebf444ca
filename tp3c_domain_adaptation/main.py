"""Practical 3-c: domain adaptation from MNIST (source, labelled) to MNIST-M (target,
unlabelled) with DANN: a gradient reversal layer between the features and a domain
classifier.

Run from the repository root:
  python tp3c_domain_adaptation/main.py              DANN (the 'dann' command; baseline: 'baseline')
  python tp3c_domain_adaptation/main.py --quick      a smoke run of DANN (--quick all: of every run)
  python tp3c_domain_adaptation/main.py all          every run, the t-SNE figures and the table

Each training run writes runs/NAME/ under --out-dir (metrics.json, curves.png,
model.pt, config.json) and updates summary.md/summary.json/summary.png, the table of MNIST
and MNIST-M test accuracies of every run made so far. The target domain's labels are used
for evaluation only: never in a loss, never to pick a model (the final model is reported).
On a laptop CPU 'dann' takes a quarter of an hour and 'all' an hour and a half; a GPU, used
automatically when there is one, takes minutes.
"""
import sys

from common import cli
from tp3c_domain_adaptation import reports
from tp3c_domain_adaptation.data import load_domains
from tp3c_domain_adaptation.settings import RUNS, SWEEP, AllSettings, DataSettings, TrainSettings, TsneSettings
from tp3c_domain_adaptation.training import fit


def train_runs(s: TrainSettings, names, domains=None) -> dict:
    """Train the runs ``names`` of RUNS one after the other, then update the summary."""
    if domains is None:
        domains = load_domains(s, channels_last=s.channels_last)
    results = {name: fit(s, name, domains) for name in names}
    reports.summarise(s.out_dir)
    return results


def data(s: DataSettings) -> dict:
    return reports.show_domains(load_domains(s), s.out_dir)


def baseline(s: TrainSettings) -> dict:
    return train_runs(s, ["source-only"])


def dann(s: TrainSettings) -> dict:
    return train_runs(s, ["dann"])


def sweep(s: TrainSettings) -> dict:
    return train_runs(s, SWEEP)


def pseudo(s: TrainSettings) -> dict:
    return train_runs(s, ["pseudo", "dann+pseudo"])


def tsne(s: TsneSettings) -> dict:
    return reports.tsne(load_domains(s), s.out_dir, s.device, s.seed, s.tsne_images)


def summary(s: cli.Settings) -> dict:
    return reports.summarise(s.out_dir)


def run_all(s: AllSettings) -> dict:
    domains = load_domains(s, channels_last=s.channels_last)  # the t-SNE reads the same images, in the same layout
    results = train_runs(s, list(RUNS), domains)
    reports.tsne(domains, s.out_dir, s.device, s.seed, s.tsne_images)
    return results


COMMANDS = [  # name, function, help, settings
    ("data", data, "look at both domains: sizes, channel statistics, samples", DataSettings),
    ("baseline", baseline, "train on MNIST only (source-only), test on both domains", TrainSettings),
    ("dann", dann, "train DANN (gradient reversal), test on both domains (the default command)", TrainSettings),
    ("sweep", sweep, "the reversal-factor sweep: no GRL, lambda x0.1, x1, positive factor", TrainSettings),
    ("pseudo", pseudo, "pseudo-labelling alone, and with DANN", TrainSettings),
    ("tsne", tsne, "t-SNE of baseline and DANN features (needs both trained)", TsneSettings),
    ("summary", summary, "rebuild the table of every finished run", cli.Settings),
    ("all", run_all, "every run, then the t-SNE figure and the table", AllSettings),
]


def build_parser():
    parser, sub = cli.make_parser("tp3c_domain_adaptation", __doc__, default_command="dann")
    for name, func, help_text, settings in COMMANDS:
        cli.add_command(sub, name, func, help_text, settings=settings)
    return parser


def main(argv=None) -> int:
    return cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
