"""ocf:xenha:drbd-resource — a DRBD resource as a promotable clone (dual-primary capable).

(Declarations first: the actions follow in this module.)
"""

from xenha.ocf.agent import Action
from xenha.ocf.parameters import INTEGER, SELECT, STRING, Parameter

DEFAULT_SCORES = "0 10 1000 10000"

PARAMETERS = (
    Parameter("drbd_resource", STRING, "DRBD resource name",
              "Name of the DRBD resource, as in the DRBD configuration (checked through drbdadm). The same "
              "name as ocf:linbit:drbd's, which drbd-utils' crm-fence-peer handlers look for in the CIB.",
              required=True, unique_group="drbd-resource"),
    Parameter("drbdconf", STRING, "DRBD configuration file",
              "Full path of the DRBD configuration file given to drbdadm -c.",
              default="/etc/drbd.conf"),
    Parameter("promotion_scores", STRING, "promotion scores (4 integers)",
              "Four non-decreasing integers: the promotion score when this node's data is unusable but a "
              "peer's is UpToDate; when the local data is Consistent; when it is UpToDate but the peer's "
              "state is unknown; when it is UpToDate with the peer connected or known Outdated. A node "
              "without UpToDate data is never promoted (the score is removed), whatever this says.",
              default=DEFAULT_SCORES, reloadable=True),
    Parameter("adjust_master_score", STRING, "promotion scores (deprecated name)",
              "Name used by ocf:linbit:drbd; accepted as an alias of promotion_scores.",
              replaced_with="promotion_scores", deprecated_note="Use promotion_scores."),
    Parameter("wfc_timeout", INTEGER, "seconds start waits for the peer",
              "How long start waits for the connection to the peer. A missing peer is not an error: the "
              "resource starts degraded (monitor says so) and connects when the peer comes.",
              default=5, minimum=0, reloadable=True),
    Parameter("drbd_version", SELECT, "DRBD kernel version family",
              "auto: ask the loaded DRBD module (/proc/drbd, else drbdadm --version). 9 or 8.4: force "
              "the tool path (drbdsetup events2/status --json for 9; drbdadm role/cstate/dstate for 8.4).",
              default="auto", options=("auto", "9", "8.4")),
    Parameter("drbdadm", STRING, "drbdadm binary", "The drbdadm command (a name on PATH, or a path).",
              default="drbdadm"),
)

ACTIONS = (
    Action("start", 240),
    Action("stop", 100),
    Action("promote", 90),
    Action("demote", 90),
    Action("notify", 90),
    Action("monitor", 20, interval=29, role="Promoted"),
    Action("monitor", 20, interval=31, role="Unpromoted"),
    Action("reload-agent", 30),
    Action("validate-all", 30),
    Action("meta-data", 5),
)
