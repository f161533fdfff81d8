"""A multi-node run's hostfile, in DeepSpeed's syntax, checked line by line before anything starts.

    # one line per node: its ssh name and how many GPUs (slots) the run may use there
    node-a slots=8
    node-b slots=8

DeepSpeed's own parser reports a malformed line as a Python traceback from its launcher, minutes into a
queued run; this one names the line. Plain text work, so the web server (which may see the file on a
shared filesystem) and the worker (which always does) both check it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r"^(\S+)\s+slots=(\d+)$")
MAX_BYTES = 1024 * 1024


class HostfileError(ValueError):
    """A hostfile that DeepSpeed would refuse (or misread); the message names the line."""


@dataclass(frozen=True)
class Host:
    name: str
    slots: int


def parse_hostfile(text: str) -> list[Host]:
    """Hostfile text -> its hosts in order; HostfileError naming the first bad line.

    >>> parse_hostfile("a slots=8\\n# spare\\nb slots=4\\n")
    [Host(name='a', slots=8), Host(name='b', slots=4)]
    """
    hosts: list[Host] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _LINE.match(line)
        if m is None:
            raise HostfileError(f"hostfile line {number}: expected 'hostname slots=N', got {line[:80]!r}")
        name, slots = m.group(1), int(m.group(2))
        if slots < 1:
            raise HostfileError(f"hostfile line {number}: {name} has slots={slots}; at least 1")
        if any(h.name == name for h in hosts):
            raise HostfileError(f"hostfile line {number}: host {name!r} is listed twice")
        hosts.append(Host(name, slots))
    if not hosts:
        raise HostfileError("hostfile lists no host")
    return hosts


def read_hostfile(path: str | Path) -> list[Host]:
    """The hosts of the hostfile at `path`; HostfileError when it is missing, unreadable or malformed."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise HostfileError(f"hostfile {str(p)!r} is larger than {MAX_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HostfileError(f"cannot read hostfile {str(p)!r}: {exc}") from None
    return parse_hostfile(text)


def check_nodes(hosts: list[Host], *, num_nodes: int, n_gpus: int) -> None:
    """The first `num_nodes` hosts must exist and each offer `n_gpus` slots (GPUs per node)."""
    if num_nodes > len(hosts):
        raise HostfileError(f"{num_nodes} nodes asked for, but the hostfile lists {len(hosts)}")
    short = [h for h in hosts[:num_nodes] if h.slots < n_gpus]
    if short:
        raise HostfileError(
            f"{n_gpus} GPUs per node asked for, but host {short[0].name!r} has slots={short[0].slots}"
        )
