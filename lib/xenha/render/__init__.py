"""Renderers: a validated cluster description (plus allocation) → the files and the
Pacemaker configuration that run it. Pure functions of their inputs: the same input
gives the same bytes."""

HEADER = "rendered by xenha from {source}; do not edit, change the description and render again"
