"""Helpers shared by the whole suite (and by the benchmarks, which reuse the fakes).

- :mod:`tests.support.network`: the network guard every test runs under (``tests/conftest.py``).
- :mod:`tests.support.servers`: free loopback ports, the API in a subprocess, the allocator.
- :mod:`tests.support.chat_server`: a scripted OpenAI-compatible SSE server on loopback.
"""
