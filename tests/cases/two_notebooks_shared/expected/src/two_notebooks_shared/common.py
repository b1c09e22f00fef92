"""Code from first.ipynb, second.ipynb, moved here by nb2pkg."""

import statistics


def clean(rows):
    """Drop empty rows and strip names."""
    return [dict(r, name=r["name"].strip()) for r in rows if r["name"]]


def summary(rows, group, label):
    """Code repeated 3 times in the notebooks (first cell 7, first cell 8, second cell 3), extracted by nb2pkg."""
    selected = [r for r in rows if r["group"] == group]
    values = [r["value"] for r in selected]
    mean_value = statistics.mean(values)
    print(label, round(mean_value, 2))
    return mean_value
