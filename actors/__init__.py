"""Dramatiq broker set-up and the actors that step scans through their states."""
