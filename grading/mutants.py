"""Realistic wrong implementations ("mutants") that the checks must catch.

Each mutant patches one reference file (``old`` must occur exactly once) and names the
checks that must fail on it. ``python -m grading selftest`` applies each to a copy of the
reference and runs those checks. Instructor-only: left out of the student release,
since the ``old`` snippets are solution code.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    kills: tuple  # ids of the checks that must fail on this mutant


MUTANTS = [
    # 3-a: parameter counting
    Mutant("counts only trainable parameters", "tp3a_transfer/parameters.py",
           "sum(p.numel() for p in model.parameters())",
           "sum(p.numel() for p in model.parameters() if p.requires_grad)",
           ("tp3a.count_parameters",)),
    Mutant("counts weights but forgets biases", "tp3a_transfer/parameters.py",
           "return sum(count_parameters(m) for m in model.modules() if isinstance(m, nn.Linear))",
           "return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))",
           ("tp3a.count_linear_parameters",)),
    Mutant("table gives the first dimension instead of the size", "tp3a_transfer/parameters.py",
           "(name, tuple(p.shape), p.numel())", "(name, tuple(p.shape), p.shape[0])",
           ("tp3a.parameter_table",)),
    # 3-c: gradient reversal
    Mutant("GRL forgets the minus sign", "tp3c_domain_adaptation/dann.py",
           "return -ctx.lambd * grad_output, None", "return ctx.lambd * grad_output, None",
           ("tp3c.grl_backward", "tp3c.grl_in_network", "tp3c.dann_step_sign")),
    Mutant("GRL ignores lambda", "tp3c_domain_adaptation/dann.py",
           "return -ctx.lambd * grad_output, None", "return -grad_output, None",
           ("tp3c.grl_backward", "tp3c.grl_in_network")),
    Mutant("GRL reverses in the forward pass", "tp3c_domain_adaptation/dann.py",
           "return x.view_as(x)", "return -lambd * x",
           ("tp3c.grl_forward",)),
    Mutant("schedule without the -1", "tp3c_domain_adaptation/dann.py",
           "return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0",
           "return 2.0 / (1.0 + math.exp(-gamma * p))",
           ("tp3c.grl_schedule",)),
    Mutant("schedule ignores gamma", "tp3c_domain_adaptation/dann.py",
           "return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0",
           "return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0",
           ("tp3c.grl_schedule",)),
    Mutant("domain labels swapped (source 1, target 0)", "tp3c_domain_adaptation/dann.py",
           "return torch.cat([torch.zeros(n_source, device=device), torch.ones(n_target, device=device)])",
           "return torch.cat([torch.ones(n_source, device=device), torch.zeros(n_target, device=device)])",
           ("tp3c.losses",)),
    Mutant("domain classifier fed the features without the reversal", "tp3c_domain_adaptation/dann.py",
           "return self.classifier(f), self.domain(grad_reverse(f, lambd))",
           "return self.classifier(f), self.domain(f)",
           ("tp3c.dann_step_sign",)),
    Mutant("feature extractor with 64 channels in its second layer", "tp3c_domain_adaptation/dann.py",
           "nn.Conv2d(32, 48, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),  # (N, 48, 7, 7)\n            nn.Flatten(),",
           "nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),\n            nn.Conv2d(64, 48, 1), nn.Flatten(),",
           ("tp3c.networks",)),
    Mutant("DANN loss without the domain term", "tp3c_domain_adaptation/dann.py",
           "return class_loss + domain_loss, class_loss, domain_loss",
           "return class_loss, class_loss, domain_loss", ("tp3c.losses",)),
    Mutant("class loss also on the target images, with the source batch's labels (target labels "
           "leaked into the loss whenever the batches are paired)", "tp3c_domain_adaptation/dann.py",
           "_, class_loss, domain_loss = dann_loss(class_logits[:n_s], y_s, domain_logits, domains)",
           "_, class_loss, domain_loss = dann_loss(class_logits, y_s.repeat(2), domain_logits, domains)",
           ("tp3c.source_labels_only",)),
    # 3-d: DCGAN
    Mutant("generator keeps the conv biases", "tp3d_gan/dcgan.py",
           "nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False)",
           "nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0)", ("tp3d.architecture",)),
    Mutant("discriminator adds a bias before BatchNorm", "tp3d_gan/dcgan.py",
           "nn.Conv2d(channels, out, 4, 2, 1, bias=False)",
           "nn.Conv2d(channels, out, 4, 2, 1, bias=True)", ("tp3d.architecture",)),
    Mutant("discriminator loss with swapped real/fake targets", "tp3d_gan/dcgan.py",
           "real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))",
           "real = F.binary_cross_entropy_with_logits(real_logits, torch.zeros_like(real_logits))",
           ("tp3d.discriminator_loss",)),
    Mutant("non-saturating loss with the fake target", "tp3d_gan/dcgan.py",
           "return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))",
           "return F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))",
           ("tp3d.generator_loss",)),
    Mutant("minimax loss with the wrong sign", "tp3d_gan/dcgan.py",
           "return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))",
           "return F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))",
           ("tp3d.generator_loss",)),
    Mutant("initialisation with std 0.2", "tp3d_gan/dcgan.py",
           "nn.init.normal_(m.weight, 0.0, 0.02)", "nn.init.normal_(m.weight, 0.0, 0.2)",
           ("tp3d.weights_init",)),
    Mutant("initialisation forgets the transposed convolutions", "tp3d_gan/dcgan.py",
           "if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):", "if isinstance(m, nn.Conv2d):",
           ("tp3d.weights_init",)),
    Mutant("BatchNorm weights around 0", "tp3d_gan/dcgan.py",
           "nn.init.normal_(m.weight, 1.0, 0.02)", "nn.init.normal_(m.weight, 0.0, 0.02)",
           ("tp3d.weights_init",)),
    # 3-d: conditional DCGAN
    Mutant("cGAN generator ignores the label", "tp3d_gan/cdcgan.py",
           "self.y_branch(y_onehot[:, :, None, None])",
           "self.y_branch(torch.zeros_like(y_onehot)[:, :, None, None])",
           ("tp3d.cgan_conditioning",)),
    Mutant("cGAN discriminator ignores the label", "tp3d_gan/cdcgan.py",
           "h = torch.cat([self.x_branch(x), self.y_branch(maps)], dim=1)",
           "h = torch.cat([self.x_branch(x), self.y_branch(torch.zeros_like(maps))], dim=1)",
           ("tp3d.cgan_conditioning",)),
    Mutant("label maps built channels-last and reshaped without a permute", "tp3d_gan/cdcgan.py",
           "return onehot[:, :, None, None].expand(-1, -1, size, size)",
           "return onehot[:, None, None, :].expand(-1, size, size, -1)"
           ".reshape(-1, onehot.shape[1], size, size)",
           ("tp3d.cgan_architecture",)),
    Mutant("cGAN generator with a bias before BatchNorm", "tp3d_gan/cdcgan.py",
           "nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 1, bias=False)",
           "nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 1)", ("tp3d.cgan_architecture",)),
    Mutant("train_step never updates D", "tp3d_gan/dcgan.py",
           "    loss_D.backward()\n    opt_D.step()\n\n    opt_G.zero_grad(set_to_none=True)\n    fake_logits2 = D(fake)",
           "    loss_D.backward()\n\n    opt_G.zero_grad(set_to_none=True)\n    fake_logits2 = D(fake)",
           ("tp3d.short_training",)),
    Mutant("train_step gives D the real and fake batches swapped", "tp3d_gan/dcgan.py",
           "loss_D = discriminator_loss(real_logits, fake_logits)\n    loss_D.backward()\n    opt_D.step()\n\n    opt_G.zero_grad(set_to_none=True)\n    fake_logits2 = D(fake)",
           "loss_D = discriminator_loss(fake_logits, real_logits)\n    loss_D.backward()\n    opt_D.step()\n\n    opt_G.zero_grad(set_to_none=True)\n    fake_logits2 = D(fake)",
           ("tp3d.short_training",)),
]
