"""Code from magics.ipynb, moved here by nb2pkg."""

SCALE = 3


def scaled(x):
    return x * SCALE


def by_factor(x, factor=2):
    return x * factor
