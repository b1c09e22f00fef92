"""magics_and_opaque: code from magics.ipynb, packaged by nb2pkg."""
