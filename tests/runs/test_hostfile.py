"""Hostfiles in DeepSpeed's syntax are checked line by line, with the line's number in the message."""

import pytest

from app.runs.hostfile import Host, HostfileError, check_nodes, parse_hostfile, read_hostfile


def test_hosts_comments_and_blank_lines():
    text = "# the two boxes\nnode-a slots=8\n\nnode-b slots=4  # half\n"
    assert parse_hostfile(text) == [Host("node-a", 8), Host("node-b", 4)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("node-a slots=8\nnode-b 8\n", "line 2: expected 'hostname slots=N', got 'node-b 8'"),
        ("node-a slots=eight\n", "line 1: expected"),
        ("node-a slots=0\n", "line 1: node-a has slots=0"),
        ("a slots=1\nb slots=1\na slots=2\n", "line 3: host 'a' is listed twice"),
        ("# nothing\n\n", "lists no host"),
    ],
)
def test_bad_lines_are_named(text, message):
    with pytest.raises(HostfileError, match=message):
        parse_hostfile(text)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(HostfileError, match="cannot read hostfile"):
        read_hostfile(tmp_path / "nope")


def test_nodes_and_slots_are_checked():
    hosts = [Host("a", 8), Host("b", 4)]
    check_nodes(hosts, num_nodes=1, n_gpus=8)
    with pytest.raises(HostfileError, match="3 nodes asked for, but the hostfile lists 2"):
        check_nodes(hosts, num_nodes=3, n_gpus=1)
    with pytest.raises(HostfileError, match="host 'b' has slots=4"):
        check_nodes(hosts, num_nodes=2, n_gpus=8)
