"""Audits from git alone: semantic history of an entity, and access at any point in time."""
