"""Teaching demonstrations.

Why a classifier can't generate: maximise p(class | x) over the input x by gradient ascent. The
classifier only learned a boundary between classes, not where the data lives, so the optimum is
an input it labels with near certainty that looks nothing like the class (images: structured
noise; 2-D: a point that runs away from the data while its label stays "correct"). A generator
is trained to land on the data itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data.toy2d import ring_mixture


def invert_image_classifier(extractor, target: int, steps: int = 200, lr: float = 0.05, seed: int = 0) -> dict:
    """Gradient ascent on log p(target | x) from uniform noise, x kept in [-1, 1] (B = 1)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(1, *extractor.spec.input_shape, generator=g) * 2 - 1).requires_grad_(True)
    net = extractor.net.eval()
    with torch.no_grad():
        start = float(F.softmax(net(x), 1)[0, target])
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        loss = -F.log_softmax(net(x.clamp(-1, 1)), 1)[0, target]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    image = x.detach().clamp(-1, 1)
    with torch.no_grad():
        probs = F.softmax(net(image), 1)[0]
    return {"image": image, "target": target, "start_prob": start, "final_prob": float(probs[target]),
            "steps": steps}


def invert_2d_classifier(steps: int = 300, lr: float = 0.05, seed: int = 0) -> dict:
    """Train an MLP to tell the 8 ring modes apart, then push a point from a mode's centre towards
    certainty for its own class: it leaves the data (radius 1) and keeps going."""
    torch.manual_seed(seed)
    mix = ring_mixture()
    x, y = mix.sample(8000, torch.Generator().manual_seed(seed))
    clf = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
    opt = torch.optim.Adam(clf.parameters(), lr=1e-2)
    for _ in range(300):
        loss = F.cross_entropy(clf(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    accuracy = float((clf(x).argmax(1) == y).float().mean())
    point = mix.means[:1].clone().requires_grad_(True)  # the centre of mode 0, at (1, 0)
    popt = torch.optim.Adam([point], lr=lr)
    path = [point.detach().clone()]
    for _ in range(steps):
        loss = -F.log_softmax(clf(point), 1)[0, 0]
        popt.zero_grad(set_to_none=True)
        loss.backward()
        popt.step()
        path.append(point.detach().clone())
    path = torch.cat(path)
    with torch.no_grad():
        final_prob = float(F.softmax(clf(path[-1:]), 1)[0, 0])
        start_prob = float(F.softmax(clf(path[:1]), 1)[0, 0])
    return {"data": x, "path": path, "classifier_accuracy": accuracy, "start_prob": start_prob,
            "final_prob": final_prob, "start_radius": float(path[0].norm()), "final_radius": float(path[-1].norm()),
            "distance_from_data": float(torch.cdist(path[-1:], mix.means).min())}


def plot_inversion(image_result: dict, toy_result: dict, path, gan_sample: torch.Tensor | None = None):
    """One figure: the inverted image, a GAN sample of the class (if given), the 2-D path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if gan_sample is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 4))
    k = image_result["target"]
    axes[0].imshow(image_result["image"][0, 0].numpy(), cmap="gray", vmin=-1, vmax=1)
    axes[0].set_title(f"classifier inversion: p({k}) = {image_result['final_prob']:.3f}")
    if gan_sample is not None:
        axes[1].imshow(gan_sample[0, 0].numpy(), cmap="gray", vmin=-1, vmax=1)
        axes[1].set_title(f"GAN sample of class {k}")
    for ax in axes[: panels - 1]:
        ax.axis("off")
    ax = axes[-1]
    data, trail = toy_result["data"].numpy(), toy_result["path"].numpy()
    ax.scatter(data[:, 0], data[:, 1], s=2, alpha=0.4, label="data (8 classes)")
    ax.plot(trail[:, 0], trail[:, 1], "r.-", ms=2, label="point maximising p(class 0)")
    ax.set_title(f"2-D: p(class 0) {toy_result['start_prob']:.2f} -> {toy_result['final_prob']:.3f}, "
                 f"radius {toy_result['final_radius']:.1f}", fontsize=9)
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
