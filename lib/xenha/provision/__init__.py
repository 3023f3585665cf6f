"""Provisioning a cluster description on its nodes, with the real tools.

- node.py     the node side (`xenha provision-node`): steps applied on one node through
              the drivers in xenha.tools, each looking at the current state first
              (idempotent), refusing to touch what exists with other settings;
- cluster.py  the cluster side: what each node needs for each VM (from the rendered
              files), run through a transport (ssh, or the lab's own), the initial DRBD
              sync across the replicas, then the Pacemaker configuration through pcs.

The node side reads its steps as JSON on stdin and answers JSON on stdout, so that any
transport that runs a command on a node with an input (ssh, `xenha lab exec`) carries it.
"""
