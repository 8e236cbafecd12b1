"""The window's docks and bars: chains, problems, details, jobs, VMs, status."""
