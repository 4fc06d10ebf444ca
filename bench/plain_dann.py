"""The plain textbook DANN loop a student would write (the style of the public PyTorch DANN
repositories): torchvision's MNIST through a ``DataLoader`` with per-image transforms,
MNIST-M as a ``Dataset`` of images transformed one by one, a separate forward pass of the
feature extractor for each domain, and a ``.item()`` on every loss at every step. Written
for the benchmark only: the project's own loop is ``tp3c_domain_adaptation.training.fit``."""
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lambd):
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lambd * grad, None


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(32, 48, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(2352, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
                                        nn.Linear(100, 10))
        self.domain = nn.Sequential(nn.Linear(2352, 100), nn.ReLU(), nn.Linear(100, 1))

    def forward(self, x, lambd):
        f = self.features(x).view(x.size(0), -1)
        return self.classifier(f), self.domain(GradReverse.apply(f, lambd)).view(-1)


class ImagesDataset(Dataset):
    """MNIST-M as uint8 (N, 28, 28, 3) arrays, each transformed when it is read."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


def run(data_dir, iterations: int, batch_size: int = 64, lr: float = 0.01) -> dict:
    from common.datasets import load_mnist_m

    torch.manual_seed(0)
    norm = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    mnist = datasets.MNIST(data_dir, train=True, download=False, transform=transforms.Compose(
        [transforms.Grayscale(3), transforms.ToTensor(), norm]))
    target = load_mnist_m(data_dir, "train")
    arrays = (target.images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    mnist_m = ImagesDataset(arrays, target.labels, transforms.Compose([transforms.ToTensor(), norm]))
    source_loader = DataLoader(mnist, batch_size=batch_size, shuffle=True, drop_last=True)
    target_loader = DataLoader(mnist_m, batch_size=batch_size, shuffle=True, drop_last=True)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    start = time.perf_counter()
    it = 0
    for (x_s, y_s), (x_t, _) in zip(source_loader, target_loader):
        p = it / iterations
        lambd = 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0
        for group in opt.param_groups:
            group["lr"] = lr / (1 + 10 * p) ** 0.75
        opt.zero_grad()
        class_s, domain_s = model(x_s, lambd)  # one pass per domain
        _, domain_t = model(x_t, lambd)
        class_loss = F.cross_entropy(class_s, y_s)
        domain_loss = (F.binary_cross_entropy_with_logits(domain_s, torch.zeros_like(domain_s))
                       + F.binary_cross_entropy_with_logits(domain_t, torch.ones_like(domain_t))) / 2
        loss = class_loss + domain_loss
        loss.backward()
        opt.step()
        history = (loss.item(), class_loss.item(), domain_loss.item())  # logged every step
        it += 1
        if it == iterations:
            break
    return {"iterations": it, "seconds": time.perf_counter() - start, "last_losses": history}
