"""Source references resolve against the pinned indexes, or fail with a useful message."""

from __future__ import annotations

import hashlib

import pytest
from conftest import ROOT

from insider import sourcerefs
from insider.sourcerefs import ReferenceError_, resolve


def test_indexes_are_the_recorded_copies():
    for line in (ROOT / "_refs" / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((ROOT / "_refs" / name).read_bytes()).hexdigest() == digest, name


def test_paths_link_to_the_pinned_tags():
    assert resolve("envoy", "source/common/event/dispatcher_impl.cc") == (
        "https://github.com/envoyproxy/envoy/blob/v1.39.0/source/common/event/dispatcher_impl.cc"
    )
    assert resolve("envoy", "source/common/event/dispatcher_impl.cc#L12").endswith("#L12")
    assert resolve("istio", "pilot/pkg/xds/discovery.go").startswith("https://github.com/istio/istio/blob/1.30.3/")
    assert resolve("ztunnel", "src/main.rs").startswith("https://github.com/istio/ztunnel/blob/1.30.3/")
    assert resolve("istio-api", "networking/v1alpha3/virtual_service.proto").startswith(
        "https://github.com/istio/api/blob/v1.30.3/"
    )


def test_unknown_path_suggests_the_closest():
    with pytest.raises(ReferenceError_, match=r"unknown envoy path .*did you mean 'source/common/event/dispatcher_impl.cc'"):
        resolve("envoy", "source/common/dispatcher_impl.cc")
    with pytest.raises(ReferenceError_, match="bad line anchor"):
        resolve("envoy", "source/common/event/dispatcher_impl.cc#12")


def test_symbols_link_to_their_definition_line():
    url = resolve("envoy-sym", "Event::DispatcherImpl::post")
    assert url.startswith("https://github.com/envoyproxy/envoy/blob/v1.39.0/source/common/event/dispatcher_impl.cc#L")
    assert resolve("envoy-sym", "Envoy::Event::DispatcherImpl::post") == url
    assert "pilot/pkg/xds/" in resolve("istio-sym", "xds.DiscoveryServer.Push")
    assert resolve("istio-sym", "DiscoveryServer.Push") == resolve("istio-sym", "xds.DiscoveryServer.Push")


def test_unknown_symbol_suggests_and_ambiguous_symbol_lists_candidates():
    with pytest.raises(ReferenceError_, match=r"unknown envoy symbol 'Event::DispatcherImpl::postt'.*did you mean"):
        resolve("envoy-sym", "Event::DispatcherImpl::postt")
    with pytest.raises(ReferenceError_, match=r"ambiguous envoy symbol 'initialize': \d+ candidates: .*@"):
        resolve("envoy-sym", "initialize")


def test_at_path_picks_one_definition():
    table = sourcerefs.symbols(sourcerefs.TREES["envoy"])
    name, places = next((n, p) for n, p in table.items() if len({f for f, _ in p}) > 1)
    path, line = min(p for p in places if p[0] == places[0][0])
    assert resolve("envoy-sym", f"{name}@{path}").endswith(f"{path}#L{line}")
