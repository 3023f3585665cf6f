"""All files of a cluster, rendered into an output directory.

    OUT/drbd.d/<resource>.res         DRBD resource files (copy to /etc/drbd.d/ on the replicas)
    OUT/xen/<vm>.cfg                  xl domain configs (copy to /etc/xen/ on the replicas)
    OUT/pacemaker/pcs-commands.sh     the reviewable pcs script
    OUT/pacemaker/cib.xml             the resulting CIB (configuration section, empty status)

Writing is idempotent: a file whose content did not change is not rewritten.
"""

import os

from xenha.cluster.description import Description
from xenha.render import drbd, pacemaker, xl


def render_all(description: Description, slots: dict, drbd_version: int | None = None) -> dict:
    """{relative path: text}."""
    files = {}
    for vm in description.vms:
        slot = slots[vm.name]
        files[f"drbd.d/{drbd.file_name(slot)}"] = drbd.render(description, vm, slot, drbd_version)
        files[f"xen/{xl.file_name(vm)}"] = xl.render(description, vm, slot)
    config = pacemaker.build(description, slots)
    files["pacemaker/pcs-commands.sh"] = pacemaker.pcs_script(config)
    files["pacemaker/cib.xml"] = pacemaker.cib_xml(config, [n.name for n in description.nodes])
    return files


def write(out_dir: str, files: dict) -> list[tuple[str, str]]:
    """Write the files; [(path, "written" | "unchanged")]."""
    report = []
    for relative, text in sorted(files.items()):
        path = os.path.join(out_dir, relative)
        try:
            with open(path, encoding="utf-8") as handle:
                if handle.read() == text:
                    report.append((path, "unchanged"))
                    continue
        except OSError:
            pass
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        if relative.endswith(".sh"):
            os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        report.append((path, "written"))
    return report
