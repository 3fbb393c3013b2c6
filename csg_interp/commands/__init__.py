"""Sub-commands of ``csg-interp`` (one module each; see ``csg_interp.cli``)."""
