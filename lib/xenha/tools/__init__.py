"""One driver per external tool: argv building, timeouts, parsing into typed values.

Agents and handlers talk to these drivers only; nothing above this package spawns a
process (`runner` is the one place that does). Everything here runs on an agent's
monitor path, so it uses the standard library only and avoids heavy imports
(`subprocess`, `re`, `json`, `enum` each cost milliseconds).

What every driver shares: `binaries` (finding an executable, `ToolNotFound`), `tool`
(`Tool`, a binary a driver runs) and `runner` (running it with a timeout). Checking
that a binary is installed must not load the runner (the LVM agent's cheapest monitor
starts no process), so `tool` imports it only when a command runs.
"""
