"""XML-RPC (http://xmlrpc.com/spec.md): remote procedure calls as XML
documents POSTed over HTTP.

Tests: tests/protocols/test_xmlrpc.py, tests/interop/test_xmlrpc_peers.py
"""
