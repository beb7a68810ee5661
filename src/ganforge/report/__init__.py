"""Plots, image grids and run summaries."""
