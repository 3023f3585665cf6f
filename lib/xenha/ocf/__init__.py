"""The OCF 1.1 layer every xenha agent stands on.

Modules are imported individually (no re-exports here) so that a monitor only pays for
what it uses: `codes`, `environment`, `parameters`, `deadline`, `log` and `agent` are
cheap; `metadata` (xml.etree) is imported only for the meta-data action.
"""
