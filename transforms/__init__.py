"""Policies, plans, field actions and the Beam transforms that apply them."""
