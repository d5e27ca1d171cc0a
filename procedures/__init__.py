"""Experiments as pymeasure Procedures. They know instruments by role only, through the station."""
