"""Fixtures shared by the tests and the tools: the tiny checkpoint, synthetic observations, synthetic bags."""
