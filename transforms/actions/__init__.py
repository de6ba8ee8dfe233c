"""Field actions: one module per action, each a params model, a pure function and an ACTION.

The registry (`veil.transforms.registry`) is the only place that lists them.
"""
