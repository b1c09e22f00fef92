"""Rewrites that move notebook code into package modules: hoisting and clone extraction."""
