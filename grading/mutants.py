"""Realistic wrong implementations ("mutants") that the checks must catch, and accepted
variants (other correct ways, the handouts' among them) that they must let pass.

Each edits one reference file (each ``old`` must occur exactly once). A mutant names the
checks that must fail on it; a variant must pass every check of its practical. ``python -m
grading selftest`` applies each to a copy of the reference and runs those checks. The
catalogue covers the classes of mistakes the checks are built for: a function left
unwritten (the selftest stubs each in turn), an option ignored, a module left in the wrong
mode, a layer with the wrong settings (activation, slope, bias, padding, normalisation), a
step that skips part of its update. Instructor-only: left out of the student release, since
the ``old`` snippets are solution code.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    kills: tuple  # ids of the checks that must fail on this mutant


@dataclass(frozen=True)
class Variant:
    name: str
    path: str
    edits: tuple  # ((old, new), ...)


A, B, C, D, DC = ("tp3a_transfer/parameters.py", "tp3a_transfer/features.py", "tp3b_visualization/visualization.py",
                  "tp3c_domain_adaptation/dann.py", "tp3d_gan/dcgan.py")
CD = "tp3d_gan/cdcgan.py"

MUTANTS = [
    # 3-a: parameter counting
    Mutant("counts only trainable parameters", A, "sum(p.numel() for p in model.parameters())",
           "sum(p.numel() for p in model.parameters() if p.requires_grad)", ("tp3a.count_parameters",)),
    Mutant("counts weights but forgets biases", A,
           "return sum(count_parameters(m) for m in model.modules() if isinstance(m, nn.Linear))",
           "return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))",
           ("tp3a.count_linear_parameters",)),
    Mutant("table gives the first dimension instead of the size", A, "(name, tuple(p.shape), p.numel())",
           "(name, tuple(p.shape), p.shape[0])", ("tp3a.parameter_table",)),
    # 3-a: features and SVM
    Mutant("relu7 cut before its ReLU", B, 'head = {"relu6": 2, "relu7": 5, "fc8": 7}[layer]',
           'head = {"relu6": 2, "relu7": 4, "fc8": 7}[layer]', ("tp3a.cut_vgg16",)),
    Mutant("pool cut before the max-pool", B, "parts = [vgg.features[:VGG16_POOLS[layer] + 1], nn.Flatten()]",
           "parts = [vgg.features[:VGG16_POOLS[layer]], nn.Flatten()]", ("tp3a.cut_vgg16",)),
    Mutant("cut left in train mode (dropout active in relu6, relu7, fc8)", B,
           "return nn.Sequential(*parts).eval()", "return nn.Sequential(*parts)", ("tp3a.cut_vgg16",)),
    Mutant("features without L2 normalisation", B, "rows.append(torch.nn.functional.normalize(out, dim=1).cpu())",
           "rows.append(out.cpu())", ("tp3a.extract_features",)),
    Mutant("features extracted in train mode", B, "    model.eval()\n    rows, labels = [], []",
           "    rows, labels = [], []", ("tp3a.extract_features",)),
    Mutant("preprocessing without the normalisation", B,
           "to_rgb, transforms.ToTensor(), transforms.Normalize(mean, std)])", "to_rgb, transforms.ToTensor()])",
           ("tp3a.scene_transform",)),
    Mutant("preprocessing normalises with ImageNet's statistics whatever mean and std say", B,
           "transforms.Normalize(mean, std)])", "transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])",
           ("tp3a.scene_transform",)),
    Mutant("preprocessing ignores size", B, "[transforms.Resize((size, size))]", "[transforms.Resize((224, 224))]",
           ("tp3a.scene_transform",)),
    Mutant("grey image kept on one channel", B, "return transforms.Compose([*resize, to_rgb,",
           "return transforms.Compose([*resize,", ("tp3a.scene_transform",)),
    Mutant("crop option ignored", B, "resize = [transforms.Resize(size), transforms.CenterCrop(size)] if crop else",
           "resize = [transforms.Resize((size, size))] if crop else", ("tp3a.scene_transform",)),
    Mutant("train_svm ignores C", B, "return LinearSVC(C=C, random_state=seed).fit(features, labels)",
           "return LinearSVC(random_state=seed).fit(features, labels)", ("tp3a.svm",)),
    Mutant("train_svm ignores the seed", B, "return LinearSVC(C=C, random_state=seed).fit(features, labels)",
           "return LinearSVC(C=C).fit(features, labels)", ("tp3a.svm",)),
    Mutant("accuracy refits the SVM on the test set", B, "return float(np.mean(svm.predict(features) == labels))",
           "return float(np.mean(svm.fit(features, labels).predict(features) == labels))", ("tp3a.svm",)),
    Mutant("C chosen on the training-set fit", B,
           "scores = [float(cross_val_score(LinearSVC(C=C, random_state=seed), features, labels, cv=split).mean())",
           "scores = [float(LinearSVC(C=C, random_state=seed).fit(features, labels).score(features, labels))",
           ("tp3a.choose_C",)),
    Mutant("choose_C ignores the number of folds", B, "StratifiedKFold(n_splits=folds,", "StratifiedKFold(n_splits=5,",
           ("tp3a.choose_C",)),
    Mutant("choose_C without shuffled folds (ignores the seed)", B,
           "StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)", "StratifiedKFold(n_splits=folds)",
           ("tp3a.choose_C",)),
    # 3-b: saliency, fooling, class visualization
    Mutant("saliency without the absolute value", C, "saliency = grad.abs().amax(dim=1)", "saliency = grad.amax(dim=1)",
           ("tp3b.saliency_shape", "tp3b.saliency_values")),
    Mutant("saliency averages the channels instead of taking their maximum", C,
           "saliency = grad.abs().amax(dim=1)", "saliency = grad.abs().mean(dim=1)", ("tp3b.saliency_values",)),
    Mutant("saliency keeps the three channels", C, "saliency = grad.abs().amax(dim=1)", "saliency = grad.abs()",
           ("tp3b.saliency_shape", "tp3b.saliency_values")),
    Mutant("saliency of the softmax probability instead of the logit", C,
           "scores = model(X).gather(1, y.view(-1, 1)).squeeze(1)",
           "scores = model(X).softmax(1).gather(1, y.view(-1, 1)).squeeze(1)", ("tp3b.saliency_values",)),
    Mutant("fooling with the unnormalised gradient", C,
           "X_fooling = (X_fooling + learning_rate * g / g.norm()).detach()",
           "X_fooling = (X_fooling + learning_rate * g).detach()", ("tp3b.fooling_step",)),
    Mutant("fooling descends the target score", C,
           "X_fooling = (X_fooling + learning_rate * g / g.norm()).detach()",
           "X_fooling = (X_fooling - learning_rate * g / g.norm()).detach()",
           ("tp3b.fooling_flips", "tp3b.fooling_step")),
    Mutant("fooling spends the whole budget", C, "if scores.argmax(1).item() == target_y or iterations == max_iter:",
           "if iterations == max_iter:", ("tp3b.fooling_flips",)),
    Mutant("fooling ignores its budget", C, "if scores.argmax(1).item() == target_y or iterations == max_iter:",
           "if scores.argmax(1).item() == target_y or iterations == 1000:",
           ("tp3b.fooling_flips", "tp3b.fooling_step")),
    Mutant("class visualization: L2 term with the wrong sign", C,
           "objective = model(x)[0, target_y] - l2_reg * x.pow(2).sum()",
           "objective = model(x)[0, target_y] + l2_reg * x.pow(2).sum()", ("tp3b.classviz_step",)),
    Mutant("class visualization: normalised gradient", C, "img.add_(learning_rate * grad)",
           "img.add_(learning_rate * grad / grad.norm())", ("tp3b.classviz_step",)),
    Mutant("class visualization ignores the learning rate", C, "img.add_(learning_rate * grad)", "img.add_(grad)",
           ("tp3b.classviz_step",)),
    # 3-c: gradient reversal, networks, losses, steps
    Mutant("GRL forgets the minus sign", D, "return -ctx.lambd * grad_output, None",
           "return ctx.lambd * grad_output, None",
           ("tp3c.grl_backward", "tp3c.grl_in_network", "tp3c.dann_step_sign", "tp3c.short_training")),
    Mutant("GRL ignores lambda", D, "return -ctx.lambd * grad_output, None", "return -grad_output, None",
           ("tp3c.grl_backward", "tp3c.grl_in_network")),
    Mutant("GRL reverses in the forward pass", D, "return x.view_as(x)", "return -lambd * x", ("tp3c.grl_forward",)),
    Mutant("schedule without the -1", D, "return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0",
           "return 2.0 / (1.0 + math.exp(-gamma * p))", ("tp3c.grl_schedule",)),
    Mutant("schedule ignores gamma", D, "return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0",
           "return 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0", ("tp3c.grl_schedule",)),
    Mutant("domain labels swapped (source 1, target 0)", D,
           "return torch.cat([torch.zeros(n_source, device=device), torch.ones(n_target, device=device)])",
           "return torch.cat([torch.ones(n_source, device=device), torch.zeros(n_target, device=device)])",
           ("tp3c.losses", "tp3c.short_training")),
    Mutant("domain labels ignore the device", D,
           "return torch.cat([torch.zeros(n_source, device=device), torch.ones(n_target, device=device)])",
           "return torch.cat([torch.zeros(n_source), torch.ones(n_target)])", ("tp3c.losses",)),
    Mutant("domain classifier fed the features without the reversal", D,
           "return self.classifier(f), self.domain(grad_reverse(f, lambd))",
           "return self.classifier(f), self.domain(f)",
           ("tp3c.dann_forward", "tp3c.dann_step_sign", "tp3c.short_training")),
    Mutant("the label classifier's branch reversed too", D,
           "return self.classifier(f), self.domain(grad_reverse(f, lambd))",
           "f = grad_reverse(f, lambd)\n        return self.classifier(f), self.domain(f)", ("tp3c.dann_forward",)),
    Mutant("feature extractor with 64 channels in its second layer", D,
           "nn.Conv2d(32, 48, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),  # (N, 48, 7, 7)\n"
           "            nn.Flatten(),",
           "nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),\n"
           "            nn.Conv2d(64, 48, 1), nn.Flatten(),",
           ("tp3c.networks",)),
    Mutant("feature extractor without padding", D, "nn.Conv2d(3, 32, 5, padding=2)", "nn.Conv2d(3, 32, 5)",
           ("tp3c.networks",)),
    Mutant("feature extractor with average pooling", D,
           "nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),",
           "nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(True), nn.AvgPool2d(2),", ("tp3c.networks",)),
    Mutant("label classifier without its second ReLU", D,
           "nn.Linear(100, 100), nn.ReLU(True), nn.Linear(100, n_classes)",
           "nn.Linear(100, 100), nn.Linear(100, n_classes)",
           ("tp3c.networks",)),
    Mutant("label classifier ignores n_classes", D, "nn.Linear(100, n_classes)", "nn.Linear(100, 10)",
           ("tp3c.networks",)),
    Mutant("domain classifier ignores hidden", D,
           "nn.Linear(n_features, hidden), nn.ReLU(True), nn.Linear(hidden, 1)",
           "nn.Linear(n_features, 100), nn.ReLU(True), nn.Linear(100, 1)", ("tp3c.networks",)),
    Mutant("DANN loss without the domain term", D, "return class_loss + domain_loss, class_loss, domain_loss",
           "return class_loss, class_loss, domain_loss", ("tp3c.losses",)),
    Mutant("class loss also on the target images, with the source batch's labels (target labels "
           "leaked into the loss whenever the batches are paired)", D,
           "_, class_loss, domain_loss = dann_loss(class_logits[:n_s], y_s, domain_logits, domains)",
           "_, class_loss, domain_loss = dann_loss(class_logits, y_s.repeat(2), domain_logits, domains)",
           ("tp3c.source_labels_only", "tp3c.dann_step", "tp3c.short_training")),
    Mutant("source_only_step never calls optimizer.step()", D,
           '    loss.backward()\n    optimizer.step()\n    return {"class_loss"',
           '    loss.backward()\n    return {"class_loss"',
           ("tp3c.source_only_step",)),
    Mutant("source_only_step without zero_grad", D,
           "    optimizer.zero_grad(set_to_none=True)\n    logits = model.classifier(model.features(x_s))",
           "    logits = model.classifier(model.features(x_s))", ("tp3c.source_only_step",)),
    Mutant("source_only_step evaluates in eval mode and stays there", D,
           "    optimizer.zero_grad(set_to_none=True)\n    logits = model.classifier(model.features(x_s))",
           "    model.eval()\n    optimizer.zero_grad(set_to_none=True)\n"
           "    logits = model.classifier(model.features(x_s))",
           ("tp3c.source_only_step",)),
    Mutant("dann_step ignores domain_weight", D, "loss = class_loss + domain_weight * domain_loss",
           "loss = class_loss + domain_loss", ("tp3c.dann_step",)),
    Mutant("dann_step ignores the pseudo-label threshold", D,
           "pseudo_loss, fraction = pseudo_label_loss(class_logits[n_s:], threshold)",
           "pseudo_loss, fraction = pseudo_label_loss(class_logits[n_s:])", ("tp3c.dann_step",)),
    Mutant("dann_step ignores pseudo_alpha", D, "loss = loss + pseudo_alpha * pseudo_loss", "loss = loss + pseudo_loss",
           ("tp3c.dann_step",)),
    Mutant("pseudo-label loss without its confidence mask", D,
           "loss = (per_image * mask).sum() / mask.sum().clamp(min=1.0)", "loss = per_image.mean()",
           ("tp3c.pseudo_label_loss", "tp3c.dann_step")),
    Mutant("pseudo-label loss ignores the threshold", D, "mask = (confidence >= threshold).float()",
           "mask = (confidence >= 0.9).float()", ("tp3c.pseudo_label_loss",)),
    Mutant("pseudo-label loss averaged over every image", D,
           "loss = (per_image * mask).sum() / mask.sum().clamp(min=1.0)", "loss = (per_image * mask).mean()",
           ("tp3c.pseudo_label_loss",)),
    # 3-d: DCGAN
    Mutant("generator keeps the conv biases", DC, "nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False)",
           "nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0)", ("tp3d.generator",)),
    Mutant("generator's last layer with a bias", DC, "nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()",
           "nn.ConvTranspose2d(ngf, nc, 4, 2, 1), nn.Tanh()", ("tp3d.generator",)),
    Mutant("generator ignores nc", DC, "nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False)",
           "nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False)", ("tp3d.generator",)),
    Mutant("generator without its Tanh", DC, "nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]",
           "nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False)]", ("tp3d.generator",)),
    Mutant("discriminator adds a bias before BatchNorm", DC, "nn.Conv2d(channels, out, 4, 2, 1, bias=False)",
           "nn.Conv2d(channels, out, 4, 2, 1, bias=True)", ("tp3d.discriminator",)),
    Mutant("discriminator's last layer with a bias", DC, "nn.Conv2d(channels, 1, 4, 1, 0, bias=False)",
           "nn.Conv2d(channels, 1, 4, 1, 0)", ("tp3d.discriminator",)),
    Mutant("discriminator's LeakyReLU with slope 0.02", DC, "nn.LeakyReLU(0.2, True)]\n            channels, size",
           "nn.LeakyReLU(0.02, True)]\n            channels, size", ("tp3d.discriminator",)),
    Mutant("discriminator with ReLU instead of LeakyReLU", DC, "nn.LeakyReLU(0.2, True)]\n            channels, size",
           "nn.ReLU(True)]\n            channels, size", ("tp3d.discriminator",)),
    Mutant("discriminator without BatchNorm", DC, "nn.Conv2d(channels, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out),",
           "nn.Conv2d(channels, out, 4, 2, 1, bias=False),", ("tp3d.discriminator",)),
    Mutant("discriminator ends with a Sigmoid while D_OUTPUT says logits", DC,
           '        if D_OUTPUT == "probabilities":\n            layers.append(nn.Sigmoid())',
           "        layers.append(nn.Sigmoid())", ("tp3d.discriminator",)),
    Mutant("discriminator loss with swapped real/fake targets", DC,
           "real = F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out))",
           "real = F.binary_cross_entropy_with_logits(real_out, torch.zeros_like(real_out))",
           ("tp3d.discriminator_loss", "tp3d.train_step")),
    Mutant("non-saturating loss with the fake target", DC,
           "    if loss == \"non-saturating\":\n"
           "        return F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))",
           "    if loss == \"non-saturating\":\n"
           "        return F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))",
           ("tp3d.generator_loss",)),
    Mutant("minimax loss with the wrong sign", DC,
           "    return -F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))",
           "    return F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))",
           ("tp3d.generator_loss",)),
    Mutant("initialisation with std 0.2", DC, "nn.init.normal_(m.weight, 0.0, 0.02)",
           "nn.init.normal_(m.weight, 0.0, 0.2)",
           ("tp3d.weights_init",)),
    Mutant("initialisation forgets the transposed convolutions", DC,
           "if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):", "if isinstance(m, nn.Conv2d):",
           ("tp3d.weights_init",)),
    Mutant("BatchNorm weights around 0", DC, "nn.init.normal_(m.weight, 1.0, 0.02)",
           "nn.init.normal_(m.weight, 0.0, 0.02)",
           ("tp3d.weights_init",)),
    Mutant("noise ignores the generator", DC, "return torch.randn(n, nz, 1, 1, device=device, generator=generator)",
           "return torch.randn(n, nz, 1, 1, device=device)", ("tp3d.sample_noise",)),
    Mutant("uniform noise in [-1, 1]", DC, "return torch.randn(n, nz, 1, 1, device=device, generator=generator)",
           "return torch.rand(n, nz, 1, 1, device=device, generator=generator) * 2 - 1", ("tp3d.sample_noise",)),
    Mutant("train_step never updates D", DC,
           "    loss_D.backward()\n    opt_D.step()\n\n    opt_G.zero_grad(set_to_none=True)\n    fake_out2 = D(fake)",
           "    loss_D.backward()\n\n    opt_G.zero_grad(set_to_none=True)\n    fake_out2 = D(fake)",
           ("tp3d.short_training", "tp3d.train_step")),
    Mutant("train_step gives D the real and fake batches swapped", DC,
           "loss_D = discriminator_loss(real_out, fake_out)\n    loss_D.backward()\n    opt_D.step()\n\n"
           "    opt_G.zero_grad(set_to_none=True)\n    fake_out2 = D(fake)",
           "loss_D = discriminator_loss(fake_out, real_out)\n    loss_D.backward()\n    opt_D.step()\n\n"
           "    opt_G.zero_grad(set_to_none=True)\n    fake_out2 = D(fake)",
           ("tp3d.short_training", "tp3d.train_step")),
    Mutant("train_step ignores the loss option", DC, "    loss_G = generator_loss(fake_out2, loss)",
           "    loss_G = generator_loss(fake_out2)", ("tp3d.train_step",)),
    Mutant("train_step leaves G in eval mode (to draw its samples)", DC,
           "    z = sample_noise(real.shape[0], nz, device=real.device)\n    fake = G(z)",
           "    z = sample_noise(real.shape[0], nz, device=real.device)\n    G.eval()\n    fake = G(z)",
           ("tp3d.train_step",)),
    Mutant("train_step forgets G's zero_grad", DC,
           "    opt_G.zero_grad(set_to_none=True)\n    fake_out2 = D(fake)  # D after",
           "    fake_out2 = D(fake)  # D after", ("tp3d.train_step",)),
    # 3-d: conditional DCGAN
    Mutant("one_hot ignores n_classes", CD, "return F.one_hot(y, n_classes).float()", "return F.one_hot(y, 10).float()",
           ("tp3d.cgan_labels",)),
    Mutant("expand_labels ignores size", CD, "expand(-1, -1, size, size)", "expand(-1, -1, 32, 32)",
           ("tp3d.cgan_labels",)),
    Mutant("label maps built channels-last and reshaped without a permute", CD,
           "return onehot[:, :, None, None].expand(-1, -1, size, size)",
           "return onehot[:, None, None, :].expand(-1, size, size, -1).reshape(-1, onehot.shape[1], size, size)",
           ("tp3d.cgan_labels", "tp3d.cgan_discriminator")),
    Mutant("cGAN generator ignores the label", CD, "self.y_branch(y_onehot[:, :, None, None])",
           "self.y_branch(torch.zeros_like(y_onehot)[:, :, None, None])", ("tp3d.cgan_generator",)),
    Mutant("cGAN generator ignores n_classes", CD, "nn.ConvTranspose2d(n_classes, 4 * w, 4, 1, 0, bias=False)",
           "nn.ConvTranspose2d(10, 4 * w, 4, 1, 0, bias=False)", ("tp3d.cgan_generator",)),
    Mutant("cGAN generator with a bias before BatchNorm", CD, "nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 1, bias=False)",
           "nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 1)", ("tp3d.cgan_generator",)),
    Mutant("cGAN discriminator ignores the label", CD, "h = torch.cat([self.x_branch(x), self.y_branch(maps)], dim=1)",
           "h = torch.cat([self.x_branch(x), self.y_branch(torch.zeros_like(maps))], dim=1)",
           ("tp3d.cgan_discriminator",)),
    Mutant("cGAN discriminator's label branch without its LeakyReLU", CD,
           "self.y_branch = nn.Sequential(nn.Conv2d(n_classes, w, 4, 2, 1), nn.LeakyReLU(0.2, True))",
           "self.y_branch = nn.Sequential(nn.Conv2d(n_classes, w, 4, 2, 1))", ("tp3d.cgan_discriminator",)),
    Mutant("cgan_train_step judges the generated images with the real labels", CD,
           "fake_out = D(fake.detach(), y_fake)", "fake_out = D(fake.detach(), y_real)", ("tp3d.cgan_train_step",)),
]

VARIANTS = [
    Variant("the handout's discriminator: a Sigmoid, probabilities and BCE", DC,
            (('D_OUTPUT = "logits"', 'D_OUTPUT = "probabilities"'),)),
    Variant("the handout's cDCGAN taken literally: no Tanh after the generator, no biases where it says none", CD,
            (("nn.ConvTranspose2d(2 * w, 1, 4, 2, 1), nn.Tanh(),",
              "nn.ConvTranspose2d(2 * w, 1, 4, 2, 1, bias=False),"),
             ("nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU", "nn.Conv2d(1, w, 4, 2, 1, bias=False), nn.LeakyReLU"),
             ("nn.Conv2d(8 * w, 1, 4, 1, 0),", "nn.Conv2d(8 * w, 1, 4, 1, 0, bias=False),"))),
    Variant("the feature extractor with activations and pooling as functions in forward", D,
            (("""        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),  # (N, 32, 14, 14)
            nn.Conv2d(32, 48, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),  # (N, 48, 7, 7)
            nn.Flatten(),  # (N, 2352)
        )""", """        self.conv1 = nn.Conv2d(3, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 48, 5, padding=2)"""),
             ("        return self.net(x)\n", """        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return x.view(x.size(0), -1)
"""))),
]
