"""Loopback HTTP test doubles of the services the adapter calls but tests cannot run."""
