"""Built-in search spaces, installed as `evolve.search_spaces` and found through the `evolve`
entry-point group, like any third-party plugin."""
