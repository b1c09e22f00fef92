"""Code from first.ipynb, second.ipynb, moved here by nb2pkg."""

import statistics


def clean(rows):
    """Drop empty rows and strip names."""
    return [dict(r, name=r["name"].strip()) for r in rows if r["name"]]


def compute_summary(rows, group, label):
    """Compute `mean_value` from `rows`, `group` and `label`.

    Prints its results.

    Args:
        rows: Read only.
        group: The notebook passes `"a"` or `"b"`.
        label: The notebook passes `"group a"` or `"group b"`.

    Returns:
        `mean_value`.
    """
    selected = [r for r in rows if r["group"] == group]
    values = [r["value"] for r in selected]
    mean_value = statistics.mean(values)
    print(label, round(mean_value, 2))
    return mean_value
