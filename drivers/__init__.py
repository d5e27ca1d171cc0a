"""labctl drivers: pymeasure Instruments, one module per instrument family (wire protocol only)."""
