"""The schema fuzzer (`python -m tests.fuzz`); see `__main__`."""
