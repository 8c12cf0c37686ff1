import socket

import pytest


def test_network_connections_are_refused_during_tests():
    with pytest.raises(RuntimeError, match="network access"):
        socket.create_connection(("example.com", 80), timeout=1)
