"""Dagster code location of the Meltano project."""
