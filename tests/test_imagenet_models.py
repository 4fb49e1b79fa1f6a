"""ResNet-18/50 for ImageNet: torchvision weights read from the torch hub cache, and a new head."""
import pytest
import torch

from cifar_lab import models
from cifar_lab.config import TrainConfig
from cifar_lab.errors import DataError, UsageError
from cifar_lab.models.imagenet import WEIGHTS, weights_file


@pytest.fixture
def torch_home(offline_torch_home):
    """A private torch hub cache (tests/conftest.py); downloads fail, as on a machine without internet."""
    return offline_torch_home


def plant(arch: str, version: str, seed: int) -> dict:
    """Save a freshly initialised 1000-class network under the file name torchvision expects."""
    torch.manual_seed(seed)
    state = models.build(arch, num_classes=1000).state_dict()
    path = weights_file(WEIGHTS[arch][version])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_weights_file_is_torchvision_cache_name(torch_home):
    assert weights_file(WEIGHTS["resnet50"]["v1"]) == torch_home / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    assert weights_file(WEIGHTS["resnet50"]["v2"]).name == "resnet50-11ad3fa6.pth"
    assert weights_file(WEIGHTS["resnet18"]["v1"]).name == "resnet18-f37072fd.pth"


def test_planted_resnet18_weights_are_loaded_and_the_head_replaced(torch_home):
    planted = plant("resnet18", "v1", seed=1)
    config = TrainConfig(model="resnet18", num_classes=7, pretrained="v1")
    model = models.build_for(config)
    assert model.pretrained == "v1"
    assert torch.equal(model.conv1.weight, planted["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_mean, planted["layer4.1.bn2.running_mean"])
    assert model.fc.out_features == 7 and model.fc.in_features == 512
    scratch = models.build_for(TrainConfig(model="resnet18", num_classes=7, pretrained="none"))
    assert not torch.equal(scratch.conv1.weight, planted["conv1.weight"])


def test_planted_resnet50_v2_weights_load_for_imagenet100(torch_home):
    planted = plant("resnet50", "v2", seed=2)
    model = models.build("resnet50", num_classes=100, pretrained="v2")
    assert torch.equal(model.layer3[0].conv2.weight, planted["layer3.0.conv2.weight"])
    assert model.fc.out_features == 100
    assert models.count_parameters(model) == 23_712_932  # 23.7M, as the recipe table says


def test_absent_weights_offline_say_which_file_goes_where(torch_home):
    with pytest.raises(DataError) as err:
        models.build_for(TrainConfig(model="resnet50", num_classes=100, pretrained="v1"))
    message = str(err.value)
    expected = torch_home / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    assert "\n" not in message and str(expected) in message
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in message


def test_resnet18_has_no_v2_weights(torch_home):
    with pytest.raises(UsageError, match="v1 only"):
        models.build("resnet18", num_classes=10, pretrained="v2")


def test_imagenet_models_run_at_any_input_size():
    model = models.build("resnet18", num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 5)
