"""The denoising networks (they know nothing about diffusion): shapes, sizes, conditioning."""

import pytest
import torch

from genmodels.nets.denoiser_mlp import DenoiserMLP, fourier_features
from genmodels.nets.embeddings import sinusoidal_embedding
from genmodels.nets.unet import SelfAttention, UNet


@pytest.mark.parametrize("size,channels,mults,attn", [(28, 1, (1, 2, 2), (7,)), (32, 3, (1, 2, 2, 2), (8,)),
                                                      (8, 1, (1, 2), (4,)), (28, 3, (1, 2, 2, 2), (4,))])
def test_unet_handles_mnist_cifar_and_tiny_sizes(size, channels, mults, attn):
    net = UNet(in_channels=channels, channels=8, channel_mults=mults, num_res_blocks=1, attention_resolutions=attn,
               image_size=size, num_classes=3)
    assert any(isinstance(m, SelfAttention) for m in net.down.modules())
    x = torch.randn(2, channels, size, size)
    out = net(x, torch.tensor([3, 900]), torch.tensor([1, -1]))
    assert out.shape == x.shape
    out.square().mean().backward()   # trainable end to end
    assert net.stem.weight.grad is not None


def test_unet_output_depends_on_time_and_label_after_training_a_step():
    torch.manual_seed(0)  # test-only: initial weights
    net = UNet(in_channels=1, channels=8, channel_mults=(1, 2), attention_resolutions=(4,), image_size=8, num_classes=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(4, 1, 8, 8)
    for _ in range(2):
        opt.zero_grad()
        (net(x, torch.tensor([1, 2, 3, 4]), torch.tensor([0, 1, 0, 1])) - x).square().mean().backward()
        opt.step()
    net.eval()
    a = net(x, 5.0, torch.tensor([0, 0, 0, 0]))
    assert not torch.allclose(a, net(x, 500.0, torch.tensor([0, 0, 0, 0])))
    assert not torch.allclose(a, net(x, 5.0, torch.tensor([1, 1, 1, 1])))
    assert torch.allclose(net(x, 5.0, None), net(x, 5.0, torch.full((4,), -1)))  # None = the null label


def test_sinusoidal_embedding():
    e = sinusoidal_embedding(torch.tensor([0.0, 10.0]), 8)
    assert e.shape == (2, 8)
    assert torch.allclose(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    assert torch.allclose(e[1, 0], torch.cos(torch.tensor(10.0)))
    assert torch.allclose(e[1, 4], torch.sin(torch.tensor(10.0)))
    assert sinusoidal_embedding(3, 5, batch=4).shape == (4, 5)


def test_mlp_denoiser():
    net = DenoiserMLP(dim=3, width=32, depth=2, num_classes=4)
    out = net(torch.randn(5, 3), torch.arange(5), torch.tensor([0, 1, 2, 3, -1]))
    assert out.shape == (5, 3)


def test_fourier_features():
    x = torch.tensor([[0.5, -0.25]])
    f = fourier_features(x, 3)
    assert f.shape == (1, 2 * 7)
    assert torch.allclose(f[0, :2], x[0])
    assert torch.allclose(f[0, 2:8], torch.sin(torch.tensor([0.5, 1.0, 2.0, -0.25, -0.5, -1.0]) * torch.pi), atol=1e-6)
    assert torch.equal(fourier_features(x, 0), x)
    assert DenoiserMLP(dim=2, width=16, depth=1, octaves=4)(torch.randn(3, 2), 7).shape == (3, 2)
