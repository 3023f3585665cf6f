"""Renderers: a validated cluster description (plus allocation) → the files and the
Pacemaker configuration that run it. Pure functions of their inputs: the same input
gives the same bytes."""

HEADER = "rendered by xenha from {source}; do not edit, change the description and render again"


def header(source: str) -> str:
    """The first comment line of every rendered file. The source path is the operator's
    own, but a newline in it would end the comment: anything unprintable is escaped."""
    shown = source if source.isascii() and source.isprintable() else ascii(source)
    return HEADER.format(source=shown)
