"""The simulator's resources: mutable records (mutated only on the simulator's event loop),
each beside the frozen view that :meth:`.registry.Registry.snapshot` turns it into."""
