"""The etcd client's pure parts and the refusals that need no etcd: endpoints, key ranges, a member's
command line, a lab's store.json, and endpoints that do not answer (exit 2, every one named)."""
import json
import socket

import pytest

from netlab.etcd import members
from netlab.etcd.client import EtcdClient, parse_endpoint, prefix_end
from netlab.store.etcd import EtcdEndpointsDown, check_endpoints


def test_endpoints_and_ranges():
    assert parse_endpoint("http://10.0.0.1:2379") == ("10.0.0.1", 2379)
    assert parse_endpoint("http://etcd.example") == ("etcd.example", 2379)
    with pytest.raises(ValueError, match="give it as http://HOST:PORT"):
        parse_endpoint("https://10.0.0.1:2379")
    with pytest.raises(ValueError, match="no etcd endpoints"):
        EtcdClient([])
    assert prefix_end("/netlab/demo/") == "/netlab/demo0"
    assert prefix_end("a") == "b"


def test_member_command_line():
    argv = members.member_argv("lab1", "h2", "10.1.0.2", {"h1": "10.1.0.1", "h2": "10.1.0.2", "h3": "10.1.0.3"})
    opt = dict(zip(argv[1::2], argv[2::2]))
    assert opt["--name"] == "h2" and opt["--data-dir"].endswith("/lab1/etcd/h2")
    assert opt["--initial-cluster"] == "h1=http://10.1.0.1:2380,h2=http://10.1.0.2:2380,h3=http://10.1.0.3:2380"
    assert opt["--listen-client-urls"] == "http://10.1.0.2:2379,http://127.0.0.1:2379"
    assert opt["--advertise-client-urls"] == "http://10.1.0.2:2379"
    assert int(opt["--max-txn-ops"]) >= 10000
    assert members.owner("lab1", "h2") == "lab1/host/h2/etcd"
    with pytest.raises(ValueError, match="not in its initial cluster"):
        members.member_argv("lab1", "h9", "10.1.0.9", {"h1": "10.1.0.1"})


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_check_endpoints_names_each_that_does_not_answer():
    a, b = f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(EtcdEndpointsDown) as e:
        check_endpoints([a, b], timeout=0.5)
    assert e.value.exit_code == 2 and a in str(e.value) and b in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(EtcdEndpointsDown, match="http://HOST:PORT"):
        check_endpoints(["10.0.0.1:2379"])
    with pytest.raises(EtcdEndpointsDown, match="network namespace no-such-ns-here .* does not exist"):
        check_endpoints([a], netns="no-such-ns-here")


def test_store_json_selects_the_backend(tmp_path, monkeypatch):
    from netlab.dataplane import layout
    from netlab.errors import UsageError
    from netlab.live import has_store, store_config
    monkeypatch.setattr(layout, "RUN_DIR", str(tmp_path))
    assert store_config("lab1") is None and not has_store("lab1")
    (tmp_path / "lab1").mkdir()
    conf = {"backend": "etcd", "endpoints": ["http://10.0.0.1:2379"], "prefix": "/netlab/lab1/", "netns": None}
    (tmp_path / "lab1" / "store.json").write_text(json.dumps(conf))
    assert store_config("lab1") == conf and has_store("lab1")
    (tmp_path / "lab1" / "store.json").write_text('{"backend": "zookeeper"}')
    with pytest.raises(UsageError, match="store.json must be"):
        store_config("lab1")
