"""Programs DRBD runs as handlers (configured in the rendered resource files).

`HANDLERS` is the one list: `make install` writes a launcher for each entry (from
bin/handler.in) into the sbin directory.
"""

# installed command name -> module with main()
HANDLERS = {
    "xenha-resync-snapshot": "xenha.handlers.resync_snapshot",
}
