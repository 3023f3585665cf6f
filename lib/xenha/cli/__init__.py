"""The operator command `xenha` (click). Thin: it parses, calls the library, prints."""
