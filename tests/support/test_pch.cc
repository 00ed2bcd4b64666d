// The translation unit that builds tests/support/test_pch.h once for every test executable.
