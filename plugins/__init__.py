"""Built-in plugins that are not search spaces: strategies, predictors, reporters.

Installed as `evolve.plugins` and found through the `evolve` entry-point group, like any third-party plugin.
"""
