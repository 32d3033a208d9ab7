"""Whole-VM restore: the plan, the per-VM chain of steps, the proxy and helper lifecycles,
and the preparation scripts."""
