"""Public checks of practical 3-a (transfer learning)."""
import torch.nn as nn

from grading.registry import check, expect_equal

VGG16_TOTAL = 138_357_544
VGG16_FC = 123_642_856  # 102,764,544 + 16,781,312 + 4,097,000


def _vgg16():
    import torchvision

    return torchvision.models.vgg16(weights=None)  # random weights: no file needed


def _small_model_with_frozen_layer() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    for p in model[0].parameters():
        p.requires_grad_(False)  # frozen parameters still count
    return model


@check("tp3a.count_parameters", "count_parameters gives VGG16's 138,357,544 parameters",
       points=2, timeout=60)
def count_total():
    from tp3a_transfer.parameters import count_parameters

    expect_equal(count_parameters(_small_model_with_frozen_layer()), 3 * 4 * 9 + 4 + 144 * 5 + 5,
                 "parameters of Conv2d(3,4,3) (frozen) + Linear(144,5)")
    expect_equal(count_parameters(_vgg16()), VGG16_TOTAL, "parameters of torchvision's vgg16")


@check("tp3a.count_linear_parameters", "count_linear_parameters gives VGG16's FC part, "
       "123,642,856", points=1, timeout=60)
def count_fc():
    from tp3a_transfer.parameters import count_linear_parameters

    expect_equal(count_linear_parameters(_small_model_with_frozen_layer()), 144 * 5 + 5,
                 "fully-connected parameters of Conv2d(3,4,3) + Linear(144,5)")
    expect_equal(count_linear_parameters(_vgg16()), VGG16_FC,
                 "fully-connected parameters of torchvision's vgg16")


@check("tp3a.parameter_table", "parameter_table lists name, shape and size of every tensor",
       points=1, timeout=60)
def table():
    from tp3a_transfer.parameters import parameter_table

    model = _vgg16()
    rows = parameter_table(model)
    expect_equal(len(rows), 32, "number of rows for vgg16 (16 layers x weight and bias)")
    expect_equal(tuple(rows[0]), ("features.0.weight", (64, 3, 3, 3), 1728), "first row")
    expect_equal(tuple(rows[-2]), ("classifier.6.weight", (1000, 4096), 4_096_000),
                 "row of the last layer's weight")
    expect_equal(sum(r[2] for r in rows), VGG16_TOTAL, "sum of the table's sizes")
