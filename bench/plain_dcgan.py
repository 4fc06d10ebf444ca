"""The plain textbook DCGAN loop a student would write (pytorch/examples style): the
handout's networks (no bias anywhere) with Sigmoid + BCELoss, torchvision transforms in a DataLoader, separate
forward passes, and a ``.item()`` on every loss at every iteration. Written for the
benchmark only: the project's own loop is ``tp3d_gan.training.train``."""
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def networks(nz=100, ngf=32, ndf=32):
    G = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(1, ndf, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def init(m):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    G.apply(init)
    D.apply(init)
    return G, D


def run(data_dir, iterations: int | None = None, epochs: int = 5, batch_size: int = 128, nz: int = 100,
        seed: int = 0) -> dict:
    """Train with the plain loop; return the iterations done, the seconds they took and G."""
    torch.manual_seed(seed)
    tf = transforms.Compose([transforms.Pad(2), transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    loader = DataLoader(datasets.MNIST(data_dir, train=True, transform=tf), batch_size=batch_size,
                        shuffle=True, drop_last=True)
    G, D = networks(nz)
    criterion = nn.BCELoss()
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_G = torch.optim.Adam(G.parameters(), lr=5e-4, betas=(0.5, 0.999))
    done, losses = 0, []
    start = time.perf_counter()
    for _ in range(epochs):
        for real, _ in loader:
            D.zero_grad()
            output = D(real).view(-1)
            err_real = criterion(output, torch.full((batch_size,), 1.0))
            err_real.backward()
            fake = G(torch.randn(batch_size, nz, 1, 1))
            output = D(fake.detach()).view(-1)
            err_fake = criterion(output, torch.full((batch_size,), 0.0))
            err_fake.backward()
            opt_D.step()
            G.zero_grad()
            output = D(fake).view(-1)
            err_G = criterion(output, torch.full((batch_size,), 1.0))
            err_G.backward()
            opt_G.step()
            losses.append((err_real.item() + err_fake.item(), err_G.item()))
            done += 1
            if iterations is not None and done >= iterations:
                return {"iterations": done, "seconds": time.perf_counter() - start, "G": G}
    return {"iterations": done, "seconds": time.perf_counter() - start, "G": G}
