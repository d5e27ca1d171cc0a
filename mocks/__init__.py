"""Simulated bench: instrument personalities, device physics, transports and bench files."""
