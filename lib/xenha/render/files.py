"""All files of a cluster, rendered into an output directory.

    OUT/drbd.d/<resource>.res         DRBD resource files (copy to /etc/drbd.d/ on the replicas)
    OUT/xen/<vm>.cfg                  xl domain configs (copy to /etc/xen/ on the replicas)
    OUT/pacemaker/pcs-commands.sh     the reviewable pcs script
    OUT/pacemaker/cib.xml             the resulting CIB (configuration section, empty status)

All or nothing: `prepare()` loads, allocates and renders everything in memory (every
check `xenha validate` makes is made here, and only here); `write()` then stages every
changed file as a temporary file in its own directory, and only when all are staged
renames them over the old ones, the allocation file last. A failure while staging
changes nothing; a failure while renaming puts back the files already replaced.
A file whose content did not change is not rewritten.
"""

import os
import stat
import tempfile
from dataclasses import dataclass

from xenha.cluster import allocation, description as desc_module
from xenha.cluster.description import Description
from xenha.render import drbd, pacemaker, xl


@dataclass(frozen=True)
class Rendering:
    description: Description
    slots: dict                 # vm name -> allocation.Slot
    added: list                 # VMs that get new DRBD numbers
    files: dict                 # path relative to the output directory -> text
    allocation_path: str
    allocation_text: str


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


def prepare(description_path: str, drbd_version: int | None = None) -> Rendering:
    """Everything `render` would write, or a DescriptionError listing what is wrong."""
    description = desc_module.load(description_path)
    path = allocation.allocation_path(description_path)
    slots, added = allocation.allocate(description, allocation.read(path))
    files = render_all(description, slots, drbd_version)
    return Rendering(description, slots, added, files, path, allocation.render(slots))


def write_rendering(out_dir: str, rendering: Rendering) -> list[tuple[str, str]]:
    """The rendered files into `out_dir`, then the allocation file next to the description
    (every VM's numbers are recorded, explicit ones too: removing them from the
    description later must not renumber the VM)."""
    targets = [(os.path.join(out_dir, relative), text) for relative, text in sorted(rendering.files.items())]
    return commit(targets + [(rendering.allocation_path, rendering.allocation_text)])


def write(out_dir: str, files: dict) -> list[tuple[str, str]]:
    """Write the files; [(path, "written" | "unchanged")]."""
    return commit([(os.path.join(out_dir, relative), text) for relative, text in sorted(files.items())])


class WriteError(Exception):
    """A file could not be written; nothing was changed."""


def _current(path: str) -> tuple[bytes | None, int | None]:
    """(content, mode) of an existing regular file, (None, None) if there is none."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(info.st_mode):
        raise WriteError(f"{path}: exists and is not a regular file; not replacing it")
    with open(path, "rb") as handle:
        return handle.read(), stat.S_IMODE(info.st_mode)


def _new_mode(path: str) -> int:
    if path.endswith(".sh"):
        return 0o755
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _stage(path: str, data: bytes, mode: int) -> str:
    """A temporary file next to `path` holding `data`, flushed to disk."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, staged = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".xenha-tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staged, mode)
    except BaseException:
        _remove(staged)
        raise
    return staged


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def commit(targets: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Write (path, text) pairs all or nothing, in order; [(path, "written" | "unchanged")]."""
    report, changes = [], []          # changes: (path, new bytes, old bytes or None, mode)
    for path, text in targets:
        data = text.encode("utf-8")
        try:
            old, mode = _current(path)
        except OSError as error:
            raise WriteError(f"{path}: cannot read: {error.strerror}") from None
        if old == data:
            report.append((path, "unchanged"))
            continue
        changes.append((path, data, old, mode if mode is not None else _new_mode(path)))
        report.append((path, "written"))
    staged = []
    try:
        for path, data, _old, mode in changes:
            try:
                staged.append(_stage(path, data, mode))
            except OSError as error:
                raise WriteError(f"{path}: cannot write: {error.strerror or error}; nothing was changed") from None
        done = []
        for (path, _data, old, mode), temporary in zip(changes, staged):
            try:
                os.replace(temporary, path)
            except OSError as error:
                _restore(done)
                raise WriteError(f"{path}: cannot write: {error.strerror or error}; "
                                 "the files already replaced were put back") from None
            done.append((path, old, mode))
    finally:
        for temporary in staged:
            if os.path.lexists(temporary):
                _remove(temporary)
    for directory in dict.fromkeys(os.path.dirname(path) or "." for path, *_ in changes):
        _sync_directory(directory)
    return report


def _restore(done: list) -> None:
    """Put back the previous content of files already replaced (best effort: the
    failure that brought us here is the one reported)."""
    for path, old, mode in reversed(done):
        try:
            if old is None:
                os.unlink(path)
            else:
                os.replace(_stage(path, old, mode), path)
        except OSError:
            pass


def _sync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
