"""Reference networks of the two published tasks (plain ``nn.Module``s, ready for ``searchable``)."""

from __future__ import annotations

from torch import nn

__all__ = ["jet_mlp", "calo_cnn"]


def jet_mlp(n_features: int = 16, hidden: tuple[int, ...] = (64, 32, 32), n_classes: int = 5) -> nn.Sequential:
    """hls4ml's jet-tagging MLP, 16-64-32-32-5 with ReLU (modules named fc1, relu1, ..., out)."""
    layers: list[tuple[str, nn.Module]] = []
    width = n_features
    for i, h in enumerate(hidden, 1):
        layers += [(f"fc{i}", nn.Linear(width, h)), (f"relu{i}", nn.ReLU())]
        width = h
    layers.append(("out", nn.Linear(width, n_classes)))
    from collections import OrderedDict

    return nn.Sequential(OrderedDict(layers))


class CaloCNN(nn.Module):
    """Conv2d regression CNN for calorimeter showers: (layers, eta, phi) -> energy."""

    def __init__(self, in_channels: int = 5, filters: tuple[int, ...] = (64, 128, 256),
                 grid: int = 32, dense: int = 352):
        super().__init__()
        chans = [in_channels, *filters]
        self.features = nn.Sequential()
        size = grid
        for i in range(len(filters)):
            self.features.add_module(f"conv{i + 1}", nn.Conv2d(chans[i], chans[i + 1], 3, padding=1))
            self.features.add_module(f"relu{i + 1}", nn.ReLU())
            self.features.add_module(f"pool{i + 1}", nn.MaxPool2d(2))
            size //= 2
        self.fc1 = nn.Linear(filters[-1] * size * size, dense)
        self.relu_fc = nn.ReLU()
        self.out = nn.Linear(dense, 1)

    def forward(self, x):
        x = self.features(x).flatten(1)
        return self.out(self.relu_fc(self.fc1(x))).squeeze(1)


def calo_cnn(in_channels: int = 5, filters: tuple[int, ...] = (64, 128, 256), grid: int = 32,
             dense: int = 352) -> CaloCNN:
    """The calorimeter CNN; defaults give 1.81M parameters (the published 1.8M)."""
    return CaloCNN(in_channels, tuple(filters), grid, dense)
