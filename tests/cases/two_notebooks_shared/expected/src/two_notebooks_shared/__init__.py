"""two_notebooks_shared: code from first.ipynb, second.ipynb, packaged by nb2pkg."""
