"""The model zoo: every registry model trains (forward and backward) for 10 and 100 classes, NaiveNet has the
seed's size and pieces, and the ImageNet designs keep a 4x4 map for 32-pixel inputs."""
import pytest
import torch

from cifar_lab import models
from cifar_lab.models.naivenet import ResidualBlock, SqueezeExcite


@pytest.mark.parametrize("classes", [10, 100])
@pytest.mark.parametrize("name", models.names())
def test_every_model_runs_forward_and_backward_on_cpu(name, classes):
    torch.manual_seed(0)
    model = models.build(name, num_classes=classes).train()
    size = models.spec(name).input_size
    images = torch.randn(2, 3, size, size)
    logits = model(images)
    assert logits.shape == (2, classes)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, classes - 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_naivenet_is_within_five_percent_of_the_seed_size():
    params = models.count_parameters(models.build("naivenet", num_classes=100))
    assert params == 321_018
    assert abs(params - 320_464) / 320_464 < 0.05


def test_naivenet_uses_se_residual_and_depthwise_separable_blocks():
    model = models.build("naivenet", num_classes=100)
    assert models.spec("naivenet").input_size == 128
    se = next(m for m in model.modules() if isinstance(m, SqueezeExcite))
    squeeze, _, excite, gate = se.fc
    assert squeeze.out_channels == squeeze.in_channels // 4 and excite.out_channels == squeeze.in_channels
    assert isinstance(gate, torch.nn.Sigmoid)
    assert sum(isinstance(m, ResidualBlock) for m in model.modules()) >= 6
    depthwise = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise)


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0"])
def test_imagenet_designs_downsample_32px_inputs_only_to_4x4(name):
    model = models.build(name, num_classes=10).eval()
    with torch.no_grad():
        assert model.features(torch.zeros(1, 3, 32, 32)).shape[-2:] == (4, 4)
