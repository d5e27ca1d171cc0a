"""Device physics for the simulated bench: numpy only, vectorised over arrays of devices,
seeded, no I/O."""
