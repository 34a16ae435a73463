"""Sweeps: many searches at once (this machine, Ray, SLURM), resumable, with one results table."""
from .core import SweepResult, is_sweep, sweep, sweep_rows
from .table import METRICS, format_table, group_stats

__all__ = ["sweep", "SweepResult", "is_sweep", "sweep_rows", "format_table", "group_stats", "METRICS"]
