"""One module per external tool: argv building, timeouts, parsing into typed values.

Everything here runs on an agent's monitor path, so it uses the standard library only
and avoids heavy imports (`subprocess`, `re`, `json`, `enum` each cost milliseconds).
"""
