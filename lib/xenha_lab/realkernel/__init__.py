"""The real-kernel tier of the lab: cluster nodes as QEMU (TCG) machines running Xen 4.17
with Debian's kernel as PV dom0, the in-tree DRBD 8.4 module, device-mapper/LVM and the
real corosync/pacemakerd (reference/lab-real-kernel.md).

- image.py      node images from Debian packages only (kernel, Xen, busybox by `apt-get
                download`; the root file system by debootstrap), cached under build/
- files/        what runs inside the machines: PID 1 of a node, its boot script, the
                initramfs /init of a node and of the PV guest
- agent.py      the node's end of the host channel (virtio-serial): runs commands, reads
                files, relays the power switch socket to the host; standard library only
- supervisor.py the host process owning the QEMU machines, their channels and QMP sockets
- backend.py    QemuLab, the NodeBackend of the scenario driver
- guest.py      the PV guest's acknowledged-write log, read on the host
"""
