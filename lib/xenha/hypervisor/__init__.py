"""What the Xen agent needs to know about a hypervisor, independent of its toolstack.

`domain` holds the shared types (domain records, states, migration outcomes) and the
pure classification of what a listing says about one domain name. A driver (today
`xenha.tools.xl.Xl`) produces those types; agents decide from them.
"""
