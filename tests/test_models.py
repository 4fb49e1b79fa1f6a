"""Model registry: the parameter counts the seeds quote, shapes, and clear errors for unknown names."""
import pytest
import torch

from cifar_lab import models
from cifar_lab.errors import UsageError


@pytest.mark.parametrize("name, classes, params", [
    ("simple_cnn", 10, 620_362),
    ("resnet18_cifar", 10, 11_173_962),
    ("resnet18_cifar", 100, 11_220_132),
])
def test_parameter_counts(name, classes, params):
    assert models.count_parameters(models.build(name, num_classes=classes)) == params


def test_resnet18_cifar_keeps_32px_resolution_in_the_stem():
    model = models.build("resnet18_cifar")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    features = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1)
    assert features(torch.zeros(1, 3, 32, 32)).shape == (1, 64, 32, 32)


@pytest.mark.parametrize("name", ["simple_cnn", "resnet18_cifar", "resnet34_cifar"])
def test_forward_shape(name):
    model = models.build(name, num_classes=7).eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_unknown_model_lists_the_choices():
    with pytest.raises(UsageError, match="choose one of: .*resnet18_cifar"):
        models.build("resnet_9000")
