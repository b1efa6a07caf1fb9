import pytest
import torch

import ebmbook as eb


@pytest.fixture
def gen():
    return eb.make_generator(seed=1234)


@pytest.fixture
def box2d():
    """The book's standard 2-D box: [−5, 5]² with 256 cells per side."""
    return eb.grid.make_grid(-5, 5, 256, dim=2, dtype=torch.float64)


@pytest.fixture
def bins2d():
    """Coarse histogram bins on the same box."""
    return eb.grid.make_grid(-5, 5, 40, dim=2)
