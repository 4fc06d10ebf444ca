"""The similarity report flags copies and leaves independent work alone: a batch built here
from 3-c's reference ``dann.py`` (two exact copies, a copy with its names changed and its
functions reordered, two solutions written independently of it and of each other, a hand-in
of one copied function only, a hand-in of the stubs only), read as grading reads hand-ins,
with reports that no name can inject into."""
import ast
import csv
import re
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grading.__main__ import main
from grading.release import find_regions, strip_solutions, withheld
from grading.similarity import PAIRS, REPORT, THRESHOLD, similarity
from tests.hostile import write_zip

REPO = Path(__file__).resolve().parents[1]
FILE = "tp3c_domain_adaptation/dann.py"
REFERENCE = (REPO / FILE).read_text()
HOSTILE = '<img src=x onerror="alert(1)">'
HOSTILE_NAME = HOSTILE.replace("/", "_")  # a folder's name
BOB = "=1+bob"  # a formula, for a spreadsheet

# Two students' own solutions, function by function: names, structure, helpers and library
# calls of their own, as two people write the same functions from the same docstrings.
DAVE = {
    "GradientReversalFunction.forward": """
        ctx.strength = lambd
        return x.clone()
    """,
    "GradientReversalFunction.backward": """
        grad_input = grad_output.neg() * ctx.strength
        return grad_input, None
    """,
    "grl_lambda": """
        e = math.exp(-gamma * p)
        return (1 - e) / (1 + e)
    """,
    "FeatureExtractor.__init__": """
        self.conv1 = nn.Conv2d(3, 32, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(32, 48, kernel_size=5, padding=2)
    """,
    "FeatureExtractor.forward": """
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return torch.flatten(h, start_dim=1)
    """,
    "LabelClassifier.__init__": """
        self.fc1 = nn.Linear(n_features, 100)
        self.fc2 = nn.Linear(100, 100)
        self.fc3 = nn.Linear(100, n_classes)
    """,
    "LabelClassifier.forward": """
        h = F.relu(self.fc1(features))
        h = F.relu(self.fc2(h))
        return self.fc3(h)
    """,
    "DomainClassifier.__init__": """
        self.hidden_layer = nn.Linear(n_features, hidden)
        self.out = nn.Linear(hidden, 1)
    """,
    "DomainClassifier.forward": """
        return self.out(F.relu(self.hidden_layer(features))).squeeze(1)
    """,
    "DANN.forward": """
        feats = self.features(x)
        reversed_feats = GradientReversalFunction.apply(feats, lambd)
        return self.classifier(feats), self.domain(reversed_feats)
    """,
    "domain_labels": """
        labels = torch.zeros(n_source + n_target, device=device)
        labels[n_source:] = 1.0
        return labels
    """,
    "dann_loss": """
        lc = nn.CrossEntropyLoss()(class_logits, labels)
        ld = nn.BCEWithLogitsLoss()(domain_logits, domains.float())
        return lc + ld, lc, ld
    """,
    "pseudo_label_loss": """
        with torch.no_grad():
            p = torch.softmax(target_logits, dim=-1)
            best, guess = torch.max(p, dim=-1)
            keep = best >= threshold
        frac = keep.float().mean()
        if keep.any():
            loss = F.cross_entropy(target_logits[keep], guess[keep])
        else:
            loss = target_logits.sum() * 0.0
        return loss, frac
    """,
    "source_only_step": """
        out = model.classifier(model.features(x_s))
        ce = F.cross_entropy(out, y_s)
        optimizer.zero_grad()
        ce.backward()
        optimizer.step()
        acc = (out.argmax(dim=1) == y_s).float().mean()
        return dict(class_loss=ce.detach(), source_acc=acc.detach())
    """,
    "dann_step": """
        feat_s, feat_t = model.features(x_s), model.features(x_t)
        logits_s = model.classifier(feat_s)
        dom = model.domain(grad_reverse(torch.cat((feat_s, feat_t)), lambd))
        target = domain_labels(len(x_s), len(x_t), device=x_s.device)
        ce = F.cross_entropy(logits_s, y_s)
        bce = F.binary_cross_entropy_with_logits(dom, target)
        objective = ce + domain_weight * bce
        pl = pf = torch.tensor(0.0, device=x_s.device)
        if pseudo_alpha > 0:
            pl, pf = pseudo_label_loss(model.classifier(feat_t), threshold)
            objective = objective + pseudo_alpha * pl
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()
        with torch.no_grad():
            dacc = ((dom > 0).float() == target).float().mean()
            sacc = (logits_s.argmax(1) == y_s).float().mean()
        return dict(loss=objective.detach(), class_loss=ce.detach(), domain_loss=bce.detach(),
                    domain_acc=dacc, source_acc=sacc, pseudo_loss=pl.detach(), pseudo_fraction=pf.detach())
    """,
}
ERIN = {
    "GradientReversalFunction.forward": """
        ctx.coeff = float(lambd)
        return x * 1.0
    """,
    "GradientReversalFunction.backward": """
        return grad_output * (-ctx.coeff), None
    """,
    "grl_lambda": """
        return 2.0 * torch.sigmoid(torch.tensor(gamma * p)).item() - 1.0
    """,
    "FeatureExtractor.__init__": """
        layers = []
        for c_in, c_out in [(3, 32), (32, 48)]:
            layers += [nn.Conv2d(c_in, c_out, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2, 2)]
        self.body = nn.Sequential(*layers)
    """,
    "FeatureExtractor.forward": """
        out = self.body(x)
        return out.view(out.size(0), -1)
    """,
    "LabelClassifier.__init__": """
        sizes = [n_features, 100, 100]
        blocks = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            blocks.append(nn.Linear(a, b))
            blocks.append(nn.ReLU())
        blocks.append(nn.Linear(sizes[-1], n_classes))
        self.layers = nn.ModuleList(blocks)
    """,
    "LabelClassifier.forward": """
        for layer in self.layers:
            features = layer(features)
        return features
    """,
    "DomainClassifier.__init__": """
        self.l1 = nn.Linear(n_features, hidden)
        self.act = nn.ReLU()
        self.l2 = nn.Linear(hidden, 1)
    """,
    "DomainClassifier.forward": """
        return self.l2(self.act(self.l1(features)))[:, 0]
    """,
    "DANN.forward": """
        z = self.features(x)
        y = self.classifier(z)
        d = self.domain(GradientReversal()(z, lambd))
        return y, d
    """,
    "domain_labels": """
        return torch.tensor([0.0] * n_source + [1.0] * n_target, device=device)
    """,
    "dann_loss": """
        log_probs = F.log_softmax(class_logits, dim=1)
        cls = F.nll_loss(log_probs, labels)
        dom = F.binary_cross_entropy_with_logits(domain_logits, domains, reduction="mean")
        total = cls + dom
        return total, cls, dom
    """,
    "pseudo_label_loss": """
        conf, cls = F.softmax(target_logits, 1).detach().max(1)
        selected = conf >= threshold
        count = int(selected.sum())
        frac = torch.tensor(count / max(len(target_logits), 1))
        if count == 0:
            return torch.zeros((), device=target_logits.device), frac
        nll = -F.log_softmax(target_logits[selected], 1).gather(1, cls[selected].unsqueeze(1))
        return nll.mean(), frac
    """,
    "source_only_step": """
        logits = model.classifier(model.features(x_s))
        l = nn.functional.cross_entropy(logits, y_s)
        optimizer.zero_grad()
        l.backward()
        optimizer.step()
        correct = (logits.detach().max(1)[1] == y_s).sum().item()
        return {"class_loss": l.detach(), "source_acc": torch.tensor(correct / y_s.numel())}
    """,
    "dann_step": """
        x_all = torch.cat([x_s, x_t])
        n = x_s.size(0)
        y_hat, d_hat = model(x_all, lambd)
        d_true = domain_labels(n, x_t.size(0), x_all.device)
        _, l_cls, l_dom = dann_loss(y_hat[:n], y_s, d_hat, d_true)
        total = l_cls + domain_weight * l_dom
        zero = torch.zeros((), device=x_all.device)
        l_pl, f_pl = (pseudo_label_loss(y_hat[n:], threshold) if pseudo_alpha > 0 else (zero, zero))
        total = total + pseudo_alpha * l_pl
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        y_pred = y_hat[:n].detach().argmax(dim=1)
        d_pred = (d_hat.detach() > 0).float()
        out = {"loss": total, "class_loss": l_cls, "domain_loss": l_dom, "pseudo_loss": l_pl,
               "pseudo_fraction": f_pl}
        out = {k: v.detach() for k, v in out.items()}
        out["domain_acc"] = (d_pred == d_true).float().mean()
        out["source_acc"] = (y_pred == y_s).float().mean()
        return out
    """,
}
# The copy's new names: its own locals, as one renames another's code to hide it.
RENAMED = {"f": "feat", "class_loss": "ce_term", "domain_loss": "adv_term", "probs": "p_soft",
           "confidence": "conf", "pseudo": "plabels", "mask": "keep", "per_image": "each", "logits": "scores",
           "n_s": "ns", "domains": "dom_y", "fraction": "frac", "loss": "objective"}


def written(bodies: dict) -> str:
    """The reference with each solution region's body replaced by ``bodies[function]``."""
    lines = REFERENCE.splitlines()
    regions = find_regions(REFERENCE, FILE)
    assert {r.function for r in regions} == set(bodies)
    for r in reversed(regions):
        indent = re.match(r"\s*", lines[r.start - 1]).group(0)
        body = textwrap.indent(textwrap.dedent(bodies[r.function]).strip("\n"), indent).splitlines()
        lines[r.start:r.end - 1] = body
    text = "\n".join(lines) + "\n"
    compile(text, FILE, "exec")
    return text


def disguised() -> str:
    """The reference with its locals renamed and its top-level definitions in another order."""
    text = REFERENCE
    for old, new in RENAMED.items():
        text = re.sub(rf"(?<![\w.\"']){old}\b(?![\"'])", new, text)
    tree = ast.parse(text)
    lines = text.splitlines()
    first = tree.body[0].end_lineno  # the docstring
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    blocks = [n for n in tree.body[1:] if n not in imports]
    chunks = ["\n".join(lines[(n.decorator_list[0].lineno if getattr(n, "decorator_list", None) else n.lineno) - 1:
                              n.end_lineno]) for n in blocks]
    order = chunks[::-1]  # every function and class in the reverse order (no name is used at import)
    head = "\n".join(lines[:imports[-1].end_lineno])
    assert first < imports[-1].end_lineno
    out = head + "\n\n\n" + "\n\n\n".join(order) + "\n"
    compile(out, FILE, "exec")
    return out


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """alice and bob (named as a formula): the reference; carol: the disguised copy, in a zip;
    dave and erin: their own solutions; frank: the stubs only; hal: the reference's dann_step
    alone; a name made of markup: the reference, and markup in a comment; gina: a link, refused."""
    subs = tmp_path_factory.mktemp("subs")
    hal = REFERENCE
    for function in {r.function for r in find_regions(REFERENCE, FILE)} - {"dann_step"}:
        hal = strip_solutions(hal, FILE, only=function)
    for name, text in (("alice", REFERENCE), (BOB, REFERENCE), ("dave", written(DAVE)),
                       ("erin", written(ERIN)), ("frank", strip_solutions(REFERENCE, FILE)), ("hal", hal)):
        (subs / name / FILE).parent.mkdir(parents=True)
        (subs / name / FILE).write_text(text)
    write_zip(subs / "carol.zip", [(f"handin/{FILE}", disguised().encode(), 0o100644)])
    hostile = subs / HOSTILE_NAME
    hostile.mkdir()
    (hostile / "dann.py").write_text(REFERENCE + f"\n# </code></pre>{HOSTILE}<script>alert(2)</script>\n")
    (subs / "gina").mkdir()
    (subs / "gina" / "dann.py").symlink_to(REPO / FILE)
    return subs


@pytest.fixture(scope="module")
def result(batch, tmp_path_factory):
    out = tmp_path_factory.mktemp("similarity")
    return similarity(batch, out, "tp3c"), out


def read_pairs(out: Path) -> dict:
    """``{(a, b): (a to b, b to a, score)}`` from pairs.csv, each pair both ways round."""
    with open(out / PAIRS, newline="") as f:
        found = {}
        for r in csv.DictReader(f):
            a_to_b, b_to_a, score = (float(r[k]) for k in ("similarity_a_to_b", "similarity_b_to_a", "score"))
            found[r["student_a"], r["student_b"]] = (a_to_b, b_to_a, score)
            found[r["student_b"], r["student_a"]] = (b_to_a, a_to_b, score)
    return found


def test_copies_are_flagged_and_independent_work_is_not(result):
    summary, out = result
    found = read_pairs(out)

    def score(a, b):
        return found.get((a, b), (0.0, 0.0, 0.0))[2]  # a pair left out of pairs.csv has nothing in common

    for a, b in (("alice", "'" + BOB), ("alice", HOSTILE_NAME)):
        assert score(a, b) > 0.99, (a, b)
    for a in ("alice", "'" + BOB):
        assert score(a, "carol") >= THRESHOLD + 0.2, a  # the margins the instructor's guide gives
    for a in ("alice", "carol", "dave", "erin"):
        for b in ("dave", "erin"):
            if a != b:
                assert 0 < score(a, b) < THRESHOLD - 0.2, (a, b)
    # hal's code is all in alice's, but is a small part of hers: listed, one-sided, not flagged
    assert found["hal", "alice"][0] > 0.99 and found["hal", "alice"][1] < 0.3 and score("hal", "alice") < THRESHOLD
    assert not any("frank" in pair for pair in found), "the stubs alone must look like nobody"
    assert summary["students"] == 8 and summary["pairs"] == 28 and summary["listed"] == 28 - 7
    assert summary["flagged"] == summary["shown"] == 6  # alice, bob, carol and the hostile name: each pair of them
    assert any(n.startswith("gina: dann.py") and "symbolic link" in n for n in summary["notes"]), summary["notes"]


def test_pairs_csv_is_sorted_and_safe(result):
    _, out = result
    with open(out / PAIRS, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["student_a", "student_b", "file", "similarity_a_to_b", "similarity_b_to_a", "score",
                       "threshold"]
    values = [float(r[5]) for r in rows[1:]]
    assert values == sorted(values, reverse=True) and values[0] > 0.99
    assert all(r[2] == FILE and float(r[6]) == THRESHOLD for r in rows[1:])
    assert all(min(float(r[3]), float(r[4])) <= float(r[5]) <= max(float(r[3]), float(r[4])) for r in rows[1:])
    names = {r[0] for r in rows[1:]} | {r[1] for r in rows[1:]}
    assert HOSTILE_NAME in names and "'" + BOB in names and BOB not in names  # text cells, never formulas


class Tags(HTMLParser):
    """The tags of a page that load or run something: (tag, its src), and any event handler."""

    def __init__(self):
        super().__init__()
        self.found, self.handlers = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("img", "script", "iframe", "object", "embed"):
            self.found.append((tag, attrs.get("src") or ""))
        self.handlers += [name for name in attrs if name.startswith("on")]


def test_the_html_report_shows_code_and_names_as_text(result):
    _, out = result
    html = (out / REPORT).read_text()
    assert "alice/" + FILE in html and "carol/" + FILE in html
    tags = Tags()
    tags.feed(html)
    assert [src for tag, src in tags.found if tag == "img" and not src.startswith("data:image/png;base64")] == []
    assert [src for tag, src in tags.found if tag == "script" and "bootstrap" not in src] == []  # copydetect's own
    assert not tags.handlers and HOSTILE not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html  # the hostile comment, shown as text
    assert "rdfia-similarity-" not in html  # no temporary path


def test_the_command_prints_one_line_and_refuses_bad_input(batch, tmp_path, capsys):
    assert main(["similarity", str(batch), "--out", str(tmp_path / "o"), "--practical", "3c",
                 "--threshold", "0.9"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "8 students, 28 pairs compared, 3 at or above 0.9" in lines[0], lines
    assert (tmp_path / "o" / REPORT).is_file() and (tmp_path / "o" / PAIRS).is_file()
    for bad in (["--threshold", "0"], ["--threshold", "1.5"]):
        with pytest.raises(SystemExit):
            main(["similarity", str(batch), "--out", str(tmp_path / "p"), *bad])
    (tmp_path / "one" / "alice").mkdir(parents=True)
    (tmp_path / "one" / "alice" / "dann.py").write_text(REFERENCE)
    assert main(["similarity", str(tmp_path / "one"), "--out", str(tmp_path / "q")]) == 2
    assert "fewer than two" in capsys.readouterr().err


def test_the_student_release_leaves_it_out():
    assert withheld("grading/similarity.py")
