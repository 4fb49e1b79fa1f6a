"""Knowledge distillation recipes (Hinton, Vinyals, Dean 2015): a trained CIFAR-10 ResNet-18
(`cifar10-resnet18`) teaches MobileNetV3-Small adapted to 32 px (`mobilenetv3_small_cifar`, about 1.5 M
parameters and 3 % of the teacher's FLOPs per image).

The student trains with the teacher's recipe (SGD 0.1, cosine, 200 epochs, crop and flip); T = 4 and
alpha = 0.9 are common choices for CIFAR students. The teacher is given at run time:
`--set distill.teacher=RUN/best.pt`.
"""
from .cifar10 import PRESETS as CIFAR10

PRESETS = {
    "cifar10-distill-mobilenetv3": dict(
        CIFAR10["cifar10-resnet18"], model="mobilenetv3_small_cifar",
        distill={"enabled": True, "temperature": 4.0, "alpha": 0.9},
    ),
}
