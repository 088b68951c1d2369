"""The VAE of Kingma & Welling (2013) in plain PyTorch, each part under the chapter that derives it; Adam, default
init, no weight decay (the paper: Adagrad, small init, a weight prior). Run: python examples/vae.py --latent 3"""
import argparse
import math
import os
import time

import torch
from torch import nn
from torchvision.datasets import MNIST

def load_mnist(root, train):   # grey levels (N, 784); torchvision downloads only files missing from root/MNIST/raw
    return MNIST(root, train=train, download=True).data.reshape(-1, 784).float() / 255

# Chapter 5: the model. tanh MLPs as in the paper (and vae_lib's default); the decoder mirrors the encoder.
def mlp(sizes):
    layers = [layer for n_in, n_out in zip(sizes, sizes[1:]) for layer in (nn.Linear(n_in, n_out), nn.Tanh())]
    return nn.Sequential(*layers[:-1])   # no tanh after the last layer

class VAE(nn.Module):
    def __init__(self, latent, hidden):
        super().__init__()
        self.latent = latent                              # J, the size of z
        self.encoder = mlp([784, *hidden, 2 * latent])    # x -> mu, log_var of q(z|x) = N(mu, diag(exp(log_var)))
        self.decoder = mlp([latent, *hidden[::-1], 784])  # z -> logits of p(x|z) = prod_d Bernoulli(sigmoid(logit_d))

def log_bernoulli(x, logits):   # log p(x|z) summed over pixels; logits, not probabilities: finite at 0 and 1
    return -nn.functional.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)

# Chapter 4: the reparameterization trick, z = mu + sigma * eps with eps ~ N(0, I), so gradients reach mu and
# sigma; and the KL(N(mu, sigma^2) || N(0, I)) in closed form (the paper's Appendix B), summed over latents.
def reparameterize(mu, log_var, eps):
    return mu + torch.exp(0.5 * log_var) * eps

def kl_to_standard_normal(mu, log_var):
    return -0.5 * (1 + log_var - mu ** 2 - log_var.exp()).sum(-1)

# Chapter 3: ELBO = E_q[log p(x|z)] - KL(q(z|x) || p(z)); chapter 4: the paper's estimator B (Eq. 7), one z.
def elbo(model, x, eps):
    """Per-example ELBO (B,) of binary images x (B, 784), with the noise eps (B, J) passed in."""
    mu, log_var = model.encoder(x).chunk(2, dim=-1)
    return log_bernoulli(x, model.decoder(reparameterize(mu, log_var, eps))) - kl_to_standard_normal(mu, log_var)

# Chapter 7: log p(x) ~ log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) with z_k ~ q(z|x), in log space (log-sum-exp).
def log_px(model, x, eps):
    """Per-example importance-sampled log p(x) (B,) of x (B, 784); eps (K, B, J) gives K draws for each."""
    mu, log_var = model.encoder(x).chunk(2, dim=-1)
    z = reparameterize(mu, log_var, eps)                                     # (K, B, J)
    log_p_z = -0.5 * (math.log(2 * math.pi) + z ** 2).sum(-1)                # log N(z; 0, I)
    log_q_z = -0.5 * (math.log(2 * math.pi) + log_var + eps ** 2).sum(-1)    # log N(z; mu, sigma^2)
    log_w = log_bernoulli(x, model.decoder(z)) + log_p_z - log_q_z           # (K, B)
    return torch.logsumexp(log_w, dim=0) - math.log(len(eps))

# Chapter 6: training. Adam ascends the minibatch mean of the ELBO, one line of progress per epoch.
def train(model, train_x, epochs, batch_size, lr, generator):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(1, epochs + 1):
        start, total = time.perf_counter(), 0.0
        for idx in torch.randperm(len(train_x), generator=generator, device=train_x.device).split(batch_size):
            x = torch.bernoulli(train_x[idx], generator=generator)   # dynamic binarization: a fresh draw each time
            bound = elbo(model, x, torch.randn(len(x), model.latent, generator=generator, device=x.device))
            optimizer.zero_grad()
            (-bound.mean()).backward()   # summed over pixels and latents inside elbo; the mean over the batch here
            optimizer.step()
            total += bound.sum().item()
        print(f"epoch {epoch}: train ELBO {total / len(train_x):.2f} ({time.perf_counter() - start:.1f} s)")

@torch.no_grad()
def evaluate(model, test_x, k, generator, batch_size=100):   # mean test ELBO, and log p(x) with K = k draws
    elbos, log_pxs = [], []
    for x in test_x.split(batch_size):
        elbos.append(elbo(model, x, torch.randn(len(x), model.latent, generator=generator, device=x.device)))
        log_pxs.append(log_px(model, x, torch.randn(k, len(x), model.latent, generator=generator, device=x.device)))
    return torch.cat(elbos).mean().item(), torch.cat(log_pxs).mean().item()

def main(argv=None):
    p = argparse.ArgumentParser(description="A VAE on binarized MNIST (Kingma & Welling, 2013).")
    p.add_argument("--latent", type=int, default=3, help="J, the size of z")
    p.add_argument("--hidden", type=int, nargs="+", default=[400], help="hidden widths, e.g. --hidden 256 128")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--k", type=int, default=100, help="importance samples per test image for log p(x)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=os.environ.get("VAE_DATA_DIR", os.path.expanduser("~/.cache/vae_book/data")))
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)                                 # the initial weights
    generator = torch.Generator(device).manual_seed(args.seed)   # minibatch order, binarization, eps
    train_x = load_mnist(args.data, train=True).to(device)
    # the test images are binarized once, with a fixed seed: every model is scored on the same binary images
    test_x = torch.bernoulli(load_mnist(args.data, train=False), generator=torch.Generator().manual_seed(0)).to(device)
    model = VAE(args.latent, args.hidden).to(device)
    train(model, train_x, args.epochs, args.batch_size, args.lr, generator)
    test_elbo, test_log_px = evaluate(model, test_x, args.k, torch.Generator(device).manual_seed(args.seed))
    print(f"test ELBO {test_elbo:.2f}, test log p(x) (K = {args.k}) {test_log_px:.2f}")
    return test_elbo, test_log_px

if __name__ == "__main__":
    main()
