"""One helper for the nested structures a state or a gradient comes in.

A state is an array, an ``LSTMStateTuple(c, h)`` or a tuple of those (a
stack); parameters are a dict, or a list of dicts (a stack).
"""


def tree_map(fn, *trees):
    """Apply ``fn`` leaf by leaf to trees of the same structure; keep the structure.

    Dicts, lists, tuples and namedtuples (rebuilt as their own type) are
    containers; everything else is a leaf.
    """
    first = trees[0]
    if isinstance(first, dict):
        return {key: tree_map(fn, *(tree[key] for tree in trees)) for key in first}
    if isinstance(first, list):
        return [tree_map(fn, *items) for items in zip(*trees)]
    if isinstance(first, tuple):
        values = [tree_map(fn, *items) for items in zip(*trees)]
        return type(first)(*values) if hasattr(first, "_fields") else tuple(values)
    return fn(*trees)
