"""Training health: cheap signals logged while training and the monitor that turns them into alerts."""

from ganforge.health.monitor import KINDS, Alert, HealthMonitor, Thresholds
from ganforge.health.signals import SampleProbe, d_accuracy, probe_output_gradient

__all__ = ["KINDS", "Alert", "HealthMonitor", "SampleProbe", "Thresholds", "d_accuracy", "probe_output_gradient"]
