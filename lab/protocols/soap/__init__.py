"""SOAP 1.1 (W3C Note 2000): document/literal web services over HTTP,
described by a WSDL.

Tests: tests/protocols/test_soap.py, tests/interop/test_soap_peers.py
"""
