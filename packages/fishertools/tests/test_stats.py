import math

import pytest

from fishertools import pearson, rankdata, spearman


def test_pearson_hand_value():
    x, y = [1.0, 2.0, 3.0], [1.0, 5.0, 3.0]
    # dx = (-1, 0, 1), dy = (-2, 2, 0): Σdxdy = 2, Σdx² = 2, Σdy² = 8
    assert pearson(x, y) == pytest.approx(2 / math.sqrt(2 * 8))


def test_pearson_perfect_and_undefined():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 1, 1], [1, 2, 3]) is None
    assert pearson([1.0], [2.0]) is None


def test_rankdata_averages_ties():
    assert rankdata([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]
    assert rankdata([3, 3, 3]) == [2.0, 2.0, 2.0]


def test_spearman_with_ties_hand_value():
    x = [1, 2, 2, 3]  # ranks 1, 2.5, 2.5, 4
    y = [1, 3, 2, 4]  # ranks 1, 3, 2, 4
    # dx = (-1.5, 0, 0, 1.5), dy = (-1.5, 0.5, -0.5, 1.5): Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5
    assert spearman(x, y) == pytest.approx(4.5 / math.sqrt(4.5 * 5))


def test_spearman_monotone_is_one():
    assert spearman([1, 2, 3, 4], [1, 10, 100, 1000]) == pytest.approx(1.0)


def test_length_mismatch():
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])
