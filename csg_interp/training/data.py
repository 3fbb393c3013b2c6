"""The data set a training configuration names (shared by the trainer and run directories)."""

from __future__ import annotations

from typing import Any

from .config import TrainConfig

__all__ = ["load_bundle"]


def load_bundle(config: TrainConfig, **overrides: Any):
    """Load the data set a config names, with its split seed and options.

    Args:
        config: the training configuration (``dataset``, ``data_root``, ``data_seed``,
            ``train_subset``, ``val_size``, ``data_options``).
        **overrides: options that replace the config's (``data_root=...`` when the data moved).

    Returns:
        The :class:`~csg_interp.data.DataBundle`.

    Raises:
        ValueError: unknown data set, or an option the data set does not take.
        FileNotFoundError: the data set's files are missing (the message says how to get them).

    Example:
        >>> bundle = load_bundle(TrainConfig(dataset="digits"))
        >>> bundle.classes[:3]
        ['0', '1', '2']
    """
    from csg_interp.data import load_dataset

    options: dict[str, Any] = {}
    if config.train_subset is not None:
        options["train_subset"] = config.train_subset
    if config.val_size is not None:
        options["val_size"] = config.val_size
    data_root = overrides.pop("data_root", config.data_root)
    options.update(config.data_options or {})
    options.update(overrides)
    try:
        return load_dataset(config.dataset, data_root=data_root, seed=config.data_seed, **options)
    except TypeError as error:
        if "unexpected keyword" not in str(error):
            raise
        raise ValueError(
            f"data set {config.dataset!r} does not take the option(s) {', '.join(options)} "
            f"({error})"
        ) from error
